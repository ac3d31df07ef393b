/**
 * The object store: one resourceVersion counter for everything (like etcd),
 * create / update / delete with the API server's rules, and a change feed
 * for watchers. Deletion (grace periods, finalizers, owner references) is in
 * deletion.ts.
 */
import { randomUUID } from "node:crypto";
import { RESOURCES, apiVersionOf } from "./resources.js";
import { applyCreateDefaults, applyWriteDefaults, validatePodUpdate } from "./rules.js";
import { HttpError, clone, notFound, nowTime, stable, type Change, type Meta, type Obj, type ResourceDef } from "./types.js";

export type Endpoint = "main" | "status";

/** Everything but metadata and status: what a custom resource's generation tracks. */
function specPart(o: Obj): string {
  const { metadata: _m, status: _s, ...rest } = o;
  return stable(rest);
}

function withoutRv(o: Obj): string {
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = o.metadata;
  return stable({ ...o, metadata: meta });
}

export class ObjectStore {
  private rv = 1;
  private readonly items = new Map<string, Map<string, Obj>>();
  private readonly listeners = new Set<(change: Change) => void>();
  /** Admission on create (the ResourceQuota plugin): throws to refuse; runs before the name is checked for existence, as upstream admits before storage. */
  /** Admission on create: may refuse (throw) or mutate `body` (the object about to be stored). */
  admitCreate: ((def: ResourceDef, namespace: string | undefined, name: string, body: Obj) => void) | null = null;

  constructor() {
    for (const r of Object.values(RESOURCES)) this.items.set(r.key, new Map());
  }

  get resourceVersion(): number {
    return this.rv;
  }

  nextRv(): string {
    return String(++this.rv);
  }

  onChange(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  key(namespace: string | undefined, name: string): string {
    return `${namespace ?? ""}/${name}`;
  }

  find(def: ResourceDef, namespace: string | undefined, name: string): Obj | undefined {
    return this.items.get(def.key)!.get(this.key(def.namespaced ? namespace : "", name));
  }

  mustGet(def: ResourceDef, namespace: string | undefined, name: string): Obj {
    const o = this.find(def, namespace, name);
    if (!o) throw notFound(def, name);
    return o;
  }

  /** Live objects (not copies): callers clone what they hand out. */
  all(def: ResourceDef, namespace?: string): Obj[] {
    return [...this.items.get(def.key)!.values()].filter((o) => !namespace || o.metadata.namespace === namespace);
  }

  create(def: ResourceDef, namespace: string | undefined, body: Obj): Obj {
    if (!body || typeof body !== "object" || !body.metadata) throw new HttpError(400, "BadRequest", "body must be an object with metadata");
    const meta = body.metadata;
    const ns = def.namespaced ? namespace : undefined;
    if (def.namespaced && !ns) throw new HttpError(405, "MethodNotAllowed", "create needs a namespace");
    if (ns && meta.namespace && meta.namespace !== ns) throw new HttpError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL");
    const name = meta.name || (meta.generateName ? `${meta.generateName}${randomUUID().slice(0, 5)}` : "");
    if (!name) throw new HttpError(422, "Invalid", "metadata.name: Required value");
    this.admitCreate?.(def, ns, name, body);
    if (this.find(def, ns, name)) throw new HttpError(409, "AlreadyExists", `${def.plural}${def.group ? `.${def.group}` : ""} "${name}" already exists`);
    const metadata: Meta = { ...clone(meta), name, uid: randomUUID(), creationTimestamp: nowTime(), resourceVersion: this.nextRv(), ...(def.custom || def.generation ? { generation: 1 } : {}) };
    if (ns) metadata.namespace = ns;
    else delete metadata.namespace;
    const obj: Obj = { ...clone(body), apiVersion: apiVersionOf(def), kind: def.kind, metadata };
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    delete obj.metadata.generateName;
    if (def.statusSubresource) delete obj.status;
    applyCreateDefaults(def, obj);
    this.items.get(def.key)!.set(this.key(ns, name), obj);
    this.publish(def, "ADDED", obj, null);
    return obj;
  }

  /**
   * What a write may not change: identity and server-owned metadata; status
   * (or all but status) per endpoint; the pod spec except images unless
   * `internal` (the scheduler binding a pod).
   */
  keepImmutable(def: ResourceDef, existing: Obj, next: Obj, endpoint: Endpoint, internal = false): Obj {
    if (def.statusSubresource) {
      if (endpoint === "main") {
        if (existing.status === undefined) delete next.status;
        else next.status = clone(existing.status);
      } else {
        const status = next.status;
        next = clone(existing);
        if (status === undefined) delete next.status;
        else next.status = status;
      }
    }
    if (def.key === "pods" && endpoint === "main" && !internal) validatePodUpdate(existing, next);
    next.apiVersion = existing.apiVersion;
    next.kind = existing.kind;
    const meta: Meta = { ...(next.metadata ?? {}), name: existing.metadata.name };
    meta.namespace = existing.metadata.namespace;
    meta.uid = existing.metadata.uid;
    meta.creationTimestamp = existing.metadata.creationTimestamp;
    meta.generation = existing.metadata.generation;
    meta.resourceVersion = existing.metadata.resourceVersion;
    meta.deletionTimestamp = existing.metadata.deletionTimestamp;
    meta.deletionGracePeriodSeconds = existing.metadata.deletionGracePeriodSeconds;
    for (const k of Object.keys(meta)) if (meta[k] === undefined) delete meta[k];
    next.metadata = meta;
    return next;
  }

  /**
   * Stores an update: new resourceVersion, generation on spec change, removal
   * when a deleted object's last finalizer goes (and its grace period is over).
   * A no-op write changes nothing.
   */
  commit(def: ResourceDef, existing: Obj, next: Obj): Obj {
    applyWriteDefaults(def, next);
    if ((def.custom || def.generation) && specPart(existing) !== specPart(next)) next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
    if (withoutRv(existing) === withoutRv(next)) return existing;
    next.metadata.resourceVersion = this.nextRv();
    const k = this.key(existing.metadata.namespace, existing.metadata.name);
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0 && !next.metadata.deletionGracePeriodSeconds) {
      this.items.get(def.key)!.delete(k);
      this.publish(def, "DELETED", next, existing);
      return next;
    }
    this.items.get(def.key)!.set(k, next);
    this.publish(def, "MODIFIED", next, existing);
    return next;
  }

  /** Removes an object for good (no finalizers left, grace over). */
  purge(def: ResourceDef, existing: Obj): Obj {
    this.items.get(def.key)!.delete(this.key(existing.metadata.namespace, existing.metadata.name));
    const gone = clone(existing);
    gone.metadata.resourceVersion = this.nextRv();
    this.publish(def, "DELETED", gone, existing);
    return gone;
  }

  private publish(def: ResourceDef, type: Change["type"], obj: Obj, previous: Obj | null): void {
    const change: Change = { rv: Number(obj.metadata.resourceVersion), resource: def.key, namespace: obj.metadata.namespace ?? "", type, object: clone(obj), previous: previous ? clone(previous) : null };
    for (const l of this.listeners) l(change);
  }
}
