/**
 * A minimal default-scheduler: binds each unbound pod to the Ready,
 * schedulable node with the fewest pods whose NoSchedule/NoExecute taints it
 * tolerates, once every PersistentVolumeClaim it mounts exists; otherwise
 * PodScheduled=False/Unschedulable, retried when nodes or claims change.
 * The Unschedulable message has upstream's form (pkg/scheduler/framework
 * types.go `FitError.Error`: `0/<n> nodes are available: <count> <reason>,
 * ….`, the histogram sorted by reason), with the filters' reasons
 * NodeUnschedulable `ErrReasonUnschedulable` ("node(s) were unschedulable")
 * and TaintToleration's "node(s) had untolerated taint {<key>: <value>}".
 * Not modelled: the PostFilter's " preemption: …" suffix, resource fit.
 */
import type { Change, FakeApiServer, Obj } from "../fakeApiServer.js";
import { setCondition } from "./status.js";
import type { Condition, PodSpec, PodStatus } from "./types.js";

interface Taint {
  key: string;
  value?: string;
  effect: string;
}

export function tolerates(spec: PodSpec, taint: Taint): boolean {
  return (spec.tolerations ?? []).some(
    (t) => (t.operator === "Exists" ? !t.key || t.key === taint.key : t.key === taint.key && (t.value ?? "") === (taint.value ?? "")) && (!t.effect || t.effect === taint.effect),
  );
}

export function nodeReady(node: Obj): boolean {
  const conds = ((node.status ?? {}) as { conditions?: Condition[] }).conditions ?? [];
  return conds.some((c) => c.type === "Ready" && c.status === "True");
}

const UNSCHEDULABLE_TAINT: Taint = { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" };

/**
 * Why a node does not fit, or null: node_unschedulable.go `Filter` (a cordoned
 * node, unless the pod tolerates its unschedulable taint), then
 * taint_toleration.go `Filter` (the first NoSchedule/NoExecute taint not
 * tolerated). A node that is not Ready and has no taint saying so (upstream's
 * node lifecycle controller always adds `node.kubernetes.io/not-ready`) is
 * "node(s) were not ready", the pre-taint scheduler's wording.
 */
export function filterReason(spec: PodSpec, node: Obj): string | null {
  const nodeSpec = (node.spec ?? {}) as { unschedulable?: boolean; taints?: Taint[] };
  if (nodeSpec.unschedulable && !tolerates(spec, UNSCHEDULABLE_TAINT)) return "node(s) were unschedulable";
  const untolerated = (nodeSpec.taints ?? []).find((t) => t.effect !== "PreferNoSchedule" && !tolerates(spec, t));
  if (untolerated) return `node(s) had untolerated taint {${untolerated.key}: ${untolerated.value ?? ""}}`;
  if (!nodeReady(node)) return "node(s) were not ready";
  return null;
}

/** framework/types.go `FitError.Error`: the reasons' histogram, sorted, after the node count. */
export function fitError(spec: PodSpec, nodes: Obj[]): string {
  const histogram = new Map<string, number>();
  for (const n of nodes) {
    const reason = filterReason(spec, n);
    if (reason) histogram.set(reason, (histogram.get(reason) ?? 0) + 1);
  }
  const reasons = [...histogram].map(([reason, count]) => `${count} ${reason}`).sort();
  return `0/${nodes.length} nodes are available${reasons.length ? `: ${reasons.join(", ")}` : ""}.`;
}

export class Scheduler {
  private readonly pending = new Set<string>();
  private readonly placement = new Map<string, string>();
  private passQueued = false;
  private readonly unsubscribe: () => void;

  constructor(private readonly api: FakeApiServer) {
    this.unsubscribe = api.subscribe((c) => this.onChange(c));
    for (const p of api.list("pods")) this.track(p, false);
    this.queuePass();
  }

  stop(): void {
    this.unsubscribe();
  }

  private key(o: Obj): string {
    return `${o.metadata.namespace}/${o.metadata.name}`;
  }

  private track(pod: Obj, deleted: boolean): void {
    const k = this.key(pod);
    const node = (pod.spec as PodSpec).nodeName;
    if (deleted) {
      this.pending.delete(k);
      this.placement.delete(k);
    } else if (node) {
      this.pending.delete(k);
      this.placement.set(k, node);
    } else if (!pod.metadata.deletionTimestamp) this.pending.add(k);
  }

  private onChange(c: Change): void {
    if (c.resource === "pods") this.track(c.object, c.type === "DELETED");
    if (c.resource === "pods" || c.resource === "nodes" || c.resource === "persistentvolumeclaims") this.queuePass();
  }

  private queuePass(): void {
    if (this.passQueued || this.pending.size === 0) return;
    this.passQueued = true;
    setImmediate(() => {
      this.passQueued = false;
      this.pass();
    });
  }

  private pass(): void {
    const all = this.api.list("nodes");
    const nodes = all.filter((n) => nodeReady(n));
    const load = new Map<string, number>(nodes.map((n) => [n.metadata.name, 0]));
    for (const node of this.placement.values()) if (load.has(node)) load.set(node, load.get(node)! + 1);
    for (const k of [...this.pending]) {
      const [ns, name] = k.split("/") as [string, string];
      const pod = this.api.get("pods", ns, name);
      if (!pod || (pod.spec as PodSpec).nodeName) {
        this.pending.delete(k);
        continue;
      }
      const reason = this.unschedulable(pod, ns);
      const fit = reason ? [] : nodes.filter((n) => filterReason(pod.spec as PodSpec, n) === null);
      fit.sort((a, b) => load.get(a.metadata.name)! - load.get(b.metadata.name)! || a.metadata.name.localeCompare(b.metadata.name));
      const chosen = fit[0];
      if (!chosen) {
        this.markUnschedulable(pod, reason ?? fitError(pod.spec as PodSpec, all));
        continue;
      }
      this.api.bindPod(ns, name, chosen.metadata.name);
      load.set(chosen.metadata.name, load.get(chosen.metadata.name)! + 1);
    }
  }

  private unschedulable(pod: Obj, ns: string): string | null {
    for (const v of (pod.spec as PodSpec).volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim && !this.api.get("persistentvolumeclaims", ns, claim)) return `0/${this.api.list("nodes").length} nodes are available: persistentvolumeclaim "${claim}" not found.`;
    }
    return null;
  }

  private markUnschedulable(pod: Obj, message: string): void {
    const status = (pod.status ?? {}) as PodStatus;
    const conditions = setCondition(status.conditions ?? [], { type: "PodScheduled", status: "False", reason: "Unschedulable", message });
    this.api.setStatus("pods", pod.metadata.namespace ?? "", pod.metadata.name, { ...status, conditions });
  }
}
