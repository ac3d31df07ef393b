/**
 * rtmanager wired as production wires it for the Pod runtime (createApp,
 * RTMANAGER_RUNTIME=kubernetes, $KUBECONFIG naming the test API server) over
 * a test cluster whose kubelets run each Pod through containerd's CRI (mode
 * "cri") or as a Docker container (mode "docker", the default).
 * One place for what every Pod-runtime integration file sets up.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import type { App, AppOverrides } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { FakeApiServer, type Obj } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { DEFAULT_CRI_IMAGES, TestCluster } from "../k8s/kubelet/cluster.js";
import { ensureTestImages, uniqueInstance } from "./docker.js";
import { registerCriRuntime } from "./engine.js";
import { createAppWithKubeconfig } from "./kubeconfigApp.js";
import { seedPgliteDataDir } from "./pgliteTemplate.js";

export const POD_NAMESPACE = "games";

export interface PodTestApp {
  server: FakeApiServer;
  cluster: TestCluster;
  app: App;
  baseUrl: string;
  instance: string;
  /** This app's temp directory (kubeconfig, data); close() removes it. */
  root: string;
  podOf(gameId: string): Obj | undefined;
  close(): Promise<void>;
}

export interface PodTestAppOptions {
  /** Names the instance and the temp directory. */
  name: string;
  nodes: number;
  /** Settings on top of the defaults below (fast probes, retries and resyncs). */
  env?: Record<string, string>;
  overrides?: AppOverrides;
  /** Another app's test cluster to run on (a second installation); close() leaves it running. */
  on?: { server: FakeApiServer; cluster: TestCluster };
  /** How the test kubelets run Pods: "cri" (containerd, pod IPs on a private bridge) or "docker". Default "docker". */
  mode?: "cri" | "docker";
  /** Mode "cri": images imported into containerd beyond the test engine images. */
  extraImages?: string[];
}

export async function startPodTestApp(options: PodTestAppOptions): Promise<PodTestApp> {
  await ensureTestImages();
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `rtm-${options.name}-`));
  const server = options.on?.server ?? (await FakeApiServer.start());
  const mode = options.mode ?? "docker";
  const images = [...DEFAULT_CRI_IMAGES, ...(options.extraImages ?? [])];
  const cluster = options.on?.cluster ?? (await TestCluster.start(server, { nodes: options.nodes, mode, images, backoffBaseMs: 300, backoffCapMs: 2000 }));
  const forget = cluster.cri ? registerCriRuntime(cluster.cri) : () => undefined;
  const kubeconfigFile = path.join(root, "kubeconfig");
  await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
  const instance = uniqueInstance(options.name);
  const config = loadConfig({
    RTMANAGER_RUNTIME: "kubernetes",
    RTMANAGER_POD_NAMESPACE: POD_NAMESPACE,
    RTMANAGER_INSTANCE_ID: instance,
    RTMANAGER_DATA_DIR: path.join(root, "data"),
    RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
    RTMANAGER_CONTAINER_STOP_TIMEOUT: "2s",
    RTMANAGER_PROBE_INTERVAL: "1s",
    RTMANAGER_PROBE_TIMEOUT: "1s",
    RTMANAGER_RETRY_BACKOFF_BASE: "200ms",
    RTMANAGER_RETRY_BACKOFF_MAX: "2s",
    RTMANAGER_RESYNC_INTERVAL: "2s",
    RTMANAGER_DEFAULT_MEMORY: "64m",
    RTMANAGER_DEFAULT_CPUS: "0.5",
    RTMANAGER_LOG_LEVEL: "silent",
    ...options.env,
  });
  await seedPgliteDataDir(config);
  // The client reads $KUBECONFIG while createApp builds it, as in production.
  const app = await createAppWithKubeconfig(kubeconfigFile, config, pino({ level: "silent" }), options.overrides);
  const port = await app.start();
  return {
    server,
    cluster,
    app,
    baseUrl: `http://127.0.0.1:${port}`,
    instance,
    root,
    podOf: (gameId) => server.get("pods", POD_NAMESPACE, `galaxy-game-${gameId}`),
    async close() {
      await app.stop().catch(() => undefined);
      if (!options.on) {
        forget();
        await cluster.stop();
        await server.stop();
      }
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
