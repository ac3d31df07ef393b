/**
 * DELETE as the API server does it: preconditions, a pod's grace period
 * (deletionTimestamp and deletionGracePeriodSeconds until the kubelet
 * confirms with grace 0; 0 = force), finalizers, and propagationPolicy over
 * ownerReferences (a small garbage collector: Background deletes dependents,
 * Orphan strips the owner reference, Foreground holds the owner with the
 * `foregroundDeletion` finalizer until its dependents are gone). Dependents
 * are looked up in the owner's namespace (any namespace for a cluster-scoped
 * owner), synchronously, where the real GC is asynchronous.
 */
import { RESOURCES } from "./resources.js";
import type { ObjectStore } from "./store.js";
import { HttpError, clone, type Obj, type ResourceDef } from "./types.js";

export type PropagationPolicy = "Orphan" | "Background" | "Foreground";

export interface DeleteOptions {
  gracePeriodSeconds?: number;
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
}

const FOREGROUND = "foregroundDeletion";

export class Deleter {
  /** uids some object names as its owner: deleting anything else skips the dependents scan. */
  private readonly ownerUids = new Set<string>();

  constructor(private readonly store: ObjectStore) {
    store.onChange((c) => {
      for (const ref of c.object.metadata.ownerReferences ?? []) this.ownerUids.add(ref.uid);
    });
  }

  delete(def: ResourceDef, namespace: string | undefined, name: string, options: DeleteOptions = {}): Obj | null {
    const existing = this.store.find(def, namespace, name);
    if (!existing) return null;
    const pre = options.preconditions ?? {};
    if (pre.uid && pre.uid !== existing.metadata.uid)
      throw new HttpError(409, "Conflict", `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`);
    if (pre.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion)
      throw new HttpError(409, "Conflict", `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`);
    const policy = options.propagationPolicy ?? "Background";
    const grace = this.graceOf(def, existing, options.gracePeriodSeconds);
    const finalizers = [...(existing.metadata.finalizers ?? [])];
    if (policy === "Foreground" && !finalizers.includes(FOREGROUND) && this.dependents(existing).length > 0) finalizers.push(FOREGROUND);
    if (policy === "Orphan") this.orphan(existing);

    if (finalizers.length === 0 && grace === 0) {
      const gone = this.store.purge(def, existing);
      if (policy !== "Orphan") this.deleteDependents(existing);
      this.releaseForegroundOwners(existing);
      return gone;
    }
    const current = existing.metadata.deletionGracePeriodSeconds;
    if (existing.metadata.deletionTimestamp && stableList(finalizers, existing.metadata.finalizers) && (current === undefined || grace >= current)) return clone(existing);
    const next = clone(existing);
    next.metadata.finalizers = finalizers.length > 0 ? finalizers : undefined;
    if (!next.metadata.finalizers) delete next.metadata.finalizers;
    if (!existing.metadata.deletionTimestamp || grace < (current ?? 0)) next.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    next.metadata.deletionGracePeriodSeconds = Math.min(grace, current ?? grace);
    // Like the API server: the first graceful deletion bumps a custom resource's generation, since the controller's job changed.
    if (def.custom && !existing.metadata.deletionTimestamp) next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
    const committed = this.store.commit(def, existing, next);
    if (policy === "Foreground") this.deleteDependents(existing);
    if (policy === "Background" && !this.store.find(def, namespace, name)) this.deleteDependents(existing);
    return clone(committed);
  }

  /** Pods get a grace period when bound to a node and not finished; everything else is deleted at once. */
  private graceOf(def: ResourceDef, o: Obj, requested: number | undefined): number {
    if (def.key !== "pods") return 0;
    const spec = (o.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
    const phase = ((o.status ?? {}) as { phase?: string }).phase;
    if (!spec.nodeName || phase === "Succeeded" || phase === "Failed") return 0;
    return Math.max(0, requested ?? spec.terminationGracePeriodSeconds ?? 30);
  }

  private dependents(owner: Obj): { def: ResourceDef; obj: Obj }[] {
    const uid = owner.metadata.uid;
    if (!uid || !this.ownerUids.has(uid)) return [];
    const out: { def: ResourceDef; obj: Obj }[] = [];
    for (const def of Object.values(RESOURCES) as ResourceDef[]) {
      for (const obj of this.store.all(def, owner.metadata.namespace)) {
        if ((obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid)) out.push({ def, obj });
      }
    }
    return out;
  }

  private deleteDependents(owner: Obj): void {
    for (const { def, obj } of this.dependents(owner)) this.delete(def, obj.metadata.namespace, obj.metadata.name);
  }

  private orphan(owner: Obj): void {
    for (const { def, obj } of this.dependents(owner)) {
      const next = clone(obj);
      next.metadata.ownerReferences = (obj.metadata.ownerReferences ?? []).filter((r) => r.uid !== owner.metadata.uid);
      if (next.metadata.ownerReferences.length === 0) delete next.metadata.ownerReferences;
      this.store.commit(def, obj, next);
    }
  }

  /** An owner held by foreground deletion goes once none of its dependents is left. */
  private releaseForegroundOwners(dependent: Obj): void {
    for (const ref of dependent.metadata.ownerReferences ?? []) {
      for (const def of Object.values(RESOURCES) as ResourceDef[]) {
        const owner = this.store.all(def, dependent.metadata.namespace).find((o) => o.metadata.uid === ref.uid) ?? this.store.all(def).find((o) => !o.metadata.namespace && o.metadata.uid === ref.uid);
        if (!owner || !(owner.metadata.finalizers ?? []).includes(FOREGROUND) || this.dependents(owner).length > 0) continue;
        const next = clone(owner);
        next.metadata.finalizers = (owner.metadata.finalizers ?? []).filter((f) => f !== FOREGROUND);
        this.store.commit(def, owner, next);
      }
    }
  }
}

function stableList(a: string[], b: string[] | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b ?? []);
}
