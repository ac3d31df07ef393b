/**
 * A hollow pod, as kubemark's hollow kubelet or KWOK run them: no container,
 * the pod is reported Running and Ready at once; an image change "restarts"
 * it with a new container id; deletion completes at once.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { FakeApiServer, LogOptions, Obj } from "../fakeApiServer.js";
import { HttpError } from "../apiserver/types.js";
import { podConditions } from "./status.js";
import { nowTime, type Condition, type ContainerStatus, type PodSpec, type PodStatus } from "./types.js";
import { qualified } from "./runtime.js";

export class SimulatedPod {
  private readonly started = new Map<string, { id: string; image: string; restarts: number; startedAt: string }>();
  private done = false;

  constructor(
    private pod: Obj,
    private readonly api: FakeApiServer,
    private readonly connected: () => boolean,
  ) {
    this.update(pod);
  }

  update(pod: Obj): void {
    this.pod = pod;
    if (this.done || !this.connected()) return;
    const { namespace, name, uid } = pod.metadata;
    if (pod.metadata.deletionTimestamp) {
      this.done = true;
      this.api.remove("pods", namespace ?? "", name, { gracePeriodSeconds: 0, preconditions: uid ? { uid } : {} });
      return;
    }
    const spec = pod.spec as PodSpec;
    let changed = false;
    for (const c of spec.containers) {
      const s = this.started.get(c.name);
      if (s && s.image === c.image) continue;
      this.started.set(c.name, { id: randomUUID().replace(/-/g, ""), image: c.image, restarts: s ? s.restarts + 1 : 0, startedAt: nowTime() });
      changed = true;
    }
    if (changed) this.writeStatus();
  }

  private writeStatus(): void {
    const { namespace, name } = this.pod.metadata;
    const statuses: ContainerStatus[] = [...this.started.entries()].map(([cname, s]) => ({
      name: cname,
      image: qualified(s.image),
      imageID: "",
      containerID: `simulated://${s.id}`,
      state: { running: { startedAt: s.startedAt } },
      lastState: {},
      ready: true,
      started: true,
      restartCount: s.restarts,
    }));
    const live = this.api.get("pods", namespace ?? "", name);
    if (!live) return;
    const old = (live.status ?? {}) as PodStatus;
    const status: PodStatus = {
      ...old,
      phase: "Running",
      conditions: podConditions((old.conditions ?? []) as Condition[], statuses, "Running"),
      hostIP: "127.0.0.1",
      podIP: "127.0.0.1",
      startTime: old.startTime ?? nowTime(),
      containerStatuses: statuses,
    };
    this.api.setStatus("pods", namespace ?? "", name, status);
  }

  terminate(): Promise<void> {
    this.done = true;
    return Promise.resolve();
  }

  logs(options: LogOptions): Promise<Readable> {
    if (!this.started.has(options.container)) throw new HttpError(400, "BadRequest", `container "${options.container}" in pod "${this.pod.metadata.name}" is waiting to start`);
    return Promise.resolve(Readable.from([`simulated container ${options.container} of pod ${this.pod.metadata.name}\n`]));
  }
}
