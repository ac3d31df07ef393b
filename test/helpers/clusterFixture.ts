/**
 * The behavioural suite's Pod fixture on a real cluster (`npm run
 * e2e:cluster`): rtmanager through createApp with RTMANAGER_RUNTIME=kubernetes
 * against whatever $KUBECONFIG names, engines from the images the operator
 * pushed (RTMANAGER_E2E_IMAGE_REPO, see docs/kubernetes.md). Engines are
 * reached through the API server as kubectl would: GET through the pod proxy,
 * exec over the exec subresource, and a game's claim read by a short-lived
 * reader Pod. The expectations are the Pod runtime's, as on the CRI test
 * cluster (README, "Docker and Pods side by side").
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { CoreV1Api, Exec, KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { createApp } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { uniqueInstance, waitFor } from "./docker.js";
import { registerEngineAccess } from "./engine.js";
import { SUITE_ENV, suiteImages, type FixtureOptions, type RuntimeFixture } from "./runtimeFixtures.js";

/** Set by vitest.e2e-cluster.config.ts: the suite runs its Pod fixture on the cluster in $KUBECONFIG only. */
export const E2E_CLUSTER = process.env.RTMANAGER_E2E_CLUSTER === "1";

const ENGINE = "engine";

function clusterAccess(kc: KubeConfig, core: CoreV1Api, namespace: string) {
  const podOf = async (id: string): Promise<V1Pod | undefined> => {
    const pods = await core.listNamespacedPod({ namespace });
    return pods.items.find((p) => p.status?.containerStatuses?.some((c) => c.name === ENGINE && c.containerID?.endsWith(`://${id}`)));
  };
  const exec = async (pod: V1Pod, command: string[]): Promise<{ out: string; ok: boolean; message: string }> => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (c: Buffer) => (out += c.toString()));
    stderr.on("data", (c: Buffer) => (err += c.toString()));
    return new Promise((resolve, reject) => {
      new Exec(kc)
        .exec(namespace, pod.metadata!.name!, ENGINE, command, stdout, stderr, null, false, (status) => resolve({ out, ok: status.status === "Success", message: status.message ?? err }))
        .catch(reject);
    });
  };
  return {
    has: async (id: string) => (await podOf(id)) !== undefined,
    servedVersion: async (id: string) => {
      const pod = await podOf(id);
      const cs = pod?.status?.containerStatuses?.find((c) => c.name === ENGINE);
      if (!pod || !cs?.state?.running || !cs.containerID?.endsWith(id)) return null;
      try {
        return (await core.connectGetNamespacedPodProxyWithPath({ name: `${pod.metadata!.name}:8080`, namespace, path: "version" })).trim();
      } catch {
        return null;
      }
    },
    shell: async (id: string, script: string) => {
      const pod = await podOf(id);
      if (!pod) throw new Error(`no Pod runs container ${id}`);
      const r = await exec(pod, ["/bin/sh", "-c", script]);
      if (!r.ok) throw new Error(`exec in ${id}: ${r.message}`);
      return r.out;
    },
    // PID 1 of a container cannot be SIGKILLed from inside it: kill everything else, the engine's
    // `wait` on its httpd then ends the entrypoint with 137, as a kill from outside would.
    kill: async (id: string) => {
      const pod = await podOf(id);
      if (!pod) throw new Error(`no Pod runs container ${id}`);
      await exec(pod, ["/bin/sh", "-c", "kill -9 -1"]);
    },
  };
}

/** Reads a file from a game's claim with a one-shot Pod mounting it (the engine's Pod is gone after cleanup). */
async function readClaim(core: CoreV1Api, namespace: string, image: string, claim: string, file: string): Promise<string> {
  const name = `rtm-e2e-read-${Math.random().toString(16).slice(2, 10)}`;
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { "rtmanager.galaxy.io/e2e": "reader" } },
      spec: {
        restartPolicy: "Never",
        securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
        containers: [{ name: "read", image, command: ["/bin/cat", `/state/${file}`], volumeMounts: [{ name: "state", mountPath: "/state", readOnly: true }], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } } }],
        volumes: [{ name: "state", persistentVolumeClaim: { claimName: claim, readOnly: true } }],
      },
    },
  });
  try {
    await waitFor(`reader ${name} done`, async () => ["Succeeded", "Failed"].includes((await core.readNamespacedPod({ name, namespace })).status?.phase ?? ""), 120_000, 500);
    return await core.readNamespacedPodLog({ name, namespace, container: "read" });
  } finally {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  }
}

export async function clusterFixture(name: string, opts: FixtureOptions = {}): Promise<RuntimeFixture> {
  if (!process.env.KUBECONFIG) throw new Error("npm run e2e:cluster needs KUBECONFIG naming the cluster to check");
  if (!process.env.RTMANAGER_E2E_IMAGE_REPO) throw new Error("set RTMANAGER_E2E_IMAGE_REPO to the repository the test engine tags were pushed to (docs/kubernetes.md)");
  const namespace = process.env.RTMANAGER_TEST_NAMESPACE || "rtm-e2e";
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const core = kc.makeApiClient(CoreV1Api);
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-e2e-cluster-"));
  const databaseUrl = opts.databaseUrl ?? process.env.DATABASE_URL;
  const app = await createApp(
    loadConfig({
      ...SUITE_ENV,
      RTMANAGER_RUNTIME: "kubernetes",
      RTMANAGER_POD_NAMESPACE: namespace,
      RTMANAGER_INSTANCE_ID: uniqueInstance("e2e"),
      RTMANAGER_DATA_DIR: path.join(root, "data"),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      // A real cluster schedules, pulls and attaches volumes: minutes, not the test cluster's seconds.
      RTMANAGER_PATCH_MIN_HEALTHY: "2s",
      RTMANAGER_PATCH_HEALTH_TIMEOUT: "20s",
      RTMANAGER_POD_START_TIMEOUT: "120s",
      RTMANAGER_OP_TIMEOUT: "180s",
      RTMANAGER_RESYNC_INTERVAL: "5s",
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    }),
    pino({ level: "silent" }),
  );
  const port = await app.start();
  const forget = registerEngineAccess(clusterAccess(kc, core, namespace));
  const claim = (g: string) => `galaxy-game-${g}-state`;
  return {
    name,
    baseUrl: `http://127.0.0.1:${port}`,
    app,
    expect: {
      network: namespace,
      statePath: (g) => `pvc://${namespace}/${claim(g)}`,
      readState: (g, file) => readClaim(core, namespace, suiteImages().v100, claim(g), file),
      selfHealKeepsContainerId: false,
      exitEventData: { restartedBy: "runtime" },
      patchToUnpullable: { code: "container_start_failed", rolledBack: true },
      afterFailedPull: { status: "stopped", containerId: /^pod:[0-9a-f-]+$/ },
      exitOperation: "record_exit",
    },
    close: async () => {
      forget();
      await app.stop().catch(() => undefined);
      await fs.rm(root, { recursive: true, force: true });
    },
  };
}
