/**
 * The GameRuntime CRD is generated from RuntimeSpecSchema (src/crd/schema.ts).
 * The committed deploy/crd/gameruntime.yaml must be exactly what the generator
 * writes today: after changing the schema, run `npx tsx scripts/gen-crd.ts`.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { gameRuntimeCrd, gameRuntimeCrdYaml, toStructural, type StructuralSchema } from "../../src/crd/schema.js";
import { RuntimeSpecSchema } from "../../src/model/declaration.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CRD_FILE = path.join(root, "deploy/crd/gameruntime.yaml");

function walk(schema: StructuralSchema, at: string, visit: (s: StructuralSchema, at: string) => void): void {
  visit(schema, at);
  for (const [k, sub] of Object.entries(schema.properties ?? {})) walk(sub, `${at}.${k}`, visit);
  if (schema.items) walk(schema.items, `${at}[]`, visit);
  if (schema.additionalProperties) walk(schema.additionalProperties, `${at}.*`, visit);
}

describe("GameRuntime CRD", () => {
  it("the committed YAML is what scripts/gen-crd.ts generates (no drift)", async () => {
    const committed = await readFile(CRD_FILE, "utf8");
    expect(committed, "deploy/crd/gameruntime.yaml is stale: run `npx tsx scripts/gen-crd.ts`").toBe(gameRuntimeCrdYaml());
  });

  it("spec properties are exactly the zod schema's keys, and required exactly its non-optional ones", () => {
    const spec = gameRuntimeCrd().spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    expect(Object.keys(spec.properties ?? {}).sort()).toEqual(Object.keys(RuntimeSpecSchema.shape).sort());
    const required = Object.entries(RuntimeSpecSchema.shape)
      .filter(([, s]) => !s.safeParse(undefined).success)
      .map(([k]) => k)
      .sort();
    expect([...(spec.required ?? [])].sort()).toEqual(required);
    const resources = spec.properties!.resources!;
    expect(Object.keys(resources.properties ?? {}).sort()).toEqual(Object.keys(RuntimeSpecSchema.shape.resources.unwrap().shape).sort());
  });

  it("keeps the zod constraints: enums, patterns, lengths, bounds, defaults", () => {
    const p = gameRuntimeCrd().spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!.properties!;
    expect(p.desiredState).toMatchObject({ type: "string", enum: ["running", "stopped", "removed"], default: "running" });
    expect(p.restartPolicy).toMatchObject({ enum: ["always", "on-failure", "never"], default: "on-failure" });
    expect(p.gameId).toMatchObject({ type: "string", minLength: 1, maxLength: 63, pattern: "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" });
    expect(p.imageRef).toMatchObject({ maxLength: 255 });
    // Floors, not "> 0": 1e-10 CPUs would round to 0 nano-CPUs, which both runtimes read as no limit.
    // Quantities, as Kubernetes writes them (issue 22 part 8): int-or-string with controller-gen's Quantity pattern.
    expect(p.resources!.properties!.cpus).toMatchObject({ "x-kubernetes-int-or-string": true, anyOf: [{ type: "integer" }, { type: "string" }] });
    expect(p.resources!.properties!.cpus!.description).toContain("From 0.01 to 64 CPUs");
    expect(p.resources!.properties!.pidsLimit).toMatchObject({ type: "integer", minimum: 16 });
    expect(p.resources!.properties!.memory).toMatchObject({ "x-kubernetes-int-or-string": true, anyOf: [{ type: "integer" }, { type: "string" }] });
    const memoryPattern = new RegExp(p.resources!.properties!.memory!.pattern!);
    expect(["512Mi", "1Gi", "536870912", "1.5Gi", "1e9", "64M"].filter((q) => !memoryPattern.test(q))).toEqual([]);
    expect(["512m", "1g", "100u", "-1Gi", "1e-3", "Mi"].filter((q) => memoryPattern.test(q))).toEqual([]);
    expect(p.env).toMatchObject({ type: "object", additionalProperties: { type: "string", maxLength: 4096 }, maxProperties: 64 });
    expect(p.restartToken).toMatchObject({ type: "string", maxLength: 64 });
  });

  it("is a structural schema: every field typed, no additionalProperties:false, no JSON-Schema-only keywords", () => {
    const schema = gameRuntimeCrd().spec.versions[0]!.schema.openAPIV3Schema;
    walk(schema, "", (s, at) => {
      const raw = s as Record<string, unknown>;
      // The one untyped form a structural schema allows: int-or-string, exactly as Kubernetes spells it.
      const intOrString = raw["x-kubernetes-int-or-string"] === true;
      if (intOrString) expect(raw.anyOf, at).toEqual([{ type: "integer" }, { type: "string" }]);
      else expect(typeof s.type, `${at || "(root)"} needs a type`).toBe("string");
      expect(raw.additionalProperties, `${at}: additionalProperties:false`).not.toBe(false);
      for (const k of ["$schema", "$ref", "propertyNames", ...(intOrString ? [] : ["anyOf"]), "oneOf", "allOf", "const", "definitions", "patternProperties"]) {
        expect(raw[k], `${at}: ${k}`).toBeUndefined();
      }
      if (s.properties && s.additionalProperties) throw new Error(`${at}: properties and additionalProperties together`);
      if (raw.exclusiveMinimum !== undefined) expect(typeof raw.exclusiveMinimum).toBe("boolean");
    });
  });

  it("toStructural refuses keywords it cannot convert", () => {
    expect(() => toStructural({ type: "string", format: "email", not: {} })).toThrow(/not/);
    expect(() => toStructural({ anyOf: [{ type: "string" }, { type: "null" }] })).toThrow(/anyOf/);
    expect(toStructural(z.toJSONSchema(z.object({ n: z.literal("x") })) as Record<string, unknown>).properties?.n).toMatchObject({ enum: ["x"] });
  });

  it("status subresource, short name, printer columns for kubectl get", () => {
    const crd = parse(gameRuntimeCrdYaml()) as ReturnType<typeof gameRuntimeCrd>;
    expect(crd.metadata.name).toBe("gameruntimes.galaxy.io");
    expect(crd.spec.scope).toBe("Namespaced");
    expect(crd.spec.names).toMatchObject({ kind: "GameRuntime", plural: "gameruntimes", shortNames: ["grt"] });
    const v = crd.spec.versions[0]!;
    expect(v.name).toBe("v1alpha1");
    expect(v.subresources).toEqual({ status: {} });
    expect(v.additionalPrinterColumns.map((c) => [c.name, c.jsonPath])).toEqual([
      ["Game", ".spec.gameId"],
      ["Image", ".spec.imageRef"],
      ["Desired", ".spec.desiredState"],
      ["Status", ".status.phase"],
      ["Ready", '.status.conditions[?(@.type=="Ready")].status'],
      ["Restarts", ".status.restartCount"],
      ["Age", ".metadata.creationTimestamp"],
    ]);
    const status = v.schema.openAPIV3Schema.properties!.status!.properties!;
    expect(Object.keys(status).sort()).toEqual(["conditions", "containerId", "engineEndpoint", "health", "imageRef", "observedGeneration", "phase", "restartCount"]);
    expect(status.conditions).toMatchObject({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });
  });
});
