/**
 * ResourceQuota for pod counts (`pods` and `count/pods` in `spec.hard`), as
 * the API server's ResourceQuota admission and the quota controller keep it:
 *
 * - admission (staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota/
 *   controller.go `checkRequest`): a pod create that would take a quota's
 *   usage past its hard limit is 403 Forbidden with upstream's message,
 *   `pods "<name>" is forbidden: exceeded quota: <quota>, requested: <r>,
 *   used: <u>, limited: <l>` (`admission.NewForbidden`; the lists are
 *   `prettyPrint`ed: sorted `name=value`, comma-joined), and the create
 *   changes nothing;
 * - usage (pkg/quota/v1/evaluator/core/pods.go `podEvaluator.Usage` and
 *   `QuotaV1Pod`): a pod counts 1 for `pods` and for `count/pods` unless it
 *   is terminal (Succeeded/Failed) or deleted with its grace period over;
 * - `status.hard`/`status.used`, written on every pod change here, as
 *   pkg/controller/resourcequota's replenishment does after a pod goes.
 *
 * Divergence: upstream admits against `status.used` (the controller catches
 * up asynchronously, so a freed slot shows a little later); here admission
 * counts the live pods, so a slot frees the moment the pod is gone or terminal.
 */
import type { ObjectStore } from "./store.js";
import { HttpError, clone, type Change, type Obj, type ResourceDef } from "./types.js";

const POD_COUNTS = ["count/pods", "pods"] as const;

interface QuotaSpec {
  hard?: Record<string, string | number>;
}

/** pods.go `QuotaV1Pod`: does this pod use quota? */
export function podUsesQuota(pod: Obj, now = Date.now()): boolean {
  const phase = (pod.status as { phase?: string } | undefined)?.phase;
  if (phase === "Succeeded" || phase === "Failed") return false;
  const { deletionTimestamp, deletionGracePeriodSeconds } = pod.metadata;
  if (deletionTimestamp && deletionGracePeriodSeconds !== undefined) {
    if (now > Date.parse(deletionTimestamp) + deletionGracePeriodSeconds * 1000) return false;
  }
  return true;
}

function hardCounts(quota: Obj): [string, number][] {
  const hard = ((quota.spec ?? {}) as QuotaSpec).hard ?? {};
  return POD_COUNTS.filter((k) => hard[k] !== undefined).map((k) => [k, Number(hard[k])]);
}

const pretty = (entries: [string, number][]): string =>
  [...entries]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export class PodQuota {
  constructor(
    private readonly store: ObjectStore,
    private readonly pods: ResourceDef,
    private readonly quotas: ResourceDef,
  ) {
    // After the change has reached every watcher: the quota's write must not overtake the pod's.
    store.onChange((change) => queueMicrotask(() => this.replenish(change)));
  }

  /** Throws the 403 upstream's admission gives when creating `name` in `namespace` exceeds a quota. */
  admit(namespace: string, name: string): void {
    const used = this.used(namespace);
    for (const quota of this.store.all(this.quotas, namespace)) {
      const hard = hardCounts(quota);
      const failed = hard.filter(([, limit]) => used + 1 > limit);
      if (failed.length === 0) continue;
      const requested = failed.map(([k]): [string, number] => [k, 1]);
      const usedNow = failed.map(([k]): [string, number] => [k, used]);
      throw new HttpError(
        403,
        "Forbidden",
        `pods "${name}" is forbidden: exceeded quota: ${quota.metadata.name}, requested: ${pretty(requested)}, used: ${pretty(usedNow)}, limited: ${pretty(failed)}`,
      );
    }
  }

  private used(namespace: string): number {
    return this.store.all(this.pods, namespace).filter((p) => podUsesQuota(p)).length;
  }

  /** The quota controller's status: hard as declared, used as counted now. */
  private replenish(change: Change): void {
    if (change.resource !== this.pods.key && !(change.resource === this.quotas.key && change.type === "ADDED")) return;
    for (const quota of this.store.all(this.quotas, change.namespace)) {
      const hard = hardCounts(quota);
      const used = this.used(change.namespace);
      const status = { hard: Object.fromEntries(hard.map(([k, v]) => [k, String(v)])), used: Object.fromEntries(hard.map(([k]) => [k, String(used)])) };
      if (JSON.stringify(quota.status) === JSON.stringify(status)) continue;
      this.store.commit(this.quotas, quota, this.store.keepImmutable(this.quotas, quota, { ...clone(quota), status }, "status"));
    }
  }
}
