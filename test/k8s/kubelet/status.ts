/** Pure: a pod's phase and conditions from its container statuses, as the kubelet computes them (getPhase, generateAPIPodStatus). */
import { nowTime, type Condition, type ContainerStatus, type PodSpec, type PodStatus } from "./types.js";

export function podPhase(restartPolicy: PodSpec["restartPolicy"], statuses: ContainerStatus[]): PodStatus["phase"] {
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    if ("running" in s.state) running++;
    else if ("terminated" in s.state) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if ("terminated" in s.lastState) stopped++;
    else waiting++;
  }
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    if (restartPolicy === "Always" || restartPolicy === undefined) return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (restartPolicy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

/** Sets one condition, moving lastTransitionTime only when the status flips. */
export function setCondition(conditions: Condition[], next: Condition): Condition[] {
  const old = conditions.find((c) => c.type === next.type);
  const merged: Condition = { ...next, lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime : nowTime() };
  if (!merged.reason) delete merged.reason;
  if (!merged.message) delete merged.message;
  return [...conditions.filter((c) => c.type !== next.type), merged];
}

export function podConditions(existing: Condition[], statuses: ContainerStatus[], phase: PodStatus["phase"]): Condition[] {
  const notReady = statuses.filter((s) => !s.ready).map((s) => s.name);
  // A finished pod is not ready, with the reason the kubelet gives.
  const terminal = phase === "Succeeded" || phase === "Failed";
  const ready = notReady.length === 0 && !terminal;
  const reason = terminal ? "PodCompleted" : ready ? "" : "ContainersNotReady";
  const message = ready || terminal ? "" : `containers with unready status: [${notReady.join(" ")}]`;
  let out = setCondition(existing, { type: "Initialized", status: "True", reason: terminal ? "PodCompleted" : "" });
  out = setCondition(out, { type: "ContainersReady", status: ready ? "True" : "False", reason, message });
  out = setCondition(out, { type: "Ready", status: ready ? "True" : "False", reason, message });
  const order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"];
  return out.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));
}
