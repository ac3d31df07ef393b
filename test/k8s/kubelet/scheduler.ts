/**
 * A minimal default-scheduler: binds each unbound pod to the Ready,
 * schedulable node with the fewest pods whose NoSchedule/NoExecute taints it
 * tolerates, once every PersistentVolumeClaim it mounts exists; otherwise
 * PodScheduled=False/Unschedulable, retried when nodes or claims change.
 * The Unschedulable message has upstream's form (pkg/scheduler/framework
 * types.go `FitError.Error`: `0/<n> nodes are available: <count> <reason>,
 * ….`, the histogram sorted by reason), with the filters' reasons
 * NodeUnschedulable `ErrReasonUnschedulable` ("node(s) were unschedulable")
 * TaintToleration's "node(s) had untolerated taint {<key>: <value>}", and
 * NodeResourcesFit's "Too many pods", "Insufficient cpu", "Insufficient
 * memory" (noderesources/fit.go `fitsRequest`, against the Node's
 * `status.allocatable` less the requests of the non-terminal pods bound to it;
 * one node can count under several of them).
 * Not modelled: the PostFilter's " preemption: …" suffix, scoring (fewest pods
 * wins), extended resources and ephemeral storage.
 */
import type { Change, FakeApiServer, Obj } from "../fakeApiServer.js";
import { setCondition } from "./status.js";
import { milliValue, parseQuantity, wholeValue } from "../../../src/model/quantity.js";
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

/** What pods ask of a node, or what a node has left: millicores, bytes, pod slots. */
export interface Resources {
  cpuMilli: number;
  memory: number;
  pods: number;
}

const quantity = (q: string | number | undefined, milli: boolean): number => {
  const parsed = q === undefined ? null : parseQuantity(String(q));
  return parsed ? Number(milli ? milliValue(parsed) : wholeValue(parsed)) : 0;
};

/** A pod's requests (noderesources `computePodResourceRequest`: the containers' sum; init containers and overhead not modelled). */
export function podRequests(spec: PodSpec): Resources {
  const sum: Resources = { cpuMilli: 0, memory: 0, pods: 1 };
  for (const c of spec.containers ?? []) {
    const requests = (c as { resources?: { requests?: Record<string, string | number> } }).resources?.requests ?? {};
    sum.cpuMilli += quantity(requests.cpu, true);
    sum.memory += quantity(requests.memory, false);
  }
  return sum;
}

/** A node's `status.allocatable`; a resource it does not name is unlimited. */
export function allocatable(node: Obj): Resources {
  const a = ((node.status ?? {}) as { allocatable?: Record<string, string | number> }).allocatable ?? {};
  return {
    cpuMilli: a.cpu === undefined ? Infinity : quantity(a.cpu, true),
    memory: a.memory === undefined ? Infinity : quantity(a.memory, false),
    pods: a.pods === undefined ? Infinity : quantity(a.pods, false),
  };
}

/** noderesources/fit.go `fitsRequest`: the reasons a node's allocatable less what is `used` cannot take `pod`. */
export function insufficient(pod: Resources, node: Obj, used: Resources): string[] {
  const free = allocatable(node);
  const reasons: string[] = [];
  if (used.pods + 1 > free.pods) reasons.push("Too many pods");
  if (pod.cpuMilli > 0 && pod.cpuMilli > free.cpuMilli - used.cpuMilli) reasons.push("Insufficient cpu");
  if (pod.memory > 0 && pod.memory > free.memory - used.memory) reasons.push("Insufficient memory");
  return reasons;
}

const NONE: Resources = { cpuMilli: 0, memory: 0, pods: 0 };

/**
 * Why a node does not fit, or null: node_unschedulable.go `Filter` (a cordoned
 * node, unless the pod tolerates its unschedulable taint), then
 * taint_toleration.go `Filter` (the first NoSchedule/NoExecute taint not
 * tolerated). A node that is not Ready and has no taint saying so (upstream's
 * node lifecycle controller always adds `node.kubernetes.io/not-ready`) is
 * "node(s) were not ready", the pre-taint scheduler's wording.
 */
export function filterReasons(spec: PodSpec, node: Obj, used: Resources = NONE, asked: Resources = podRequests(spec)): string[] {
  const nodeSpec = (node.spec ?? {}) as { unschedulable?: boolean; taints?: Taint[] };
  if (nodeSpec.unschedulable && !tolerates(spec, UNSCHEDULABLE_TAINT)) return ["node(s) were unschedulable"];
  const untolerated = (nodeSpec.taints ?? []).find((t) => t.effect !== "PreferNoSchedule" && !tolerates(spec, t));
  if (untolerated) return [`node(s) had untolerated taint {${untolerated.key}: ${untolerated.value ?? ""}}`];
  if (!nodeReady(node)) return ["node(s) were not ready"];
  // NodeResourcesFit runs after TaintToleration (the default plugin order); the first failing filter decides.
  return insufficient(asked, node, used);
}

/** framework/types.go `FitError.Error`: the reasons' histogram (every reason of every node), sorted, after the node count. */
export function fitError(spec: PodSpec, nodes: Obj[], usedOn: (node: string) => Resources = () => NONE): string {
  const histogram = new Map<string, number>();
  for (const n of nodes) {
    for (const reason of filterReasons(spec, n, usedOn(n.metadata.name))) histogram.set(reason, (histogram.get(reason) ?? 0) + 1);
  }
  const reasons = [...histogram].map(([reason, count]) => `${count} ${reason}`).sort();
  return `0/${nodes.length} nodes are available${reasons.length ? `: ${reasons.join(", ")}` : ""}.`;
}

export class Scheduler {
  private readonly pending = new Set<string>();
  private readonly placement = new Map<string, string>();
  /** The requests of every bound, non-terminal pod, kept from the change feed (a scale run has thousands). */
  private readonly requests = new Map<string, { node: string; asked: Resources }>();
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
      this.requests.delete(k);
    } else if (node) {
      this.pending.delete(k);
      this.placement.set(k, node);
      const phase = (pod.status as PodStatus | undefined)?.phase;
      // The scheduler cache drops terminal pods: they hold no resources.
      if (phase === "Succeeded" || phase === "Failed") this.requests.delete(k);
      else this.requests.set(k, { node, asked: podRequests(pod.spec as PodSpec) });
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
    const used = this.requestedByNode();
    const usedOn = (node: string) => used.get(node) ?? NONE;
    for (const k of [...this.pending]) {
      const [ns, name] = k.split("/") as [string, string];
      const pod = this.api.get("pods", ns, name);
      if (!pod || (pod.spec as PodSpec).nodeName) {
        this.pending.delete(k);
        continue;
      }
      const reason = this.unschedulable(pod, ns);
      const asked = podRequests(pod.spec as PodSpec);
      const fit = reason ? [] : nodes.filter((n) => filterReasons(pod.spec as PodSpec, n, usedOn(n.metadata.name), asked).length === 0);
      fit.sort((a, b) => load.get(a.metadata.name)! - load.get(b.metadata.name)! || a.metadata.name.localeCompare(b.metadata.name));
      const chosen = fit[0];
      if (!chosen) {
        this.markUnschedulable(pod, reason ?? fitError(pod.spec as PodSpec, all, usedOn));
        continue;
      }
      this.api.bindPod(ns, name, chosen.metadata.name);
      load.set(chosen.metadata.name, load.get(chosen.metadata.name)! + 1);
      const was = usedOn(chosen.metadata.name);
      used.set(chosen.metadata.name, { cpuMilli: was.cpuMilli + asked.cpuMilli, memory: was.memory + asked.memory, pods: was.pods + 1 });
    }
  }

  /** The scheduler cache's NodeInfo.Requested: what the bound, non-terminal pods of each node ask for. */
  private requestedByNode(): Map<string, Resources> {
    const used = new Map<string, Resources>();
    for (const { node, asked } of this.requests.values()) {
      const was = used.get(node) ?? NONE;
      used.set(node, { cpuMilli: was.cpuMilli + asked.cpuMilli, memory: was.memory + asked.memory, pods: was.pods + 1 });
    }
    return used;
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
