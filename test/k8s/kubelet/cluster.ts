/**
 * A test cluster around the test API server: N nodes, each with a test
 * kubelet (Docker or simulated), a scheduler, the node lifecycle controller
 * and pod GC, and a PVC binder. Every Docker container it creates carries
 * RUN_LABEL=<runId>; stop() removes them all.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Dockerode from "dockerode";
import type { FakeApiServer, Obj } from "../fakeApiServer.js";
import { TestKubelet } from "./kubelet.js";
import { NodeController } from "./nodeController.js";
import { DockerRuntime } from "./runtime.js";
import { Scheduler } from "./scheduler.js";
import { HOST_PORT_ANNOTATION, RUN_LABEL } from "./types.js";

export interface TestClusterOptions {
  /** Number of nodes, named `<nodePrefix>-0` … Default 3. */
  nodes?: number;
  nodePrefix?: string;
  /** "docker" runs real containers; "simulated" reports pods Running/Ready without any (kubemark/KWOK style). */
  mode?: "docker" | "simulated";
  /** Value of RUN_LABEL on every container; default random. */
  runId?: string;
  /** The kubelet's restart and image-pull back-off: base (10 s) doubling to cap (5 min). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Force-delete pods of deleted or out-of-service nodes, as the pod GC does. Default true. */
  podGc?: boolean;
  dockerSocket?: string;
}

export class TestCluster {
  readonly kubelets = new Map<string, TestKubelet>();
  private readonly scheduler: Scheduler;
  private readonly nodeController: NodeController;

  private constructor(
    readonly api: FakeApiServer,
    readonly runId: string,
    readonly dataRoot: string,
    private readonly runtime: DockerRuntime | null,
    options: TestClusterOptions,
  ) {
    this.scheduler = new Scheduler(api);
    this.nodeController = new NodeController(api, { podGc: options.podGc ?? true, powerOff: (node) => this.kubelets.get(node)?.powerOff() ?? Promise.resolve() });
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
    const runtime = options.mode === "simulated" ? null : new DockerRuntime(new Dockerode({ socketPath: options.dockerSocket ?? "/var/run/docker.sock" }), runId);
    return new TestCluster(api, runId, dataRoot, runtime, options);
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

  /** The 127.0.0.1 port Docker published for a pod's container port (the Pod IP here is always 127.0.0.1). */
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
    this.api.setLogSource(null);
    await Promise.all([...this.kubelets.values()].map((k) => k.stop()));
    if (this.runtime) {
      const ids = await this.runtime.listLabelled(RUN_LABEL, this.runId);
      await Promise.all(ids.map((id) => this.runtime!.remove(id)));
      await this.runtime.dispose();
    }
    await fs.rm(this.dataRoot, { recursive: true, force: true });
  }
}
