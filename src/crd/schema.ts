/**
 * The GameRuntime CustomResourceDefinition, generated. `spec` is derived from
 * THE declaration schema (RuntimeSpecSchema) through z.toJSONSchema and
 * converted to a Kubernetes structural schema; `status` is what
 * src/crd/statusWriter.ts writes. scripts/gen-crd.ts writes the result to
 * deploy/crd/gameruntime.yaml, and test/unit/crd-schema.test.ts fails when the
 * committed file and this generator drift apart.
 */
import { stringify } from "yaml";
import { z } from "zod";
import { ENV_NAME_PATTERN, RESERVED_ENV, RESOURCE_FLOORS, RuntimeSpecSchema } from "../model/declaration.js";
import { ERROR_CODES } from "../model/errors.js";
import { QUANTITY_PATTERN } from "../model/quantity.js";
import { CONDITION_TYPES, GROUP, KIND, LIST_KIND, PHASES, PLURAL, reasonOf, SHORT_NAMES, SINGULAR, VERSION } from "./api.js";

/** The subset of an OpenAPI v3 schema a structural CRD schema uses. */
export interface StructuralSchema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  description?: string;
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  additionalProperties?: StructuralSchema;
  items?: StructuralSchema;
  enum?: (string | number | boolean)[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  minItems?: number;
  maxItems?: number;
  minProperties?: number;
  maxProperties?: number;
  default?: unknown;
  "x-kubernetes-validations"?: { rule: string; message: string }[];
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-int-or-string"?: boolean;
  anyOf?: StructuralSchema[];
}

/** A non-negative quantity with no suffix below 1 (n, u, m) and no negative exponent. */
const MEMORY_QUANTITY_PATTERN = "^\\+?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[kMGTPE]|([eE]\\+?[0-9]+))?$";

type JsonSchema = Record<string, unknown>;

/** Keywords copied as they are. Anything zod emits outside these and the handled ones fails generation. */
const COPIED = new Set([
  "type",
  "description",
  "enum",
  "pattern",
  "format",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "minItems",
  "maxItems",
  "minProperties",
  "maxProperties",
  "default",
  "required",
]);

/**
 * JSON Schema 2020-12 (zod's output) to an OpenAPI v3.0 structural schema:
 * - `$schema` dropped; `additionalProperties: false` dropped (Kubernetes
 *   forbids it; unknown fields are pruned by the API server instead);
 * - numeric `exclusiveMinimum`/`exclusiveMaximum` become `minimum` plus the
 *   boolean form;
 * - `const` becomes a one-value `enum`;
 * - `propertyNames` has no OpenAPI v3.0 counterpart and is dropped (the
 *   loop's own parse still enforces it: start_config_invalid);
 * - any other keyword throws, so a schema change zod cannot express here is
 *   noticed when the CRD is generated, not in a cluster.
 */
export function toStructural(schema: JsonSchema, path = "spec"): StructuralSchema {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$schema" || key === "propertyNames") continue;
    if (COPIED.has(key)) {
      out[key] = value;
    } else if (key === "properties") {
      const props: Record<string, StructuralSchema> = {};
      for (const [name, sub] of Object.entries(value as Record<string, JsonSchema>)) props[name] = toStructural(sub, `${path}.${name}`);
      out.properties = props;
    } else if (key === "additionalProperties") {
      if (value === false || value === true) continue;
      out.additionalProperties = toStructural(value as JsonSchema, `${path}.*`);
    } else if (key === "items") {
      out.items = toStructural(value as JsonSchema, `${path}[]`);
    } else if (key === "exclusiveMinimum" && typeof value === "number") {
      out.minimum = value;
      out.exclusiveMinimum = true;
    } else if (key === "exclusiveMaximum" && typeof value === "number") {
      out.maximum = value;
      out.exclusiveMaximum = true;
    } else if (key === "const") {
      out.enum = [value];
    } else {
      throw new Error(`${path}: JSON Schema keyword ${JSON.stringify(key)} has no structural-schema conversion`);
    }
  }
  if (typeof out.type !== "string") throw new Error(`${path}: a structural schema needs a type on every field`);
  if (Array.isArray(out.required) && out.required.length === 0) delete out.required;
  return out as StructuralSchema;
}

/** The spec schema: RuntimeSpecSchema, converted, plus the refinements zod cannot export. */
export function specSchema(): StructuralSchema {
  const json = z.toJSONSchema(RuntimeSpecSchema, { io: "input", unrepresentable: "throw" }) as JsonSchema;
  const spec = toStructural(json);
  spec.description = "The desired state of one game's engine container (RuntimeSpecSchema in src/model/declaration.ts).";
  const props = spec.properties ?? {};
  if (props.gameId) {
    props.gameId.description = "The game id; must equal metadata.name. Immutable.";
  }
  if (props.env) {
    // EnvSchema's refinements: zod exports them as nothing, so they are restated here.
    props.env.maxProperties = 64;
    props.env.description = `Environment of the engine. Names match ${ENV_NAME_PATTERN.source}; ${RESERVED_ENV.join(" and ")} are set by the controller.`;
    props.env["x-kubernetes-validations"] = [
      {
        rule: RESERVED_ENV.map((name) => `!('${name}' in self)`).join(" && "),
        message: `env may not set ${RESERVED_ENV.join(" or ")}: the controller sets them`,
      },
    ];
  }
  const resources = props.resources?.properties;
  if (resources?.memory && resources.cpus) {
    // Kubernetes quantities here (src/crd/resources.ts converts them to the contract's form).
    resources.memory = memoryQuantitySchema();
    resources.cpus = cpusQuantitySchema(resources.cpus);
  }
  spec["x-kubernetes-validations"] = [{ rule: "self.gameId == oldSelf.gameId", message: "gameId is immutable" }];
  return spec;
}

/**
 * int-or-string, as controller-gen emits a resource.Quantity field. Memory
 * takes no milli, micro or nano suffix (fractional bytes) and no Docker `g`:
 * the CEL rule names the Kubernetes spelling instead of a bare pattern error.
 */
function memoryQuantitySchema(): StructuralSchema {
  return {
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
    pattern: MEMORY_QUANTITY_PATTERN,
    description: `Memory limit, a Kubernetes quantity of bytes: 512Mi, 1Gi, 536870912. At least 6Mi. (The REST API and SQL write 512m for 512 MiB; here m would be milli.)`,
    "x-kubernetes-validations": [
      { rule: "type(self) == int || !(self.endsWith('m') || self.endsWith('g'))", message: "memory is a Kubernetes quantity: write Mi or Gi (512Mi, 1Gi); m is milli there" },
    ],
  };
}

function cpusQuantitySchema(number: StructuralSchema): StructuralSchema {
  return {
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
    pattern: QUANTITY_PATTERN,
    description: `CPU limit, a Kubernetes quantity: 500m, "0.5", 2. From ${number.minimum ?? RESOURCE_FLOORS.cpus} to ${number.maximum ?? ""} CPUs.`,
  };
}

function condition(): StructuralSchema {
  return {
    type: "object",
    description: "metav1.Condition",
    required: ["type", "status", "reason", "message", "lastTransitionTime"],
    properties: {
      type: { type: "string", enum: [...CONDITION_TYPES] },
      status: { type: "string", enum: ["True", "False", "Unknown"] },
      reason: {
        type: "string",
        maxLength: 1024,
        minLength: 1,
        pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description: `CamelCase: Converged, Reconciling, RollingOut, Deleting, Unhealthy, RollbackFailed, Stopped, Removed, AsExpected, or a failure's error code in CamelCase (the code itself leads the message): ${ERROR_CODES.map(reasonOf).join(", ")}.`,
      },
      message: { type: "string", maxLength: 32768 },
      lastTransitionTime: { type: "string", format: "date-time" },
      observedGeneration: { type: "integer", minimum: 0 },
    },
  };
}

export function statusSchema(): StructuralSchema {
  return {
    type: "object",
    description: "Written by rtmanager through the status subresource.",
    properties: {
      phase: { type: "string", enum: [...PHASES] },
      containerId: { type: "string" },
      imageRef: { type: "string", description: "The image the container actually runs." },
      engineEndpoint: { type: "string" },
      health: { type: "string", enum: ["unknown", "healthy", "unhealthy"] },
      observedGeneration: { type: "integer", minimum: 0 },
      restartCount: { type: "integer", minimum: 0 },
      conditions: {
        type: "array",
        items: condition(),
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
      },
    },
  };
}

export function openApiSchema(): StructuralSchema {
  return {
    type: "object",
    description: "A game engine container managed by rtmanager.",
    required: ["spec"],
    properties: {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      spec: specSchema(),
      status: statusSchema(),
    },
    "x-kubernetes-validations": [{ rule: "self.metadata.name == self.spec.gameId", message: "metadata.name must equal spec.gameId" }],
  };
}

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: "Namespaced";
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: { name: string; type: string; jsonPath: string; description?: string; priority?: number }[];
      schema: { openAPIV3Schema: StructuralSchema };
    }[];
  };
}

export function gameRuntimeCrd(): CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: LIST_KIND, plural: PLURAL, singular: SINGULAR, shortNames: [...SHORT_NAMES], categories: ["galaxy"] },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Game", type: "string", jsonPath: ".spec.gameId" },
            { name: "Image", type: "string", jsonPath: ".spec.imageRef" },
            { name: "Desired", type: "string", jsonPath: ".spec.desiredState" },
            { name: "Status", type: "string", jsonPath: ".status.phase" },
            { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: "Restarts", type: "integer", jsonPath: ".status.restartCount" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: { openAPIV3Schema: openApiSchema() },
        },
      ],
    },
  };
}

/** The YAML committed as deploy/crd/gameruntime.yaml. */
export function gameRuntimeCrdYaml(): string {
  const header = "# Generated by scripts/gen-crd.ts from src/crd/schema.ts (RuntimeSpecSchema). Do not edit by hand.\n";
  return header + stringify(gameRuntimeCrd(), { lineWidth: 0 });
}
