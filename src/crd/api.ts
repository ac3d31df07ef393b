/**
 * The GameRuntime resource as the controller sees it on the wire, and a thin
 * typed wrapper over @kubernetes/client-node 1.4's CustomObjectsApi (whose
 * methods return `any`). Shared by the declaration source, the status writer
 * and the event recorder.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig, type V1ObjectMeta } from "@kubernetes/client-node";
import { apiMessageOf, httpStatusOf, isAbortError } from "../kube/api.js";
import { RtmError } from "../model/errors.js";

export const GROUP = "galaxy.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "GameRuntime";
export const LIST_KIND = "GameRuntimeList";
export const PLURAL = "gameruntimes";
export const SINGULAR = "gameruntime";
export const SHORT_NAMES = ["grt"];

/** Removed by the controller once the container is gone; keeps the object until then. */
export const FINALIZER = "galaxy.io/runtime-cleanup";
/** Op id and source of the last REST write, and the generation that write produced. */
export const ANNOTATION_OP_ID = "galaxy.io/op-id";
export const ANNOTATION_OP_SOURCE = "galaxy.io/op-source";
export const ANNOTATION_OP_GENERATION = "galaxy.io/op-generation";
/**
 * Added to metadata.generation to give the loop its declaration generation.
 * A deleted and re-created GameRuntime starts again at generation 1, but the
 * runtime record of that game remembers the old object's generations; the
 * base (the record's highest generation when the object was first seen)
 * keeps the loop's generations increasing, as the SQL store does on insert.
 */
export const ANNOTATION_GENERATION_BASE = "galaxy.io/generation-base";

export const CONDITION_TYPES = ["Ready", "Progressing", "Degraded", "Conflict"] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];
export type ConditionStatus = "True" | "False" | "Unknown";

/** metav1.Condition. */
export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

export const PHASES = ["pending", "running", "stopped", "removed", "failed"] as const;
export type Phase = (typeof PHASES)[number];

export interface GameRuntimeStatus {
  phase?: Phase;
  containerId?: string | null;
  imageRef?: string | null;
  engineEndpoint?: string | null;
  health?: string;
  observedGeneration?: number;
  restartCount?: number;
  conditions?: Condition[];
}

export interface GameRuntimeObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  /** Unvalidated: parsed with RuntimeSpecSchema where it is used. */
  spec?: unknown;
  status?: GameRuntimeStatus;
}

export interface ObjectRef {
  namespace: string;
  name: string;
}

/**
 * A contract error code as a Kubernetes reason: the API conventions want
 * reasons in CamelCase (`image_pull_failed` -> `ImagePullFailed`). The code
 * itself goes into the message, so it stays greppable.
 */
export function reasonOf(code: string): string {
  const camel = code
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join("");
  return /^[A-Za-z]/.test(camel) ? camel : `Error${camel}`;
}

/** The message of a condition or Event for a failure: the code first, then what happened. */
export function failureMessage(code: string, message: string): string {
  return message.startsWith(`${code}: `) ? message : `${code}: ${message}`;
}

/** Maps an API failure to the contract's codes: 422 is the caller's fault, the rest is the API server's. */
export function toApiRtmError(err: unknown, what: string): RtmError {
  if (err instanceof RtmError) return err;
  const status = httpStatusOf(err);
  const message = `${what}: ${apiMessageOf(err)}`;
  if (status === 422 || status === 400) return new RtmError("invalid_request", message, undefined, { cause: err });
  const outcome = status ? `answered ${status}` : isAbortError(err) ? "timed out" : "unreachable";
  return new RtmError("service_unavailable", `Kubernetes API ${outcome}: ${message}`, undefined, { cause: err });
}

export function isGameRuntimeObject(value: unknown): value is GameRuntimeObject {
  if (typeof value !== "object" || value === null) return false;
  const meta = (value as { metadata?: unknown }).metadata;
  if (typeof meta !== "object" || meta === null) return false;
  const m = meta as { name?: unknown; namespace?: unknown };
  return typeof m.name === "string" && typeof m.namespace === "string";
}

function asObject(value: unknown, what: string): GameRuntimeObject {
  if (!isGameRuntimeObject(value)) throw new RtmError("internal_error", `${what}: the API server answered something that is not a namespaced object`);
  return value;
}

const mergePatch = () => setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** Typed calls on gameruntimes.galaxy.io/v1alpha1. Errors are the client's (ApiException). */
export class GameRuntimeApi {
  readonly api: CustomObjectsApi;

  constructor(readonly kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  private base(namespace: string) {
    return { group: GROUP, version: VERSION, namespace, plural: PLURAL };
  }

  /** null on 404. */
  async get(ref: ObjectRef): Promise<GameRuntimeObject | null> {
    try {
      return asObject(await this.api.getNamespacedCustomObject({ ...this.base(ref.namespace), name: ref.name }), "get");
    } catch (err) {
      if (httpStatusOf(err) === 404) return null;
      throw err;
    }
  }

  /** One namespace, or all of them (namespace undefined). */
  async list(namespace: string | undefined, fieldSelector?: string): Promise<{ items: GameRuntimeObject[]; resourceVersion: string }> {
    const raw: unknown =
      namespace === undefined
        ? await this.api.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, fieldSelector })
        : await this.api.listNamespacedCustomObject({ ...this.base(namespace), fieldSelector });
    const list = raw as { items?: unknown[]; metadata?: { resourceVersion?: string } };
    const items = (list.items ?? []).map((item) => asObject(item, "list"));
    return { items, resourceVersion: list.metadata?.resourceVersion ?? "" };
  }

  async create(obj: GameRuntimeObject): Promise<GameRuntimeObject> {
    return asObject(await this.api.createNamespacedCustomObject({ ...this.base(obj.metadata.namespace), body: obj }), "create");
  }

  /** PUT with the object's metadata.resourceVersion: 409 when it is stale. */
  async replace(obj: GameRuntimeObject): Promise<GameRuntimeObject> {
    return asObject(
      await this.api.replaceNamespacedCustomObject({ ...this.base(obj.metadata.namespace), name: obj.metadata.name, body: obj }),
      "replace",
    );
  }

  /** JSON merge patch of the object; a metadata.resourceVersion in the patch makes it conditional. */
  async patch(ref: ObjectRef, body: object): Promise<GameRuntimeObject> {
    return asObject(await this.api.patchNamespacedCustomObject({ ...this.base(ref.namespace), name: ref.name, body }, mergePatch()), "patch");
  }

  /** JSON merge patch of the status subresource. */
  async patchStatus(ref: ObjectRef, body: object): Promise<GameRuntimeObject> {
    return asObject(
      await this.api.patchNamespacedCustomObjectStatus({ ...this.base(ref.namespace), name: ref.name, body }, mergePatch()),
      "patch status",
    );
  }

  async delete(ref: ObjectRef): Promise<boolean> {
    try {
      await this.api.deleteNamespacedCustomObject({ ...this.base(ref.namespace), name: ref.name });
      return true;
    } catch (err) {
      if (httpStatusOf(err) === 404) return false;
      throw err;
    }
  }

  /** Path of the list/watch endpoint, for client-node's Watch. */
  watchPath(namespace: string | undefined): string {
    return namespace === undefined ? `/apis/${GROUP}/${VERSION}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
  }
}
