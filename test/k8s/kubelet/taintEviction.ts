/**
 * The taint eviction controller (kubernetes pkg/controller/tainteviction
 * `Controller`, formerly the node lifecycle controller's NoExecuteTaintManager):
 * a Pod on a Node with a `NoExecute` taint it does not tolerate is deleted at
 * once; one it tolerates for `tolerationSeconds` is deleted when the shortest
 * such toleration runs out (`processPodOnNode`, `getMinTolerationTime`); a
 * toleration without seconds tolerates forever. The deletion is an ordinary
 * graceful delete after a `DisruptionTarget` condition (reason
 * `DeletionByTaintManager`; `addConditionAndDeletePod`), so on an unreachable
 * node the Pod stays Terminating: no kubelet confirms it, and only the pod GC
 * (nodeController.ts: node deleted, or out-of-service) removes the object.
 * Removing the taint (the node is back) cancels a scheduled eviction.
 *
 * Time comes from an injected clock (clock.ts), so a test runs the 300 s of
 * DefaultTolerationSeconds in about a second.
 *
 * Divergences: no work queue or retries (the store is in-process, a delete
 * cannot fail on the network); a Pod already Terminating is not evicted again
 * (upstream would send a second delete that changes nothing).
 */
import type { Change, FakeApiServer, Obj } from "../fakeApiServer.js";
import { HttpError } from "../apiserver/types.js";
import type { Clock } from "./clock.js";
import { tolerates } from "./scheduler.js";
import { setCondition } from "./status.js";
import { nowTime, type PodSpec, type PodStatus } from "./types.js";

interface Taint {
  key: string;
  value?: string;
  effect: string;
}
type Toleration = NonNullable<PodSpec["tolerations"]>[number];

/** v1helper.GetMatchingTolerations: every taint tolerated, and the toleration that matched each. */
export function matchingTolerations(taints: Taint[], tolerations: Toleration[]): { all: boolean; used: Toleration[] } {
  const used: Toleration[] = [];
  for (const taint of taints) {
    const match = tolerations.find((t) => tolerates({ containers: [], tolerations: [t] }, taint));
    if (!match) return { all: false, used: [] };
    used.push(match);
  }
  return { all: true, used };
}

/** tainteviction `getMinTolerationTime`: ms until eviction; 0 at once; -1 never (no toleration has seconds). */
export function minTolerationMs(used: Toleration[]): number {
  if (used.length === 0) return 0;
  let min = Infinity;
  for (const t of used) {
    if (t.tolerationSeconds === undefined) continue;
    if (t.tolerationSeconds <= 0) return 0;
    min = Math.min(min, t.tolerationSeconds);
  }
  return min === Infinity ? -1 : min * 1000;
}

const noExecuteTaints = (node: Obj | undefined): Taint[] => (((node?.spec ?? {}) as { taints?: Taint[] }).taints ?? []).filter((t) => t.effect === "NoExecute");
const keyOf = (pod: Obj): string => `${pod.metadata.namespace ?? ""}/${pod.metadata.name}`;

export interface Eviction {
  pod: string;
  /** The clock's time when the eviction was scheduled and when it ran. */
  scheduledAt: number;
  evictedAt: number;
}

export class TaintEvictionController {
  private readonly scheduled = new Map<string, { createdAt: number; fireAt: number; cancel: () => void }>();
  /** Every eviction so far, for tests. */
  readonly evictions: Eviction[] = [];
  private readonly unsubscribe: () => void;

  constructor(
    private readonly api: FakeApiServer,
    private readonly clock: Clock,
  ) {
    this.unsubscribe = api.subscribe((c) => this.onChange(c));
  }

  stop(): void {
    this.unsubscribe();
    for (const work of this.scheduled.values()) work.cancel();
    this.scheduled.clear();
  }

  private onChange(c: Change): void {
    if (c.resource === "nodes") {
      const name = c.object.metadata.name;
      if (c.type !== "DELETED") setImmediate(() => this.handleNodeUpdate(name));
    } else if (c.resource === "pods") {
      if (c.type === "DELETED") this.cancel(keyOf(c.object));
      else if ((c.object.spec as PodSpec).nodeName) {
        const { namespace, name } = c.object.metadata;
        setImmediate(() => this.handlePodUpdate(namespace ?? "", name));
      }
    }
  }

  /** `handleNodeUpdate`: every pod on the node against its NoExecute taints; none left cancels all. */
  private handleNodeUpdate(nodeName: string): void {
    const node = this.api.get("nodes", "", nodeName);
    if (!node) return;
    const taints = noExecuteTaints(node);
    const now = this.clock.now();
    for (const pod of this.api.list("pods").filter((p) => (p.spec as PodSpec).nodeName === nodeName)) this.processPodOnNode(pod, taints, now);
  }

  /** `handlePodUpdate`: a pod (re)bound or changed, checked against its node's taints if it has any. */
  private handlePodUpdate(namespace: string, name: string): void {
    const pod = this.api.get("pods", namespace, name);
    const nodeName = pod && (pod.spec as PodSpec).nodeName;
    if (!pod || !nodeName) return;
    const taints = noExecuteTaints(this.api.get("nodes", "", nodeName));
    if (taints.length === 0) return;
    this.processPodOnNode(pod, taints, this.clock.now());
  }

  private processPodOnNode(pod: Obj, taints: Taint[], now: number): void {
    const key = keyOf(pod);
    if (taints.length === 0 || pod.metadata.deletionTimestamp) {
      this.cancel(key);
      return;
    }
    const { all, used } = matchingTolerations(taints, (pod.spec as PodSpec).tolerations ?? []);
    if (!all) {
      this.cancel(key);
      this.schedule(pod, now, now);
      return;
    }
    const min = minTolerationMs(used);
    if (min < 0) {
      this.cancel(key);
      return;
    }
    let startTime = now;
    const existing = this.scheduled.get(key);
    if (existing) {
      // Upstream keeps an eviction scheduled earlier (its createdAt + min is before now + min) and otherwise
      // reschedules it from the old start: a later pod or node update never postpones an eviction.
      startTime = existing.createdAt;
      if (startTime + min < now + min) return;
      this.cancel(key);
    }
    this.schedule(pod, startTime, now + min);
  }

  private schedule(pod: Obj, createdAt: number, fireAt: number): void {
    const key = keyOf(pod);
    const uid = pod.metadata.uid;
    // timed_workers.go `CreateWorker`: work already due runs at once, not on a timer.
    if (fireAt <= this.clock.now()) {
      this.evict(pod.metadata.namespace ?? "", pod.metadata.name, uid, createdAt);
      return;
    }
    const cancel = this.clock.setTimeout(() => {
      this.scheduled.delete(key);
      this.evict(pod.metadata.namespace ?? "", pod.metadata.name, uid, createdAt);
    }, fireAt - this.clock.now());
    this.scheduled.set(key, { createdAt, fireAt, cancel });
  }

  private cancel(key: string): void {
    this.scheduled.get(key)?.cancel();
    this.scheduled.delete(key);
  }

  /** `addConditionAndDeletePod`: DisruptionTarget=True, then a graceful delete (the pod's own grace period). */
  private evict(namespace: string, name: string, uid: string | undefined, scheduledAt: number): void {
    const live = this.api.get("pods", namespace, name);
    if (!live || live.metadata.uid !== uid || live.metadata.deletionTimestamp) return;
    try {
      const status = (live.status ?? {}) as PodStatus;
      const conditions = setCondition(status.conditions ?? [], { type: "DisruptionTarget", status: "True", reason: "DeletionByTaintManager", message: "Taint manager: deleting due to NoExecute taint" });
      this.api.setStatus("pods", namespace, name, { ...status, conditions });
      this.api.remove("pods", namespace, name, { preconditions: { uid } });
      this.evictions.push({ pod: `${namespace}/${name}`, scheduledAt, evictedAt: this.clock.now() });
      this.recordEvent(live);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
    }
  }

  /** The Event upstream's recorder writes for an eviction (`emitPodDeletionEvent`). */
  private recordEvent(pod: Obj): void {
    const { namespace, name, uid } = pod.metadata;
    this.api.create("events", namespace ?? "", {
      metadata: { name: "", generateName: `${name}.` },
      involvedObject: { apiVersion: "v1", kind: "Pod", namespace, name, uid },
      reason: "TaintManagerEviction",
      message: `Marking for deletion Pod ${namespace}/${name}`,
      type: "Normal",
      source: { component: "taint-eviction-controller" },
      firstTimestamp: nowTime(),
      lastTimestamp: nowTime(),
      count: 1,
    });
  }
}
