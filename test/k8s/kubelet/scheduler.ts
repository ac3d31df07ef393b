/**
 * A minimal default-scheduler: binds each unbound pod to the Ready,
 * schedulable node with the fewest pods whose NoSchedule/NoExecute taints it
 * tolerates, once every PersistentVolumeClaim it mounts exists; otherwise
 * PodScheduled=False/Unschedulable, retried when nodes or claims change.
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
    const nodes = this.api.list("nodes").filter((n) => nodeReady(n) && !(n.spec as { unschedulable?: boolean }).unschedulable);
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
      const fit = reason ? [] : nodes.filter((n) => ((n.spec as { taints?: Taint[] }).taints ?? []).every((t) => t.effect === "PreferNoSchedule" || tolerates(pod.spec as PodSpec, t)));
      fit.sort((a, b) => load.get(a.metadata.name)! - load.get(b.metadata.name)! || a.metadata.name.localeCompare(b.metadata.name));
      const chosen = fit[0];
      if (!chosen) {
        this.markUnschedulable(pod, reason ?? `0/${load.size} nodes are available: no Ready node without an untolerated taint.`);
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
