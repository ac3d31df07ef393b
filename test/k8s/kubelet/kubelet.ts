/**
 * One test node's kubelet: registers its Node (Ready), runs the pods bound to
 * it (through containerd's CRI or as Docker containers, or hollow in simulated mode), and models the
 * failures a real node has: a partition (nothing reaches the API server,
 * containers keep running) and a power-off (every container killed).
 */
import type { Readable } from "node:stream";
import type { Change, FakeApiServer, LogOptions, Obj } from "../fakeApiServer.js";
import { HttpError } from "../apiserver/types.js";
import { PodWorker, type PodRunner, type WorkerDeps } from "./podWorker.js";
import type { ContainerRuntime } from "./containerRuntime.js";
import { SimulatedPod } from "./simulated.js";
import { nowTime, type PodSpec } from "./types.js";

export interface KubeletOptions {
  api: FakeApiServer;
  nodeName: string;
  /** null: simulated mode. */
  runtime: ContainerRuntime | null;
  runId: string;
  dataRoot: string;
  backoffBaseMs: number;
  backoffCapMs: number;
}

export function nodeObject(name: string): Obj {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "node-role.test.galaxy.io/worker": "" } },
    spec: {},
  };
}

const ROOM = { cpu: "64", memory: "256Gi", pods: "110" };
const HOLLOW_ROOM = { cpu: "20000", memory: "1000Ti", pods: "20000" };

export function readyNodeStatus(simulated: boolean, runtimeVersion = "docker://20.10"): Record<string, unknown> {
  const t = nowTime();
  const cond = (type: string, status: string, reason: string, message: string) => ({ type, status, reason, message, lastHeartbeatTime: t, lastTransitionTime: t });
  return {
    conditions: [
      cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
      cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
      cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
      cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ],
    addresses: [{ type: "InternalIP", address: "127.0.0.1" }],
    // Roomy, so suites (and hollow scale runs: 10,000 Pods on 10 nodes) fit through the scheduler's resource fit;
    // a test shrinks a node's allocatable (setStatus) to see Insufficient cpu/memory.
    capacity: simulated ? HOLLOW_ROOM : ROOM,
    allocatable: simulated ? HOLLOW_ROOM : ROOM,
    nodeInfo: { kubeletVersion: "v1.31.0-test", containerRuntimeVersion: simulated ? "simulated://0" : runtimeVersion, operatingSystem: "linux", architecture: "amd64" },
  };
}

/** A CPU quantity ("500m", "0.5", "2") in millicores. */
export function cpuMilli(q: string | undefined): number {
  if (!q) return 0;
  return q.endsWith("m") ? Number(q.slice(0, -1)) : Math.round(Number(q) * 1000);
}

const cpuRequest = (pod: Obj): number => ((pod.spec as PodSpec).containers ?? []).reduce((sum, c) => sum + cpuMilli((c as { resources?: { requests?: { cpu?: string } } }).resources?.requests?.cpu), 0);
const isTerminal = (pod: Obj): boolean => ["Succeeded", "Failed"].includes((pod.status as { phase?: string } | undefined)?.phase ?? "");

export class TestKubelet {
  private readonly runners = new Map<string, { runner: PodRunner; pod: Obj }>();
  /** Pods this kubelet rejected at admission: never run, never looked at again. */
  private readonly rejected = new Set<string>();
  /**
   * CPU the kubelet admits against. Unlimited unless a test sets it, apart from
   * the Node's advertised allocatable that the scheduler fits against: upstream's
   * kubelet rejects only what the scheduler's view missed, which a test models
   * by making the two disagree.
   */
  private allocatableCpuMilli = Infinity;
  /** Images a test made slow to pull (gatePull): absent from this node until pulled. */
  private readonly slowPulls = new Map<string, { begin: () => void; done: Promise<void>; pull: Promise<void> | null }>();
  private partitioned = false;
  private poweredOff = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly options: KubeletOptions) {}

  get nodeName(): string {
    return this.options.nodeName;
  }

  get isPoweredOff(): boolean {
    return this.poweredOff;
  }

  start(): void {
    const { api, nodeName, runtime } = this.options;
    if (!api.get("nodes", "", nodeName)) api.create("nodes", "", nodeObject(nodeName));
    api.setStatus("nodes", "", nodeName, readyNodeStatus(runtime === null, runtime?.version));
    this.unsubscribe = api.subscribe((c) => this.onChange(c));
    for (const pod of api.list("pods")) if ((pod.spec as PodSpec).nodeName === nodeName) this.handle("ADDED", pod);
  }

  private onChange(c: Change): void {
    if (c.resource !== "pods" || (c.object.spec as PodSpec).nodeName !== this.options.nodeName) return;
    // Deferred: subscribers run inside the API server's commit.
    setImmediate(() => this.handle(c.type, c.object));
  }

  private handle(type: Change["type"], pod: Obj): void {
    if (this.partitioned || this.poweredOff) return;
    const uid = pod.metadata.uid ?? "";
    const known = this.runners.get(uid);
    if (type === "DELETED") {
      if (!known) return;
      this.runners.delete(uid);
      void known.runner.terminate(1).catch(terminateFailed);
      return;
    }
    if (known) {
      known.pod = pod;
      known.runner.update(pod);
      return;
    }
    if (this.rejected.has(uid) || isTerminal(pod) || pod.metadata.deletionTimestamp) return;
    if (!this.admit(pod)) return;
    const connected = () => !this.partitioned && !this.poweredOff;
    const runner: PodRunner = this.options.runtime ? new PodWorker(pod, this.workerDeps(this.options.runtime, connected)) : new SimulatedPod(pod, this.options.api, connected);
    this.runners.set(uid, { runner, pod });
  }

  /**
   * The kubelet's own admission (kubelet.go HandlePodAdditions -> canAdmitPod;
   * lifecycle/predicate.go generalFilter): a pod whose CPU requests do not fit
   * what the admitted pods leave of the node's allocatable is rejected
   * (rejectPod): phase Failed, reason OutOfcpu, message "Pod was rejected: …".
   * No container of it ever runs, and nothing restarts it.
   */
  private admit(pod: Obj): boolean {
    const requested = cpuRequest(pod);
    const used = [...this.runners.values()].filter((r) => !isTerminal(r.pod)).reduce((sum, r) => sum + cpuRequest(r.pod), 0);
    if (requested === 0 || used + requested <= this.allocatableCpuMilli) return true;
    const uid = pod.metadata.uid ?? "";
    this.rejected.add(uid);
    const message = `Pod was rejected: Node didn't have enough resource: cpu, requested: ${requested}, used: ${used}, capacity: ${this.allocatableCpuMilli}`;
    try {
      const live = this.options.api.get("pods", pod.metadata.namespace ?? "", pod.metadata.name);
      if (live?.metadata.uid === uid) this.options.api.setStatus("pods", pod.metadata.namespace ?? "", pod.metadata.name, { ...((live.status ?? {}) as object), phase: "Failed", reason: "OutOfcpu", message });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
    }
    return false;
  }

  /** The CPU the kubelet admits pods against from now on (pods already running stay). */
  setAllocatableCpu(milli: number): void {
    this.allocatableCpuMilli = milli;
  }

  private workerDeps(runtime: ContainerRuntime, connected: () => boolean): WorkerDeps {
    const { api, nodeName, runId, dataRoot, backoffBaseMs, backoffCapMs } = this.options;
    return { api, runtime, nodeName, runId, dataRoot, backoffBaseMs, backoffCapMs, connected, slowPull: (image) => this.slowPull(image) };
  }

  /**
   * A slow registry for one image: it is not on this node until a pod needs it, and its pull then lasts until the
   * test calls `release()` (`started` resolves when the kubelet begins it). Pods waiting for the same image share
   * the pull, as the image manager's serial puller does. The image must be one the runtime has (imported into
   * containerd), so the pull ends with it present.
   */
  gatePull(image: string): { started: Promise<void>; release: () => void } {
    let begin!: () => void;
    let release!: () => void;
    const started = new Promise<void>((r) => (begin = r));
    const done = new Promise<void>((r) => (release = r));
    this.slowPulls.set(image, { begin, done, pull: null });
    return { started, release };
  }

  private slowPull(image: string): Promise<void> | null {
    const slow = this.slowPulls.get(image);
    if (!slow) return null;
    if (!slow.pull) {
      slow.begin();
      slow.pull = slow.done.then(() => void this.slowPulls.delete(image));
    }
    return slow.pull;
  }

  /** The network between this node and the API server goes: no status, no watch; containers keep running. */
  partition(): void {
    this.partitioned = true;
  }

  /** The network comes back: the node reports Ready again and catches up with what changed meanwhile. */
  heal(): void {
    if (!this.partitioned || this.poweredOff) return;
    this.partitioned = false;
    const { api, nodeName, runtime } = this.options;
    if (!api.get("nodes", "", nodeName)) api.create("nodes", "", nodeObject(nodeName));
    api.setStatus("nodes", "", nodeName, readyNodeStatus(runtime === null, runtime?.version));
    const live = new Map(api.list("pods").filter((p) => (p.spec as PodSpec).nodeName === nodeName).map((p) => [p.metadata.uid ?? "", p]));
    for (const [uid, { runner }] of this.runners) {
      if (live.has(uid)) continue;
      this.runners.delete(uid);
      void runner.terminate(1).catch(terminateFailed);
    }
    for (const pod of live.values()) this.handle("MODIFIED", pod);
  }

  /** The machine goes down (a non-graceful shutdown): every container dies at once. */
  async powerOff(): Promise<void> {
    this.poweredOff = true;
    const all = [...this.runners.values()];
    this.runners.clear();
    await Promise.all(all.map(({ runner }) => runner.terminate(0).catch(terminateFailed)));
  }

  async logs(pod: Obj, options: LogOptions): Promise<Readable> {
    const known = this.runners.get(pod.metadata.uid ?? "");
    if (!known || this.poweredOff) throw new HttpError(400, "BadRequest", `container "${options.container}" in pod "${pod.metadata.name}" is not available`);
    if (this.partitioned) throw new HttpError(500, "InternalError", `Get "https://${this.nodeName}:10250/containerLogs/...": dial tcp: i/o timeout`);
    return known.runner.logs(options);
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.powerOff();
  }
}

/** A pod whose termination failed past its retries is logged, as the kubelet logs a failed syncTerminatingPod, never an unhandled rejection. */
function terminateFailed(err: unknown): void {
  console.error("test kubelet: terminating a pod failed", { err });
}
