/**
 * One pod on one test node, run as Docker containers: start, watch for exits,
 * restart under restartPolicy with the kubelet's back-off, apply in-place
 * image changes, probe readiness and liveness, terminate gracefully on
 * deletion, and report status the way the kubelet does. Syncs are serialized
 * per pod; anything that changes (an API update, an exit, a probe result, a
 * back-off timer) asks for another sync.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { HttpError } from "../apiserver/types.js";
import type { FakeApiServer, LogOptions, Obj } from "../fakeApiServer.js";
import { KubeletBackoff } from "./backoff.js";
import { Prober } from "./probes.js";
import { endpointOf, idOfContainerID, PullError, StartError, type ContainerRuntime, type Started } from "./containerRuntime.js";
import { podConditions, podPhase } from "./status.js";
import { HOST_PORT_ANNOTATION, RUN_LABEL, nowTime, type Condition, type ContainerSpec, type ContainerStatus, type PodSpec, type PodStatus, type Terminated } from "./types.js";
import { containerStatusOf, type ContainerRecord } from "./containerRecord.js";

export interface WorkerDeps {
  api: FakeApiServer;
  runtime: ContainerRuntime;
  nodeName: string;
  runId: string;
  dataRoot: string;
  backoffBaseMs: number;
  backoffCapMs: number;
  /** False while the node is partitioned: nothing reaches the API server. */
  connected: () => boolean;
  /** The pull of an image a test made slow (TestKubelet.delayPull) and that is not on this node yet, else null. */
  slowPull?: (image: string) => Promise<void> | null;
}

/** What the kubelet holds per pod, real or simulated. */
export interface PodRunner {
  update(pod: Obj): void;
  /** Stops every container (SIGTERM, grace, SIGKILL) and forgets the pod. */
  terminate(graceSeconds: number): Promise<void>;
  logs(options: LogOptions): Promise<Readable>;
}

export class PodWorker implements PodRunner {
  private readonly containers = new Map<string, ContainerRecord>();
  private syncing: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private done = false;
  /** Set once termination began: nothing may start any more. */
  private stopping = false;
  private startTime: string | null = null;
  /** The sandbox's IP once a container ran (the CRI bridge's, or 127.0.0.1 under Docker). */
  private podIP: string | null = null;

  constructor(
    private pod: Obj,
    private readonly deps: WorkerDeps,
  ) {
    this.kick();
  }

  private get spec(): PodSpec {
    return this.pod.spec as PodSpec;
  }

  private get grace(): number {
    return this.pod.metadata.deletionGracePeriodSeconds ?? this.spec.terminationGracePeriodSeconds ?? 30;
  }

  update(pod: Obj): void {
    this.pod = pod;
    this.kick();
  }

  /** Asks for a sync; a sync already running runs once more. */
  kick(): void {
    if (this.done || this.stopping) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        try {
          await this.sync();
        } catch (err) {
          if (!this.done) this.again = true;
          await new Promise((r) => setTimeout(r, 200));
          if (!(err instanceof HttpError) && !this.done) console.error("test kubelet: sync failed", { err });
        }
      } while (this.again && !this.done);
      this.syncing = null;
    })();
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, ms));
  }

  private async sync(): Promise<void> {
    if (this.pod.metadata.deletionTimestamp) return this.terminateAndRemove();
    const phase = (this.pod.status as PodStatus | undefined)?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    this.startTime ??= nowTime();
    for (const c of this.spec.containers) await this.syncContainer(c);
    this.writeStatus();
  }

  private record(spec: ContainerSpec): ContainerRecord {
    let rec = this.containers.get(spec.name);
    if (!rec) {
      rec = {
        spec,
        current: null,
        terminated: null,
        last: null,
        waiting: { reason: "ContainerCreating" },
        restartCount: 0,
        attempts: 0,
        ready: false,
        finishedMs: 0,
        prevId: null,
        restartNow: false,
        exit: null,
        probers: [],
        crash: new KubeletBackoff(this.deps.backoffBaseMs, this.deps.backoffCapMs),
        pull: new KubeletBackoff(this.deps.backoffBaseMs, this.deps.backoffCapMs),
        pullFailedAt: 0,
      };
      this.containers.set(spec.name, rec);
    }
    rec.spec = spec;
    return rec;
  }

  private async syncContainer(spec: ContainerSpec): Promise<void> {
    const rec = this.record(spec);
    if (rec.current && rec.current.specImage !== spec.image) {
      // The container's hash changed: kill it and start the new image at once, as the kubelet does.
      await this.stopContainer(rec, this.spec.terminationGracePeriodSeconds ?? 30);
      rec.restartNow = true;
    }
    if (rec.current) return;
    const now = Date.now();
    if (rec.terminated && !rec.restartNow) {
      if (!this.restartable(rec.terminated)) {
        rec.waiting = null;
        return;
      }
      const readyAt = rec.crash.readyAt(rec.finishedMs, now);
      if (now < readyAt) {
        const { name, namespace, uid } = this.pod.metadata;
        rec.waiting = { reason: "CrashLoopBackOff", message: `back-off ${Math.round(rec.crash.delayMs / 1000)}s restarting failed container=${spec.name} pod=${name}_${namespace}(${uid})` };
        return this.schedule(readyAt - now);
      }
    }
    const changed = rec.restartNow;
    if (!(await this.imageReady(rec, now))) {
      // computePodActions starts a changed container regardless of the restart policy in the sync that killed
      // it, and only then: from the next sync on the killed container is an exited one like any other
      // (ShouldContainerBeRestarted), so under Never, or OnFailure after exit 0, a failed pull of the new image
      // ends the Pod. Its status then shows the exit, not the pull error (convertToAPIContainerStatuses shows
      // Waiting only for a container that will be restarted).
      if (changed) {
        rec.restartNow = false;
        if (rec.terminated && !this.restartable(rec.terminated)) rec.waiting = null;
      }
      return;
    }
    if (rec.attempts > 0 && !rec.restartNow) rec.crash.attempted(now);
    await this.start(rec);
  }

  /** kubecontainer.ShouldContainerBeRestarted for a container that exited: the pod's restartPolicy decides. */
  private restartable(terminated: Terminated): boolean {
    const policy = this.spec.restartPolicy ?? "Always";
    return policy === "Always" || (policy === "OnFailure" && terminated.exitCode !== 0);
  }

  /** Looks the image up; a missing one fails as a pull does (ErrImagePull, then ImagePullBackOff). */
  private async imageReady(rec: ContainerRecord, now: number): Promise<boolean> {
    const image = rec.spec.image;
    // EnsureImageExists: the pull holds this pod's sync (nothing else of it happens, no status is written) until done.
    const slow = this.deps.slowPull?.(image);
    if (slow) await slow;
    if (await this.deps.runtime.imageId(image)) {
      rec.pullFailedAt = 0;
      return true;
    }
    if (rec.spec.imagePullPolicy === "Never") {
      rec.waiting = { reason: "ErrImageNeverPull", message: `Container image "${image}" is not present with pull policy of Never` };
      return false;
    }
    const readyAt = rec.pull.readyAt(rec.pullFailedAt, now);
    // A failed pull shows as ErrImagePull until the kubelet's next sync of the pod, then as ImagePullBackOff.
    const hold = Math.min(1000, rec.pull.delayMs / 2);
    if (rec.pullFailedAt && now < rec.pullFailedAt + hold) {
      this.schedule(rec.pullFailedAt + hold - now);
      return false;
    }
    if (rec.pullFailedAt && now < readyAt) {
      rec.waiting = { reason: "ImagePullBackOff", message: `Back-off pulling image "${image}"` };
      this.schedule(readyAt - now);
      return false;
    }
    rec.pull.attempted(now);
    try {
      // The runtime pulls for real (containerd: only loopback registries answer, so an image not imported fails).
      await this.deps.runtime.pullImage(image);
      rec.pullFailedAt = 0;
      return true;
    } catch (err) {
      if (!(err instanceof PullError)) throw err;
      rec.pullFailedAt = Date.now();
      rec.waiting = { reason: "ErrImagePull", message: err.message };
      this.schedule(rec.pull.delayMs);
      return false;
    }
  }

  private async start(rec: ContainerRecord): Promise<void> {
    if (rec.attempts > 0) {
      rec.restartCount++;
      if (rec.terminated) rec.last = rec.terminated;
    }
    rec.attempts++;
    rec.restartNow = false;
    let started: Started;
    try {
      started = await this.deps.runtime.run(await this.runSpec(rec));
    } catch (err) {
      if (!(err instanceof StartError)) throw err;
      // containerd's StartError: the container exists but its process never ran.
      this.retire(rec, err.containerId);
      rec.terminated = err.terminated ?? { exitCode: 128, reason: "StartError", message: err.message, startedAt: "1970-01-01T00:00:00Z", finishedAt: nowTime(), containerID: `docker://${err.containerId}` };
      rec.finishedMs = Date.now();
      rec.waiting = null;
      this.again = true;
      return;
    }
    if (this.stopping) {
      await this.deps.runtime.remove(started.id);
      return;
    }
    rec.current = { ...started, specImage: rec.spec.image };
    this.podIP = started.podIP;
    rec.terminated = null;
    rec.waiting = null;
    rec.ready = false;
    this.watchExit(rec, started.id);
    this.startProbes(rec, started);
    this.annotatePorts(started.hostPorts);
  }

  /** Keeps the last dead container (for `previous` logs) and removes the one before it. */
  private retire(rec: ContainerRecord, id: string): void {
    const older = rec.prevId;
    rec.prevId = id;
    if (older && older !== id) void this.deps.runtime.remove(older).catch(() => undefined);
  }

  private watchExit(rec: ContainerRecord, id: string): void {
    rec.exit = this.deps.runtime
      .waitExit(id)
      .catch((): Terminated => ({ exitCode: 137, reason: "Error", finishedAt: nowTime(), containerID: rec.current?.containerID ?? `docker://${id}` }))
      .then((t) => {
        if (rec.current?.id !== id) return;
        for (const p of rec.probers) p.stop();
        rec.probers = [];
        rec.current = null;
        rec.ready = false;
        rec.terminated = t;
        rec.finishedMs = Date.now();
        rec.waiting = null;
        this.retire(rec, id);
        this.kick();
      });
  }

  private startProbes(rec: ContainerRecord, started: Started): void {
    const portOf = (port: number | string): { host: string; port: number } | undefined => {
      const n = typeof port === "number" ? port : (rec.spec.ports ?? []).find((p) => p.name === port)?.containerPort;
      return n === undefined ? undefined : endpointOf(started, n);
    };
    if (rec.spec.readinessProbe) {
      rec.probers.push(
        new Prober(rec.spec.readinessProbe, portOf, false, (ok) => {
          rec.ready = ok;
          this.kick();
        }),
      );
    } else rec.ready = true;
    if (rec.spec.livenessProbe) {
      rec.probers.push(
        new Prober(rec.spec.livenessProbe, portOf, true, (ok) => {
          if (!ok && rec.current?.id === started.id) void this.deps.runtime.stop(started.id, this.spec.terminationGracePeriodSeconds ?? 30).catch((err: unknown) => console.error("test kubelet: stopping a container that failed its startup probe failed", { err }));
        }),
      );
    }
  }

  private async stopContainer(rec: ContainerRecord, graceSeconds: number): Promise<void> {
    const current = rec.current;
    if (!current) return;
    for (const p of rec.probers) p.stop();
    await this.deps.runtime.stop(current.id, graceSeconds);
    await rec.exit;
  }

  private async runSpec(rec: ContainerRecord) {
    const { name, namespace, uid } = this.pod.metadata;
    const spec = rec.spec;
    const ports = (spec.ports ?? []).map((p) => p.containerPort);
    return {
      pod: { name, namespace: namespace ?? "", uid: uid ?? "", spec: this.spec },
      container: spec,
      attempt: rec.attempts - 1,
      name: `k8s_${spec.name}_${name}_${namespace}_${uid}_${rec.attempts - 1}`,
      image: spec.image,
      command: spec.command,
      args: spec.args,
      env: (spec.env ?? []).filter((e) => e.value !== undefined).map((e) => `${e.name}=${e.value}`),
      ports: ports.length > 0 ? ports : [8080],
      binds: await this.binds(spec),
      labels: {
        [RUN_LABEL]: this.deps.runId,
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace ?? "",
        "io.kubernetes.pod.uid": uid ?? "",
        "io.kubernetes.container.name": spec.name,
      },
    };
  }

  /** PVCs and emptyDirs as host directories under the cluster's data root. */
  private async binds(spec: ContainerSpec): Promise<string[]> {
    const out: string[] = [];
    for (const m of spec.volumeMounts ?? []) {
      const vol = (this.spec.volumes ?? []).find((v) => v.name === m.name);
      if (!vol) throw new HttpError(422, "Invalid", `volume ${m.name} not found`);
      const dir = vol.persistentVolumeClaim
        ? path.join(this.deps.dataRoot, "pvc", this.pod.metadata.namespace ?? "", vol.persistentVolumeClaim.claimName)
        : path.join(this.deps.dataRoot, "pods", this.pod.metadata.uid ?? "", vol.name);
      await fs.mkdir(dir, { recursive: true });
      out.push(`${dir}:${m.mountPath}${m.readOnly || vol.persistentVolumeClaim?.readOnly ? ":ro" : ""}`);
    }
    return out;
  }

  private annotatePorts(hostPorts: Record<number, number>): void {
    if (!this.deps.connected() || Object.keys(hostPorts).length === 0) return;
    const { namespace, name } = this.pod.metadata;
    try {
      this.deps.api.update("pods", namespace ?? "", name, (o) => {
        o.metadata.annotations = { ...(o.metadata.annotations ?? {}) };
        for (const [port, host] of Object.entries(hostPorts)) o.metadata.annotations[HOST_PORT_ANNOTATION(Number(port))] = String(host);
      });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
    }
  }

  private writeStatus(): void {
    if (!this.deps.connected() || this.done) return;
    const { namespace, name } = this.pod.metadata;
    const live = this.deps.api.get("pods", namespace ?? "", name);
    if (!live || live.metadata.uid !== this.pod.metadata.uid) return;
    // A terminal phase is final, as the kubelet's status manager keeps it (an eviction written while this sync ran).
    const livePhase = (live.status as PodStatus | undefined)?.phase;
    if (livePhase === "Succeeded" || livePhase === "Failed") return;
    const statuses: ContainerStatus[] = this.spec.containers.map((c) => containerStatusOf(this.record(c)));
    const phase = podPhase(this.spec.restartPolicy, statuses);
    const existing = ((live.status ?? {}) as PodStatus).conditions ?? [];
    const status: PodStatus = {
      ...((live.status ?? {}) as PodStatus),
      phase,
      conditions: podConditions(existing as Condition[], statuses, phase),
      hostIP: "127.0.0.1",
      ...(this.podIP ? { podIP: this.podIP, podIPs: [{ ip: this.podIP }] } : {}),
      startTime: this.startTime ?? nowTime(),
      containerStatuses: statuses,
    };
    delete status.reason;
    delete status.message;
    this.deps.api.setStatus("pods", namespace ?? "", name, status);
  }

  private async terminateAndRemove(): Promise<void> {
    await this.terminate(this.grace, false);
    if (!this.deps.connected()) return;
    const { namespace, name, uid } = this.pod.metadata;
    this.deps.api.remove("pods", namespace ?? "", name, { gracePeriodSeconds: 0, preconditions: uid ? { uid } : {} });
  }

  async terminate(graceSeconds: number, forget = true): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.all([...this.containers.values()].map((rec) => this.stopContainer(rec, graceSeconds)));
    this.writeStatus();
    this.done = true;
    if (!forget) return void (await this.deps.runtime.releasePod(this.pod.metadata.uid ?? ""));
    for (const rec of this.containers.values()) if (rec.prevId) await this.deps.runtime.remove(rec.prevId);
    await this.deps.runtime.releasePod(this.pod.metadata.uid ?? "");
  }

  async logs(options: LogOptions): Promise<Readable> {
    const rec = this.containers.get(options.container);
    const id = options.previous ? (rec?.current ? rec.prevId : (rec?.last?.containerID ? idOfContainerID(rec.last.containerID) : undefined)) : (rec?.current?.id ?? rec?.prevId);
    if (!id) {
      const what = options.previous ? `previous terminated container "${options.container}"` : `container "${options.container}"`;
      throw new HttpError(400, "BadRequest", `${what} in pod "${this.pod.metadata.name}" is waiting to start: ${rec?.waiting?.reason ?? "ContainerCreating"}`);
    }
    return this.deps.runtime.logs(id, options);
  }
}
