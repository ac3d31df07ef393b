/**
 * The contract's lifecycle verbs, as the wire sees them: route, request body
 * and the operation-log kind. The HTTP router and dispatch, the typed client
 * and rtmctl all read this table; what each verb does to the desired state
 * is its row in src/controller/verbs.ts, keyed by the same names, so the
 * compiler asks for that row too. test/unit/verb-table.test.ts holds the
 * table to ../shared/contract/internal-openapi.yaml.
 *
 * The bodies are the contract's StartRequest, StopRequest and PatchRequest,
 * strict like its `additionalProperties: false`. Only types and enums are
 * checked here; what an image_ref or game_id may look like is the operations
 * layer's rule, so the CRD and SQL paths share it.
 */
import { z } from "zod";
import { RuntimeSpecSchema } from "./declaration.js";
import { VERB_NAMES, type StopReason } from "./status.js";

const imageRef = z.string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") });
/** The declaration's own stopReason enum: a body can ask for no reason a declaration cannot hold. */
const stopReasons = RuntimeSpecSchema.shape.stopReason.unwrap().options;

export const StartRequestSchema = z.object({ image_ref: imageRef }).strict();

export const StopRequestSchema = z
  .object({
    reason: z.enum(stopReasons, {
      error: (issue) => (issue.input === undefined ? "is required" : `must be one of ${stopReasons.join(", ")}`),
    }),
  })
  .strict();

export const PatchRequestSchema = z.object({ image_ref: imageRef }).strict();

export type StartRequest = z.infer<typeof StartRequestSchema>;
export type StopRequest = z.infer<typeof StopRequestSchema>;
export type PatchRequest = z.infer<typeof PatchRequestSchema>;

export { VERB_NAMES };
export type VerbName = (typeof VERB_NAMES)[number];

export const INTERNAL_RUNTIMES = "/api/v1/internal/runtimes";

export interface VerbSpec<B extends z.ZodType | null> {
  method: "POST" | "DELETE";
  /** The contract's path template; also the metrics label and log field. */
  template: string;
  /** The contract's operationId, which the table test matches rows by. */
  operationId: string;
  /** null: the contract defines no body; whatever is sent is read and dropped. */
  body: B;
  /** The image the verb asks to run: checked against RTMANAGER_IMAGE_ALLOWLIST before anything else. */
  image?(body: BodyOf<B>): string;
  /** What the operation log records besides the kind. */
  logged(body: BodyOf<B>): { imageRef: string | null; stopReason: StopReason | null };
}

type BodyOf<B> = B extends z.ZodType ? z.output<B> : undefined;

const nothingLogged = () => ({ imageRef: null, stopReason: null });

export const VERBS = {
  start: {
    method: "POST",
    template: `${INTERNAL_RUNTIMES}/{game_id}/start`,
    operationId: "internalStartRuntime",
    body: StartRequestSchema,
    image: (b: StartRequest) => b.image_ref,
    logged: (b: StartRequest) => ({ imageRef: b.image_ref, stopReason: null }),
  },
  stop: {
    method: "POST",
    template: `${INTERNAL_RUNTIMES}/{game_id}/stop`,
    operationId: "internalStopRuntime",
    body: StopRequestSchema,
    logged: (b: StopRequest) => ({ imageRef: null, stopReason: b.reason }),
  },
  restart: {
    method: "POST",
    template: `${INTERNAL_RUNTIMES}/{game_id}/restart`,
    operationId: "internalRestartRuntime",
    body: null,
    logged: nothingLogged,
  },
  patch: {
    method: "POST",
    template: `${INTERNAL_RUNTIMES}/{game_id}/patch`,
    operationId: "internalPatchRuntime",
    body: PatchRequestSchema,
    image: (b: PatchRequest) => b.image_ref,
    logged: (b: PatchRequest) => ({ imageRef: b.image_ref, stopReason: null }),
  },
  cleanup: {
    method: "DELETE",
    template: `${INTERNAL_RUNTIMES}/{game_id}/container`,
    operationId: "internalCleanupRuntimeContainer",
    body: null,
    logged: nothingLogged,
  },
} as const satisfies { [V in VerbName]: VerbSpec<z.ZodType | null> };

/** The parsed request body of verb V: what the client sends and the controller decides on. */
export type VerbBody<V extends VerbName> = BodyOf<(typeof VERBS)[V]["body"]>;

/** A verb's row, typed by its own body, for code that handles any verb. */
export function verbSpec<V extends VerbName>(verb: V): VerbSpec<z.ZodType<VerbBody<V>> | null> {
  return VERBS[verb] as unknown as VerbSpec<z.ZodType<VerbBody<V>> | null>;
}

export function isVerb(name: string): name is VerbName {
  return (VERB_NAMES as readonly string[]).includes(name);
}

/** The request path of verb V for one game, as the client sends it. */
export function verbPath(verb: VerbName, encodedGameId: string): string {
  return VERBS[verb].template.replace("{game_id}", encodedGameId);
}
