/**
 * The Pod runtime against a real cluster: skipped (and counted as skipped)
 * unless KUBECONFIG is set, as test/integration/k8s.test.ts's real-cluster block is. CI has no
 * cluster, so CI runs the same behaviour against the test API server and
 * kubelet (pod-runtime.test.ts, runtime-behaviour.test.ts); this block is for
 * an operator or a developer with a cluster:
 *
 *   KUBECONFIG=~/.kube/config RTMANAGER_TEST_NAMESPACE=rtm-test \
 *   RTMANAGER_TEST_ENGINE_IMAGES=registry.example/galaxy/test-engine:1.0.0,registry.example/galaxy/test-engine:1.0.1 \
 *   npx vitest run test/integration/pod-runtime-cluster.test.ts
 *
 * The two images are test/engine's 1.0.0 and 1.0.1 (`bash test/engine/build.sh`,
 * then tag and push them where the cluster can pull). The namespace must exist
 * and have a default storage class; the test leaves the claims behind, as
 * rtmanager does (delete them with `kubectl -n <ns> delete pvc -l rtmanager.galaxy.io/managed=true`).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, type App } from "../../src/app.js";
import { RtmClient } from "../../src/client/index.js";
import { loadConfig } from "../../src/config.js";
import { uniqueGameId, uniqueInstance } from "../helpers/docker.js";

const images = (process.env.RTMANAGER_TEST_ENGINE_IMAGES ?? "").split(",").filter(Boolean);

// Collected always, run only with a real cluster at hand: without one (CI) its tests count as skipped, with the reason in the name.
describe.skipIf(!process.env.KUBECONFIG)(`Pod runtime against the cluster in $KUBECONFIG${process.env.KUBECONFIG ? "" : " (skipped: KUBECONFIG is unset)"}`, () => {
  const namespace = process.env.RTMANAGER_TEST_NAMESPACE || "default";
  const [v100, v101] = images as [string, string];
  let app: App;
  let client: RtmClient;
  let core: CoreV1Api;
  let root: string;

  beforeAll(async () => {
    if (images.length !== 2) throw new Error("set RTMANAGER_TEST_ENGINE_IMAGES to the cluster-pullable refs of test/engine's 1.0.0 and 1.0.1, comma-separated");
    root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-pods-cluster-"));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromDefault();
    core = kubeConfig.makeApiClient(CoreV1Api);
    app = await createApp(
      loadConfig({
        RTMANAGER_RUNTIME: "kubernetes",
        RTMANAGER_POD_NAMESPACE: namespace,
        RTMANAGER_INSTANCE_ID: uniqueInstance("cluster"),
        RTMANAGER_DATA_DIR: path.join(root, "data"),
        RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
        RTMANAGER_PATCH_MIN_HEALTHY: "2s",
        RTMANAGER_PATCH_HEALTH_TIMEOUT: "120s",
        RTMANAGER_POD_START_TIMEOUT: "120s",
        RTMANAGER_OP_TIMEOUT: "180s",
        RTMANAGER_LOG_LEVEL: "silent",
      }),
      pino({ level: "silent" }),
    );
    client = new RtmClient({ baseUrl: `http://127.0.0.1:${await app.start()}`, timeoutMs: 200_000, caller: "gm" });
  }, 60_000);

  afterAll(async () => {
    await app?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true });
  }, 60_000);

  it("start, patch in place, stop, start, cleanup: the Pod, its Service and its claim as the README says", async () => {
    const g = uniqueGameId("cluster");
    const started = await client.start(g, v100);
    expect(started.status).toBe("running");
    expect(started.state_path).toBe(`pvc://${namespace}/galaxy-game-${g}-state`);
    const pod = await core.readNamespacedPod({ namespace, name: `galaxy-game-${g}` });
    expect(pod.status?.containerStatuses?.[0]?.containerID).toContain(started.current_container_id!);
    await core.readNamespacedService({ namespace, name: `galaxy-game-${g}` });

    const patched = await client.patch(g, v101);
    expect(patched.current_image_ref).toBe(v101);
    const after = await core.readNamespacedPod({ namespace, name: `galaxy-game-${g}` });
    expect(after.metadata?.uid).toBe(pod.metadata?.uid);

    expect((await client.stop(g, "admin_request")).status).toBe("stopped");
    expect((await client.start(g, v101)).status).toBe("running");
    expect((await client.stop(g, "finished")).status).toBe("stopped");
    expect((await client.cleanup(g)).status).toBe("removed");
    await core.readNamespacedPersistentVolumeClaim({ namespace, name: `galaxy-game-${g}-state` });
  }, 600_000);
});
