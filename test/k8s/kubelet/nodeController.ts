/**
 * The control plane's side of node failures: the node lifecycle controller
 * (a partitioned node goes Ready=Unknown with the unreachable taints; its
 * pods' Ready condition goes False, nothing else: MarkPodsNotReady in
 * kubernetes pkg/controller/util/node), the pod garbage collector
 * (pkg/controller/podgc: `gcOrphaned` force-deletes the pods of a deleted
 * node, `gcTerminating` the terminating pods of an out-of-service node), and
 * a PVC binder that binds every claim at once. Evicting the pods of a
 * NoExecute-tainted node is the taint eviction controller's
 * (taintEviction.ts).
 */
import type { Change, FakeApiServer, Obj } from "../fakeApiServer.js";
import { setCondition } from "./status.js";
import { OUT_OF_SERVICE_TAINT, UNREACHABLE_TAINT, nowTime, type Condition, type PodSpec, type PodStatus } from "./types.js";

export interface NodeControllerHooks {
  /** The machine behind a node is gone (deleted or declared out of service): its containers die. */
  powerOff: (node: string) => Promise<void>;
  podGc: boolean;
}

interface Taint {
  key: string;
  value?: string;
  effect: string;
}

export class NodeController {
  private readonly unsubscribe: () => void;
  /** Out-of-service nodes whose machine is off: their terminating pods may go (gcTerminating). */
  private readonly shutDown = new Set<string>();

  constructor(
    private readonly api: FakeApiServer,
    private readonly hooks: NodeControllerHooks,
  ) {
    this.unsubscribe = api.subscribe((c) => this.onChange(c));
  }

  stop(): void {
    this.unsubscribe();
  }

  private onChange(c: Change): void {
    if (c.resource === "persistentvolumeclaims" && c.type === "ADDED") setImmediate(() => this.bindClaim(c.object));
    if (c.resource === "pods" && c.type === "MODIFIED" && c.object.metadata.deletionTimestamp) {
      const node = (c.object.spec as PodSpec).nodeName;
      if (node && this.shutDown.has(node)) setImmediate(() => this.gcTerminating(node));
    }
    if (c.resource !== "nodes") return;
    const name = c.object.metadata.name;
    const outOfService = (o: Obj | null | undefined) => !!o && taints(o).some((t) => t.key === OUT_OF_SERVICE_TAINT);
    if (c.type === "DELETED") setImmediate(() => void this.nodeGone(name));
    else if (outOfService(c.object) && !outOfService(c.previous)) setImmediate(() => void this.outOfService(name));
    else if (!outOfService(c.object)) this.shutDown.delete(name);
  }

  /** What the node lifecycle controller does once a node stops posting status. */
  markUnreachable(node: string): void {
    const obj = this.api.get("nodes", "", node);
    if (!obj) return;
    const status = (obj.status ?? {}) as { conditions?: (Condition & { lastHeartbeatTime?: string })[] };
    const conditions = (status.conditions ?? []).map((c) => ({ ...c, status: "Unknown" as const, reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastTransitionTime: nowTime() }));
    this.api.setStatus("nodes", "", node, { ...status, conditions });
    this.api.update("nodes", "", node, (o) => {
      const spec = (o.spec ?? {}) as { taints?: Taint[] };
      const kept = (spec.taints ?? []).filter((t) => t.key !== UNREACHABLE_TAINT);
      spec.taints = [...kept, { key: UNREACHABLE_TAINT, effect: "NoSchedule" }, { key: UNREACHABLE_TAINT, effect: "NoExecute", timeAdded: nowTime() } as Taint];
      o.spec = spec;
    });
    // MarkPodsNotReady: the Ready condition's status only (its reason and message kept); phase, ContainersReady
    // and the container statuses stay as the kubelet last posted them. Pods without a Ready condition are left alone.
    for (const pod of this.podsOn(node)) {
      const ps = (pod.status ?? {}) as PodStatus;
      const ready = (ps.conditions ?? []).find((c) => c.type === "Ready");
      if (!ready || ready.status === "False") continue;
      const conditions = setCondition(ps.conditions ?? [], { ...ready, status: "False" });
      this.api.setStatus("pods", pod.metadata.namespace ?? "", pod.metadata.name, { ...ps, conditions });
    }
  }

  private podsOn(node: string): Obj[] {
    return this.api.list("pods").filter((p) => (p.spec as PodSpec).nodeName === node);
  }

  private async nodeGone(node: string): Promise<void> {
    await this.hooks.powerOff(node);
    if (!this.hooks.podGc) return;
    for (const pod of this.podsOn(node)) this.api.remove("pods", pod.metadata.namespace ?? "", pod.metadata.name, { gracePeriodSeconds: 0 });
  }

  /**
   * Non-graceful node shutdown: the operator says the machine is off (so it is powered off here first); the
   * taint eviction controller deletes the pods that do not tolerate the taint, and the pod GC force-deletes
   * those terminating, now and whenever one starts terminating later (podgc `gcTerminating`).
   */
  private async outOfService(node: string): Promise<void> {
    await this.hooks.powerOff(node);
    this.shutDown.add(node);
    this.gcTerminating(node);
  }

  private gcTerminating(node: string): void {
    if (!this.hooks.podGc || !this.shutDown.has(node)) return;
    for (const pod of this.podsOn(node)) {
      if (pod.metadata.deletionTimestamp) this.api.remove("pods", pod.metadata.namespace ?? "", pod.metadata.name, { gracePeriodSeconds: 0 });
    }
  }

  private bindClaim(pvc: Obj): void {
    const { namespace, name, uid } = pvc.metadata;
    const live = this.api.get("persistentvolumeclaims", namespace ?? "", name);
    if (!live || live.metadata.uid !== uid) return;
    const spec = (live.spec ?? {}) as { accessModes?: string[]; resources?: { requests?: { storage?: string } } };
    this.api.update("persistentvolumeclaims", namespace ?? "", name, (o) => {
      (o.spec as Record<string, unknown>).volumeName = `pvc-${uid}`;
      o.metadata.annotations = { ...(o.metadata.annotations ?? {}), "pv.kubernetes.io/bind-completed": "yes" };
    });
    this.api.setStatus("persistentvolumeclaims", namespace ?? "", name, { phase: "Bound", accessModes: spec.accessModes ?? ["ReadWriteOnce"], capacity: { storage: spec.resources?.requests?.storage ?? "1Gi" } });
  }
}

function taints(node: Obj): Taint[] {
  return ((node.spec ?? {}) as { taints?: Taint[] }).taints ?? [];
}
