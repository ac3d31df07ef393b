/**
 * A test cluster around the test API server: N nodes, each with a test
 * kubelet, a scheduler, the node lifecycle controller and pod GC, and a PVC
 * binder. The kubelets run pods through containerd's CRI (mode "cri": one
 * private containerd for the cluster, pods on its CNI bridge), as Docker
 * containers ("docker"), or hollow ("simulated", for scale benches). Every
 * container and sandbox it creates carries RUN_LABEL=<runId>; stop() removes
 * them all (and stops the cluster's containerd).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Dockerode from "dockerode";
import type { FakeApiServer, Obj } from "../fakeApiServer.js";
import { TestKubelet } from "./kubelet.js";
import { NodeController } from "./nodeController.js";
import type { ContainerRuntime } from "./containerRuntime.js";
import { CriRuntime } from "./criRuntime.js";
import { DockerRuntime } from "./runtime.js";
import { Scheduler } from "./scheduler.js";
import { scaledClock, type Clock } from "./clock.js";
import { TaintEvictionController } from "./taintEviction.js";
import { HOST_PORT_ANNOTATION, RUN_LABEL } from "./types.js";

export interface TestClusterOptions {
  /** Number of nodes, named `<nodePrefix>-0` … Default 3. */
  nodes?: number;
  nodePrefix?: string;
  /**
   * "cri": pods through a private containerd's CRI (the real runtime a kubelet uses; pod IPs on a private bridge);
   * "docker": Docker containers with ports published on 127.0.0.1; "simulated": pods Running/Ready without any
   * container (kubemark/KWOK style). Default "docker".
   */
  mode?: "cri" | "docker" | "simulated";
  /** Mode "cri": the Docker images imported into containerd (the pause image and an alias/digest of 1.0.1 come on top). */
  images?: string[];
  /** Value of RUN_LABEL on every container; default random. */
  runId?: string;
  /** The kubelet's restart and image-pull back-off: base (10 s) doubling to cap (5 min). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Force-delete pods of deleted or out-of-service nodes, as the pod GC does. Default true. */
  podGc?: boolean;
  dockerSocket?: string;
  /**
   * How many times faster than the wall clock the control plane's clock runs (the taint eviction controller's
   * tolerationSeconds): 300 runs DefaultTolerationSeconds' 300 s in one second. Default 1.
   */
  clockScale?: number;
}

/** The test engine images (test/engine/build.sh) a CRI cluster imports by default. */
export const DEFAULT_CRI_IMAGES = [
  "galaxy/test-engine:1.0.0",
  "galaxy/test-engine:1.0.1",
  "galaxy/test-engine:1.0.2",
  "galaxy/test-engine:1.0.3",
  "galaxy/test-engine:1.0.4",
  "galaxy/test-engine:1.1.0",
  "galaxy/test-engine:2.0.0",
];

export class TestCluster {
  readonly kubelets = new Map<string, TestKubelet>();
  private readonly scheduler: Scheduler;
  private readonly nodeController: NodeController;
  /** The control plane's clock (scaled by `clockScale`). */
  readonly clock: Clock;
  /** Evicts the pods of NoExecute-tainted nodes once their tolerations run out. */
  readonly taintEviction: TaintEvictionController;

  private constructor(
    readonly api: FakeApiServer,
    readonly runId: string,
    readonly dataRoot: string,
    private readonly runtime: ContainerRuntime | null,
    options: TestClusterOptions,
  ) {
    this.scheduler = new Scheduler(api);
    this.nodeController = new NodeController(api, { podGc: options.podGc ?? true, powerOff: (node) => this.kubelets.get(node)?.powerOff() ?? Promise.resolve() });
    // After the node controller: on an out-of-service taint the machine is powered off before the evictions land.
    this.clock = scaledClock(options.clockScale ?? 1);
    this.taintEviction = new TaintEvictionController(api, this.clock);
    for (let i = 0; i < (options.nodes ?? 3); i++) {
      const nodeName = `${options.nodePrefix ?? "node"}-${i}`;
      const kubelet = new TestKubelet({
        api,
        nodeName,
        runtime,
        runId,
        dataRoot,
        backoffBaseMs: options.backoffBaseMs ?? 10_000,
        backoffCapMs: options.backoffCapMs ?? 300_000,
      });
      this.kubelets.set(nodeName, kubelet);
      kubelet.start();
    }
    api.setLogSource((pod, logOptions) => {
      const kubelet = this.kubelets.get(String((pod.spec as { nodeName?: string }).nodeName ?? ""));
      if (!kubelet) return Promise.reject(new Error(`pod ${pod.metadata.name} is not bound to a test node`));
      return kubelet.logs(pod, logOptions);
    });
  }

  static async start(api: FakeApiServer, options: TestClusterOptions = {}): Promise<TestCluster> {
    const runId = options.runId ?? `tk-${randomBytes(4).toString("hex")}`;
    const dataRoot = await fs.mkdtemp(path.join(os.tmpdir(), `${runId}-`));
    let runtime: ContainerRuntime | null = null;
    if (options.mode === "cri") runtime = await CriRuntime.start({ images: options.images ?? DEFAULT_CRI_IMAGES, runLabel: RUN_LABEL, runId, dataRoot });
    else if (options.mode !== "simulated") runtime = new DockerRuntime(new Dockerode({ socketPath: options.dockerSocket ?? "/var/run/docker.sock" }), runId);
    return new TestCluster(api, runId, dataRoot, runtime, options);
  }

  /** The CRI runtime in mode "cri" (exec into containers, their pids), else null. */
  get cri(): CriRuntime | null {
    return this.runtime instanceof CriRuntime ? this.runtime : null;
  }

  kubelet(node: string): TestKubelet {
    const k = this.kubelets.get(node);
    if (!k) throw new Error(`no test node ${node}`);
    return k;
  }

  /** Cuts a node off the API server; the control plane notices (node Ready=Unknown and tainted unreachable, its pods' Ready False). */
  partition(node: string): void {
    this.kubelet(node).partition();
    this.nodeController.markUnreachable(node);
  }

  heal(node: string): void {
    this.kubelet(node).heal();
    this.api.update("nodes", "", node, (o) => {
      const spec = (o.spec ?? {}) as { taints?: { key: string }[] };
      spec.taints = (spec.taints ?? []).filter((t) => t.key !== "node.kubernetes.io/unreachable");
      if (spec.taints.length === 0) delete spec.taints;
      o.spec = spec;
    });
  }

  /**
   * Where a pod's container port is reached from this machine: its pod IP on the CRI bridge, or (Docker mode)
   * 127.0.0.1 and the port Docker published; undefined before the pod has one.
   */
  static address(pod: { metadata?: { annotations?: Record<string, string> }; status?: unknown }, containerPort = 8080): { host: string; port: number } | undefined {
    const published = TestCluster.hostPort(pod, containerPort);
    if (published !== undefined) return { host: "127.0.0.1", port: published };
    const ip = (pod.status as { podIP?: string } | undefined)?.podIP;
    return ip && ip !== "127.0.0.1" ? { host: ip, port: containerPort } : undefined;
  }

  /** Docker mode: the 127.0.0.1 port Docker published for a pod's container port (the Pod IP there is always 127.0.0.1). */
  static hostPort(pod: { metadata?: { annotations?: Record<string, string> } }, containerPort = 8080): number | undefined {
    const v = pod.metadata?.annotations?.[HOST_PORT_ANNOTATION(containerPort)];
    return v === undefined ? undefined : Number(v);
  }

  /** Pods of this cluster's API server bound to `node`. */
  podsOn(node: string): Obj[] {
    return this.api.list("pods").filter((p) => (p.spec as { nodeName?: string }).nodeName === node);
  }

  /** Stops every kubelet, removes every container this cluster created (by RUN_LABEL) and its host directories. */
  async stop(): Promise<void> {
    this.scheduler.stop();
    this.nodeController.stop();
    this.taintEviction.stop();
    this.api.setLogSource(null);
    await Promise.all([...this.kubelets.values()].map((k) => k.stop()));
    if (this.runtime) {
      await this.runtime.removeAll(RUN_LABEL, this.runId);
      await this.runtime.close();
    }
    await fs.rm(this.dataRoot, { recursive: true, force: true });
  }
}
