/**
 * The GameRuntime CRD's structural schema (OpenAPI v3.0) as an ajv validator:
 * boolean exclusive bounds become numbers, x-kubernetes-* go, and (stricter
 * than the API server, which would silently prune them) unknown fields are
 * errors, so a typo fails a test instead of vanishing in a cluster.
 */
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { StructuralSchema } from "../../src/crd/schema.js";

export function toAjv(s: StructuralSchema, isMetadata = false): Record<string, unknown> {
  // int-or-string (a Quantity): the pattern applies to the string branch only, as in the API server.
  if (s["x-kubernetes-int-or-string"]) return { anyOf: [{ type: "integer" }, { type: "string", ...(s.pattern ? { pattern: s.pattern } : {}) }] };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k.startsWith("x-kubernetes-")) continue;
    if (k === "properties") out.properties = Object.fromEntries(Object.entries(v as Record<string, StructuralSchema>).map(([n, sub]) => [n, toAjv(sub, n === "metadata")]));
    else if (k === "items" || k === "additionalProperties") out[k] = toAjv(v as StructuralSchema);
    else if (k === "exclusiveMinimum" || k === "exclusiveMaximum") continue;
    else out[k] = v;
  }
  if (s.exclusiveMinimum) {
    out.exclusiveMinimum = s.minimum;
    delete out.minimum;
  }
  if (s.exclusiveMaximum) {
    out.exclusiveMaximum = s.maximum;
    delete out.maximum;
  }
  if (s.type === "object" && s.properties && !isMetadata) out.additionalProperties = false;
  return out;
}

// ajv-formats is CommonJS with a default export.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

export function ajvValidator(schema: StructuralSchema): ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(toAjv(schema));
}
