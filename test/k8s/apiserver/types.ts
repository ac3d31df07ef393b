/** Shared shapes of the test API server: objects, resource definitions, errors. */

export type Obj = Record<string, unknown> & { metadata: Meta };
export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  finalizers?: string[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  generateName?: string;
  [key: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ResourceDef {
  key: string;
  group: string;
  version: string;
  plural: string;
  kind: string;
  listKind: string;
  statusSubresource: boolean;
  /** Custom resources: generation tracks the spec, updates need a resourceVersion. */
  custom: boolean;
  /** Built-in kinds whose registry strategy keeps metadata.generation (deployments, CRDs): set on create, bumped on a spec change. */
  generation?: boolean;
  /** Cluster-scoped resources (nodes) live under namespace "". */
  namespaced: boolean;
  /** Field selectors the real API server accepts for this resource, beyond metadata.name/namespace. */
  fields: Record<string, (o: Obj) => string>;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  /** The Accept header (`as=Table` asks for server-side printing, table.ts). */
  accept?: string;
  body: unknown;
  /** Resolves when the client closed the connection before the answer was sent (an aborted request). Set for beforeHandle. */
  clientGone?: Promise<void>;
}

export interface FailSpec {
  method?: string;
  /** Substring of the path, or a RegExp. */
  path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
  status: number;
  /** How many matching requests fail; default 1, or unlimited with `forMs`. */
  count?: number;
  /** Fail matching requests for this long (an outage), then answer normally again. */
  forMs?: number;
  reason?: string;
  message?: string;
}

export interface FakeApiServerOptions {
  /** Watch events kept for resumption; older resourceVersions are 410 Gone. Default 1000. */
  historyLimit?: number;
  /** Send BOOKMARKs to watchers that asked for them this often (0: only on sendBookmarks()). */
  bookmarkIntervalMs?: number;
  /** Answer an expired watch with HTTP 410 instead of a 200 stream with an ERROR event. */
  goneAsHttpStatus?: boolean;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** A committed change, as the store hands it to watchers and in-process subscribers. */
export interface Change {
  rv: number;
  resource: string;
  namespace: string;
  type: WatchEventType;
  object: Obj;
  /** The object before the change (MODIFIED and DELETED), for selector transitions. */
  previous: Obj | null;
}

export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const clone = <T>(v: T): T => structuredClone(v);
export const nowTime = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

/** Key-order independent JSON, for "did anything change" comparisons. */
export function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

export function statusBody(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

export function qualified(def: ResourceDef): string {
  return `${def.plural}${def.group ? `.${def.group}` : ""}`;
}

export function notFound(def: ResourceDef, name: string): HttpError {
  return new HttpError(404, "NotFound", `${qualified(def)} "${name}" not found`);
}

export function conflict(def: ResourceDef, name: string): HttpError {
  return new HttpError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(def)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
  );
}
