/** What the test kubelet knows about one container of a pod, and the containerStatus it reports from it. */
import type { KubeletBackoff } from "./backoff.js";
import type { Prober } from "./probes.js";
import type { Started } from "./containerRuntime.js";
import type { ContainerSpec, ContainerState, ContainerStatus, Terminated } from "./types.js";

export interface ContainerRecord {
  spec: ContainerSpec;
  /** The running instance, with the image as the runtime reports it and the spec image it was started from. */
  current: (Started & { specImage: string }) | null;
  /** The instance that exited and was not restarted yet. */
  terminated: Terminated | null;
  /** The previous instance's termination (lastState). */
  last: Terminated | null;
  waiting: { reason: string; message?: string } | null;
  restartCount: number;
  /** Start attempts so far; every one after the first is a restart. */
  attempts: number;
  ready: boolean;
  finishedMs: number;
  /** The last dead container, kept for `previous` logs. */
  prevId: string | null;
  /** Restart without back-off (the image changed). */
  restartNow: boolean;
  exit: Promise<void> | null;
  probers: Prober[];
  crash: KubeletBackoff;
  pull: KubeletBackoff;
  pullFailedAt: number;
}

export function containerStatusOf(rec: ContainerRecord): ContainerStatus {
  let state: ContainerState;
  let lastState: Terminated | null = rec.last;
  if (rec.current) state = { running: { startedAt: rec.current.startedAt } };
  else if (rec.waiting) {
    state = { waiting: rec.waiting };
    if (rec.terminated) lastState = rec.terminated;
  } else if (rec.terminated) state = { terminated: rec.terminated };
  else state = { waiting: { reason: "ContainerCreating" } };
  const containerID = rec.current ? rec.current.containerID : "terminated" in state ? state.terminated.containerID : undefined;
  return {
    name: rec.spec.name,
    // What the runtime reports (containerd: the image's first repo tag), not the spec's string: kubelet's convertToAPIContainerStatuses.
    image: rec.current?.reportedImage ?? rec.spec.image,
    imageID: rec.current?.imageId ?? "",
    ...(containerID ? { containerID } : {}),
    state,
    lastState: lastState ? { terminated: lastState } : {},
    ready: rec.current !== null && rec.ready,
    started: rec.current !== null,
    restartCount: rec.restartCount,
  };
}
