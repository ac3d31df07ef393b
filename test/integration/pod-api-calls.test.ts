/**
 * The Pod runtime's API calls against the test API server alone (no kubelet):
 * every request is aborted at its timeout (the client setup the GameRuntime
 * source uses), the image patch carries the resourceVersion it was planned
 * on, and relists page with limit/continue.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { createAppWithKubeconfig } from "../helpers/kubeconfigApp.js";
import { kubeClient } from "../../src/kube/client.js";
import { createLogger } from "../../src/log.js";
import type { EngineSpec } from "../../src/model/ports.js";
import { KubernetesPodRuntime } from "../../src/runtime/kubernetes/podRuntime.js";
import { POD_LABELS } from "../../src/runtime/kubernetes/names.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";

const NS = "games";
const INSTANCE = "calls-test";
let server: FakeApiServer;

beforeAll(async () => {
  server = await FakeApiServer.start();
});
afterAll(async () => {
  await server?.stop();
});

function runtime(requestTimeoutMs: number, listPageSize?: number): KubernetesPodRuntime {
  const kubeConfig = kubeClient(requestTimeoutMs, fakeKubeConfig(server.url));
  return new KubernetesPodRuntime({
    kubeConfig,
    instance: INSTANCE,
    namespace: NS,
    listNamespace: NS,
    pod: { imagePullPolicy: "if_not_present", terminationGraceSeconds: 1, template: {}, readiness: { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 } },
    claim: { storageClass: "", size: "1Gi" },
    logger: createLogger("silent", "pod-api-calls"),
    startTimeoutMs: 200,
    ...(listPageSize ? { listPageSize } : {}),
  });
}

const spec = (gameId: string, imageRef = "galaxy/test-engine:1.0.0", generation = 1): EngineSpec => ({
  gameId,
  name: `galaxy-game-${gameId}`,
  imageRef,
  generation,
  restartToken: null,
  configHash: "h1",
  env: {},
  statePath: "",
  resources: { cpus: 0, memoryBytes: 0, pidsLimit: 0 },
  restartPolicy: "on-failure",
});

/** The kubelet's part, written by hand: the engine container runs. */
function markRunning(gameId: string, containerID: string): void {
  server.setStatus("pods", NS, `galaxy-game-${gameId}`, {
    phase: "Running",
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{ name: "engine", image: "docker.io/galaxy/test-engine:1.0.0", imageID: "", containerID, ready: true, restartCount: 0, state: { running: { startedAt: new Date().toISOString() } } }],
  });
}

describe("Pod runtime API calls", () => {
  it("a request the API server never answers is aborted at RTMANAGER_KUBE_REQUEST_TIMEOUT: the connection is closed, not left open", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-calls-"));
    const kubeconfigFile = path.join(root, "kubeconfig");
    await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
    const config = loadConfig({
      RTMANAGER_RUNTIME: "kubernetes",
      RTMANAGER_POD_NAMESPACE: NS,
      RTMANAGER_INSTANCE_ID: "calls-abort",
      RTMANAGER_DATA_DIR: path.join(root, "data"),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_KUBE_REQUEST_TIMEOUT: "300ms",
      RTMANAGER_LOG_LEVEL: "silent",
    });
    // Built as production builds it: the Pod runtime's client comes from createApp.
    const app = await createAppWithKubeconfig(kubeconfigFile, config, pino({ level: "silent" }));
    try {
      await app.runtime.listManaged();
      let gone: Promise<void> | undefined;
      server.beforeHandle = async (req) => {
        if (req.method === "POST" && req.path.endsWith("/pods")) {
          gone = req.clientGone;
          await req.clientGone;
        }
      };
      const err = await app.runtime.create(spec("hang1")).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "docker_unavailable" });
      expect((err as Error).message).toMatch(/aborted/);
      expect(gone).toBeDefined();
      // Resolves only when the client closed the connection: the abort reached the socket.
      await gone;
      expect(server.get("pods", NS, "galaxy-game-hang1")).toBeUndefined();
    } finally {
      server.beforeHandle = null;
      await app.stop();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it("RTMANAGER_POD_CLIENT_NAMESPACES: each game gets an ExternalName Service galaxy-game-{id} in the client namespace, aliasing its Service", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-alias-"));
    const kubeconfigFile = path.join(root, "kubeconfig");
    await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
    const config = loadConfig({
      RTMANAGER_RUNTIME: "kubernetes",
      RTMANAGER_POD_NAMESPACE: NS,
      RTMANAGER_INSTANCE_ID: "calls-alias",
      RTMANAGER_DATA_DIR: path.join(root, "data"),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_POD_CLIENT_NAMESPACES: "galaxy-gm, tools",
      RTMANAGER_LOG_LEVEL: "silent",
    });
    const app = await createAppWithKubeconfig(kubeconfigFile, config, pino({ level: "silent" }));
    try {
      await app.runtime.create(spec("alias1"));
      for (const ns of ["galaxy-gm", "tools"]) {
        const alias = server.get("services", ns, "galaxy-game-alias1");
        expect(alias?.spec).toMatchObject({ type: "ExternalName", externalName: `galaxy-game-alias1.${NS}.svc.cluster.local` });
        expect(alias?.metadata.labels).toMatchObject({ "rtmanager.galaxy.io/game-id": "alias1", "rtmanager.galaxy.io/instance": "calls-alias" });
      }
      expect((server.get("services", NS, "galaxy-game-alias1")?.spec as { type?: string }).type).toBe("ClusterIP");
      // A second create of the same game (its Pod replaced) keeps the aliases.
      server.remove("pods", NS, "galaxy-game-alias1", { gracePeriodSeconds: 0 });
      await app.runtime.create(spec("alias1"));
      expect(server.get("services", "galaxy-gm", "galaxy-game-alias1")).toBeDefined();
    } finally {
      await app.stop();
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it("the image patch carries the resourceVersion it was planned on: a patch planned before a newer one landed is refused (409), a status-only change is retried", async () => {
    const rt = runtime(5_000);
    try {
      const id = await rt.create(spec("rv1"));
      markRunning("rv1", "containerd://c1");
      const [engine] = await waitForEngine(rt, "rv1", (e) => e.id === "c1");
      expect(engine).toBeDefined();

      // The kubelet writes status while the patch is on its way: a 409 the plan survives, retried on the fresh Pod.
      let kubeletWrote = false;
      server.beforeHandle = (req) => {
        if (req.method === "PATCH" && req.path.endsWith("/pods/galaxy-game-rv1") && !kubeletWrote) {
          kubeletWrote = true;
          markRunning("rv1", "containerd://c1");
        }
      };
      const patchesBefore = server.requests.filter((r) => r.method === "PATCH").length;
      await rt.updateImage("c1", spec("rv1", "galaxy/test-engine:1.0.1", 2));
      expect(kubeletWrote).toBe(true);
      expect(server.requests.filter((r) => r.method === "PATCH").length - patchesBefore).toBe(2);
      const patched = server.get("pods", NS, "galaxy-game-rv1")!;
      expect((patched.spec as { containers: { image: string }[] }).containers[0]!.image).toBe("galaxy/test-engine:1.0.1");
      expect(patched.metadata.annotations?.["rtmanager.galaxy.io/replaced-container"]).toBe("c1");
      markRunning("rv1", "containerd://c1");
      await waitForEngine(rt, "rv1", () => true);

      // Another writer patched the spec since: the stale plan is refused, not applied over it.
      const requests = server.requests.length;
      let raced = false;
      server.beforeHandle = (req) => {
        if (req.method === "PATCH" && req.path.endsWith("/pods/galaxy-game-rv1") && !raced) {
          raced = true;
          server.update("pods", NS, "galaxy-game-rv1", (o) => {
            (o.spec as { containers: { image: string }[] }).containers[0]!.image = "galaxy/test-engine:1.0.2";
            o.metadata.labels = { ...o.metadata.labels, [POD_LABELS.generation]: "3" };
          });
        }
      };
      const err = await rt.updateImage("c1", spec("rv1", "galaxy/test-engine:1.0.0", 4)).catch((e: unknown) => e);
      expect(err).toMatchObject({ kind: "conflict" });
      expect((server.get("pods", NS, "galaxy-game-rv1")!.spec as { containers: { image: string }[] }).containers[0]!.image).toBe("galaxy/test-engine:1.0.2");
      const patch = server.requests.slice(requests).find((r) => r.method === "PATCH");
      expect(patch).toBeDefined();
      expect(id).toMatch(/^pod:/);
    } finally {
      server.beforeHandle = null;
      await rt.close();
    }
  });

  it("relists page with limit and continue and still see every Pod", async () => {
    for (let i = 0; i < 5; i++) await runtime(5_000).create(spec(`page${i}`)).catch(() => undefined);
    const rt = runtime(5_000, 2);
    try {
      const before = server.requests.length;
      const engines = (await rt.listManaged()).filter((e) => e.gameId.startsWith("page"));
      expect(engines.map((e) => e.gameId).sort()).toEqual(["page0", "page1", "page2", "page3", "page4"]);
      const podLists = server.requests.slice(before).filter((r) => r.method === "GET" && r.path === `/api/v1/namespaces/${NS}/pods` && r.query.watch !== "true");
      expect(podLists.length).toBeGreaterThanOrEqual(3);
      expect(podLists.every((r) => r.query.limit === "2")).toBe(true);
      expect(podLists.filter((r) => r.query.continue).length).toBe(podLists.length - 1);
    } finally {
      await rt.close();
    }
  });
});

async function waitForEngine(rt: KubernetesPodRuntime, gameId: string, ok: (e: { id: string }) => boolean) {
  for (let i = 0; i < 100; i++) {
    const found = (await rt.listForGame(gameId)).filter(ok);
    if (found.length > 0) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return [];
}
