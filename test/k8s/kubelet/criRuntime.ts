/**
 * The CRI adapter of the test kubelet's ContainerRuntime: pods run through
 * containerd's CRI over gRPC, as a real kubelet's kuberuntime manager runs
 * them. One pod sandbox per Pod (RunPodSandbox on the first container, its IP
 * on the private CNI bridge is the pod IP), containers created from the image
 * id the image service resolved (EnsureImageExists), the LinuxContainerConfig
 * built from the Pod's resources and security context as
 * kuberuntime_container_linux.go / security_context.go build it. What a
 * container is (ids, image and imageID, exit codes and reasons, OOM kills,
 * start errors, logs) is whatever containerd answers.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { criClient, CriError, type ContainerConfig, type CriClient, type CriContainerStatus, type PodSandboxConfig } from "../cri/client.js";
import { startContainerd, type Containerd } from "../cri/containerd.js";
import { criLogStream } from "../cri/logs.js";
import { linuxContainerConfig, sandboxSecurityContext, volumeOwnership } from "../cri/podConfig.js";
import { PullError, StartError, type ContainerRuntime, type LogRequest, type RunSpec, type Started } from "./containerRuntime.js";
import type { Terminated } from "./types.js";

const NOT_FOUND = 5;
/** The kubelet's PLEG relists every second; half that keeps tests quick without flooding containerd. */
const RELIST_MS = 500;

const isoOfNanos = (ns: number): string => new Date(Math.floor(ns / 1e6)).toISOString().replace(/\.\d{3}Z$/, "Z");

interface Sandbox {
  id: string;
  ip: string;
  config: PodSandboxConfig;
}

export interface CriRuntimeOptions {
  /** Images to import from Docker into containerd's k8s.io namespace. */
  images: string[];
  runLabel: string;
  runId: string;
  /** Pod log directories (the kubelet's /var/log/pods) go under it. */
  dataRoot: string;
}

export class CriRuntime implements ContainerRuntime {
  private readonly sandboxes = new Map<string, Promise<Sandbox>>();
  private readonly waiters = new Map<string, { resolve: (t: Terminated) => void; reject: (e: Error) => void }[]>();
  private relist: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(
    readonly client: CriClient,
    readonly containerd: Containerd,
    readonly version: string,
    private readonly options: CriRuntimeOptions,
  ) {}

  static async start(options: CriRuntimeOptions): Promise<CriRuntime> {
    const containerd = await startContainerd(options.images);
    const client = criClient(containerd.socket);
    try {
      const v = await client.version();
      return new CriRuntime(client, containerd, `${v.runtimeName}://${v.runtimeVersion}`, options);
    } catch (err) {
      client.close();
      await containerd.stop();
      throw err;
    }
  }

  async imageId(ref: string): Promise<string | null> {
    return (await this.client.imageStatus(ref))?.id ?? null;
  }

  async pullImage(ref: string): Promise<string> {
    try {
      return await this.client.pullImage(ref);
    } catch (err) {
      throw new PullError(err instanceof CriError ? err.message.replace(/^CRI PullImage: /, "") : String(err));
    }
  }

  private sandbox(pod: NonNullable<RunSpec["pod"]>, labels: Record<string, string>): Promise<Sandbox> {
    let s = this.sandboxes.get(pod.uid);
    if (!s) {
      s = this.runSandbox(pod, labels);
      this.sandboxes.set(pod.uid, s);
      s.catch(() => this.sandboxes.delete(pod.uid));
    }
    return s;
  }

  /** kuberuntime_sandbox.go createPodSandbox + generatePodSandboxConfig. */
  private async runSandbox(pod: NonNullable<RunSpec["pod"]>, labels: Record<string, string>): Promise<Sandbox> {
    const logDirectory = path.join(this.options.dataRoot, "pod-logs", `${pod.namespace}_${pod.name}_${pod.uid}`);
    await fs.mkdir(logDirectory, { recursive: true });
    const config: PodSandboxConfig = {
      metadata: { name: pod.name, uid: pod.uid, namespace: pod.namespace, attempt: 0 },
      hostname: pod.name.slice(0, 63),
      logDirectory,
      labels: { [this.options.runLabel]: this.options.runId, "io.kubernetes.pod.name": pod.name, "io.kubernetes.pod.namespace": pod.namespace, "io.kubernetes.pod.uid": pod.uid, ...pick(labels, this.options.runLabel) },
      annotations: {},
      linux: { securityContext: sandboxSecurityContext(pod.spec) },
    };
    const id = await this.client.runPodSandbox(config);
    const status = await this.client.podSandboxStatus(id);
    return { id, ip: status.network?.ip ?? "", config };
  }

  async run(spec: RunSpec): Promise<Started> {
    if (!spec.pod || !spec.container) throw new Error("the CRI runtime needs the pod and container a run is for");
    const sandbox = await this.sandbox(spec.pod, spec.labels);
    // The kubelet creates containers from the image id EnsureImageExists resolved, and names the spec's ref beside it.
    const imageRef = (await this.imageId(spec.image)) ?? spec.image;
    await volumeOwnership(spec.pod.spec, spec.binds);
    const attempt = spec.attempt ?? 0;
    const config: ContainerConfig = {
      metadata: { name: spec.container.name, attempt },
      image: { image: imageRef },
      command: spec.command ?? [],
      args: spec.args ?? [],
      envs: spec.env.map((e) => {
        const at = e.indexOf("=");
        return { key: e.slice(0, at), value: Buffer.from(e.slice(at + 1)) };
      }),
      mounts: spec.binds.map((b) => {
        const [hostPath = "", containerPath = "", mode] = b.split(":");
        return { hostPath, containerPath, readonly: mode === "ro" };
      }),
      labels: { ...spec.labels, [this.options.runLabel]: this.options.runId },
      annotations: {},
      logPath: path.join(spec.container.name, `${attempt}.log`),
      linux: linuxContainerConfig(spec.pod.spec, spec.container),
    };
    const id = await this.client.createContainer(sandbox.id, config, sandbox.config);
    try {
      await this.client.startContainer(id);
    } catch (err) {
      const t = await this.terminated(id).catch(() => undefined);
      throw new StartError(id, t?.message ?? (err as Error).message, t);
    }
    const { status, info } = await this.client.containerStatus(id, true);
    return {
      id,
      containerID: `containerd://${id}`,
      reportedImage: status.image?.image ?? spec.image,
      imageId: status.imageRef,
      startedAt: isoOfNanos(status.startedAt),
      hostPorts: {},
      podIP: sandbox.ip,
      pid: pidOf(info),
    };
  }

  /** The container's termination, as kuberuntime's toKubeContainerStatus reads it from ContainerStatus. */
  private async terminated(id: string): Promise<Terminated> {
    const { status } = await this.client.containerStatus(id);
    return terminationOf(status);
  }

  waitExit(id: string): Promise<Terminated> {
    return new Promise((resolve, reject) => {
      this.waiters.set(id, [...(this.waiters.get(id) ?? []), { resolve, reject }]);
      this.relist ??= setInterval(() => void this.relistOnce(), RELIST_MS);
    });
  }

  /** One PLEG relist: every container of this cluster whose state left RUNNING wakes its waiters. */
  private async relistOnce(): Promise<void> {
    if (this.waiters.size === 0 || this.closed) return;
    let running: Set<string>;
    try {
      const list = await this.client.listContainers({ [this.options.runLabel]: this.options.runId });
      running = new Set(list.filter((c) => c.state === "CONTAINER_RUNNING" || c.state === "CONTAINER_CREATED").map((c) => c.id));
    } catch {
      return;
    }
    for (const [id, waiting] of [...this.waiters]) {
      if (running.has(id)) continue;
      this.waiters.delete(id);
      try {
        const t = await this.terminated(id);
        for (const w of waiting) w.resolve(t);
      } catch (err) {
        for (const w of waiting) w.reject(err as Error);
      }
    }
    if (this.waiters.size === 0 && this.relist) {
      clearInterval(this.relist);
      this.relist = null;
    }
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    await ignoreNotFound(this.client.stopContainer(id, Math.max(0, graceSeconds)));
  }

  async remove(id: string): Promise<void> {
    await ignoreNotFound(this.client.removeContainer(id));
  }

  /** kuberuntime's killPodWithSyncResult then the GC's removal: stop the sandbox, then remove it with its containers. */
  async releasePod(podUid: string): Promise<void> {
    const s = this.sandboxes.get(podUid);
    if (!s) return;
    this.sandboxes.delete(podUid);
    const sandbox = await s.catch(() => null);
    if (!sandbox) return;
    await this.stopSandbox(sandbox.id);
    await this.removeSandbox(sandbox.id);
  }

  /**
   * StopPodSandbox can fail in the CNI teardown ("failed to delete eth0: no
   * such device" when the sandbox's netns went first): tried again shortly,
   * as the kubelet's pod worker retries a failed syncTerminatingPod
   * (pod_workers.go) until the sandbox is stopped.
   */
  private async stopSandbox(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await ignoreNotFound(this.client.stopPodSandbox(id));
      } catch (err) {
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /**
   * RemovePodSandbox removes the sandbox's containers too, and fails while one
   * of them is being removed by a concurrent RemoveContainer ("already in
   * removing state"): tried again shortly, as the kubelet's GC tries again on
   * its next pass.
   */
  private async removeSandbox(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await ignoreNotFound(this.client.removePodSandbox(id));
      } catch (err) {
        if (attempt >= 10 || !/already in removing state/.test((err as Error).message)) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  removeAll(runLabel: string, runId: string): Promise<void> {
    return this.removeAllSandboxes({ [runLabel]: runId });
  }

  private async removeAllSandboxes(labels: Record<string, string> = {}): Promise<void> {
    const items = await this.client.listPodSandbox(labels);
    for (const s of items) {
      await this.stopSandbox(s.id);
      await this.removeSandbox(s.id);
    }
    this.sandboxes.clear();
  }

  async logs(id: string, options: LogRequest): Promise<import("node:stream").Readable> {
    const { status } = await this.client.containerStatus(id);
    return criLogStream(status.logPath, options, async () => {
      try {
        return (await this.client.containerStatus(id)).status.state === "CONTAINER_RUNNING";
      } catch {
        return false;
      }
    });
  }

  /** A container's pid on this host (ContainerStatus verbose info), for tests that kill it from outside. */
  async pidOf(id: string): Promise<number> {
    return pidOf((await this.client.containerStatus(id, true)).info);
  }

  /** Runs a command inside a container (CRI ExecSync), as `kubectl exec` would. */
  async exec(id: string, cmd: string[], timeoutSeconds = 15): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const r = await this.client.execSync(id, cmd, timeoutSeconds);
    return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exitCode: r.exitCode };
  }

  /** The pod IP of a running container's sandbox, or null when it is gone or not running. */
  async ipOf(id: string): Promise<string | null> {
    try {
      const { status } = await this.client.containerStatus(id);
      if (status.state !== "CONTAINER_RUNNING") return null;
      const list = await this.client.listContainers({});
      const sandboxId = list.find((c) => c.id === id)?.podSandboxId;
      if (!sandboxId) return null;
      return (await this.client.podSandboxStatus(sandboxId)).network?.ip || null;
    } catch (err) {
      if (err instanceof CriError && err.code === NOT_FOUND) return null;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.relist) clearInterval(this.relist);
    for (const waiting of this.waiters.values()) for (const w of waiting) w.reject(new Error("CRI runtime closed"));
    this.waiters.clear();
    // Every sandbox in this containerd is this cluster's: stopping them releases their netns and IPs.
    await this.removeAllSandboxes().catch(() => undefined);
    this.client.close();
    await this.containerd.stop();
  }
}

function terminationOf(status: CriContainerStatus): Terminated {
  return {
    exitCode: status.exitCode,
    reason: status.reason || (status.exitCode === 0 ? "Completed" : "Error"),
    ...(status.message ? { message: status.message } : {}),
    startedAt: status.startedAt ? isoOfNanos(status.startedAt) : "1970-01-01T00:00:00Z",
    finishedAt: isoOfNanos(status.finishedAt || Date.now() * 1e6),
    containerID: `containerd://${status.id}`,
  };
}

function pidOf(info: Record<string, string>): number {
  try {
    return Number((JSON.parse(info.info ?? "{}") as { pid?: number }).pid ?? 0);
  } catch {
    return 0;
  }
}

function pick(labels: Record<string, string>, except: string): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith("io.kubernetes.pod.") && k !== except));
}

async function ignoreNotFound(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof CriError && err.code === NOT_FOUND)) throw err;
  }
}
