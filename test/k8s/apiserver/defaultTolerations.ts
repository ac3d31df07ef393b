/**
 * The DefaultTolerationSeconds admission plugin (kubernetes
 * plugin/pkg/admission/defaulttolerationseconds `Plugin.Admit`, on by default
 * in every kube-apiserver): a Pod created without a NoExecute toleration for
 * `node.kubernetes.io/not-ready` (or `unreachable`) gets one, `operator:
 * Exists`, `tolerationSeconds: 300`. A toleration with an empty key or an
 * empty effect counts as one for that taint, as upstream reads it. This is
 * what makes the taint eviction controller (kubelet/taintEviction.ts) wait
 * five minutes before it deletes the Pods of a lost node.
 *
 * Divergence: upstream runs it on update too; here only on create (the pod
 * update rules allow only additions to tolerations, so an update cannot
 * remove the defaults anyway).
 */
import { NOT_READY_TAINT, UNREACHABLE_TAINT } from "../kubelet/types.js";
import type { Obj } from "./types.js";

/** Upstream's `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`. */
export const DEFAULT_TOLERATION_SECONDS = 300;

interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

const covers = (t: Toleration, key: string): boolean => (t.key === key || !t.key) && (t.effect === "NoExecute" || !t.effect);

/** Adds the missing default tolerations to a pod about to be created (mutates `pod`). */
export function admitDefaultTolerationSeconds(pod: Obj): void {
  const spec = (pod.spec ?? {}) as { tolerations?: Toleration[] };
  const tolerations = spec.tolerations ?? [];
  const added = [NOT_READY_TAINT, UNREACHABLE_TAINT]
    .filter((key) => !tolerations.some((t) => covers(t, key)))
    .map((key): Toleration => ({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: DEFAULT_TOLERATION_SECONDS }));
  if (added.length === 0) return;
  spec.tolerations = [...tolerations, ...added];
  pod.spec = spec;
}
