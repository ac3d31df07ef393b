/**
 * Pod patch downtime for bench/pods.ts, on the test kubelet in Docker mode
 * (real engine containers) or over containerd's CRI (BENCH_POD_KUBELET=cri:
 * containerd's image store, engines at their pod IP): galaxy/test-engine 1.0.0 -> 1.0.1 through
 * rtmanager (POST .../patch: the Pod's image is changed in place, the kubelet
 * restarts the container) against a bare client deleting the Pod and
 * creating it again with the new image. Downtime: the time GET /healthz does
 * not answer, polled every 10 ms (200 ms timeout) at the port the test
 * kubelet publishes on 127.0.0.1 (its annotation changes with every new
 * container, so each poll reads the Pod first).
 */
import { writeFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import pg from "pg";
import { claimManifest, podManifest, type PodManifestSettings } from "../src/runtime/kubernetes/manifests.js";
import type { Placement } from "../src/kube/placement.js";
import { TEST_IMAGES, testDocker, uniqueInstance, waitFor } from "../test/helpers/docker.js";
import type { PostgresServer } from "../test/helpers/postgres.js";
import { FakeApiServer, type Obj } from "../test/k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../test/k8s/kubeconfig.js";
import { TestCluster } from "../test/k8s/kubelet/cluster.js";
import { benchEngineSpec, emit, fmtMs, httpRequest, loadAverage, median, onCleanup, say, sleep, startController, tmpLog } from "./lib.js";

const POLL_MS = 10;
const PROBE_TIMEOUT_MS = 200;
const NS = "games";

function probe(at: { host: string; port: number } | undefined): Promise<boolean> {
  if (at === undefined) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = http.get({ host: at.host, port: at.port, path: "/healthz", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
      res.on("error", () => resolve(false));
    });
    req.setTimeout(PROBE_TIMEOUT_MS, () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/** Probes the engine of Pod `name` every 10 ms; `outage()` is the total time not answering after `from`. */
class PodPoller {
  private readonly samples: { t: number; ok: boolean }[] = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    private readonly server: FakeApiServer,
    private readonly ns: string,
    private readonly name: string,
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const t = Date.now();
      const pod = this.server.get("pods", this.ns, this.name);
      this.samples.push({ t, ok: await probe(pod && !pod.metadata.deletionTimestamp ? TestCluster.address(pod) : undefined) });
      const wait = t + POLL_MS - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  outage(from: number): { ms: number; resolved: boolean } {
    let ms = 0;
    let downSince: number | null = null;
    for (const s of this.samples) {
      if (s.t < from) continue;
      if (!s.ok && downSince === null) downSince = s.t;
      if (s.ok && downSince !== null) {
        ms += s.t - downSince;
        downSince = null;
      }
    }
    return { ms, resolved: downSince === null };
  }
}

/** The image id of the ready container: its `image` is whatever tag the runtime names it by (containerd's first repo tag), its imageID is the image. */
const imageIdOf = (pod: Obj | undefined) =>
  ((pod?.status ?? {}) as { containerStatuses?: { imageID: string; ready: boolean }[] }).containerStatuses?.find((c) => c.ready)?.imageID;

async function readyOn(server: FakeApiServer, ns: string, name: string, image: string): Promise<void> {
  const id = (await testDocker().getImage(image).inspect()).Id;
  // The Docker-backed kubelet reports the local image id; containerd (BENCH_POD_KUBELET=cri) the same id as `sha256:…`
  // (a locally imported image has no repo digest).
  await waitFor(`${ns}/${name} ready on ${image}`, () => imageIdOf(server.get("pods", ns, name))?.endsWith(id.replace(/^sha256:/, "")) === true && !server.get("pods", ns, name)?.metadata.deletionTimestamp, 60_000, 20);
}

const SETTINGS: PodManifestSettings = {
  instance: "bench-bare",
  imagePullPolicy: "if_not_present",
  terminationGraceSeconds: 10,
  template: {},
  readiness: { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 },
};


/** One in-place patch through rtmanager: its downtime. */
async function rtmPatch(server: FakeApiServer, port: number, sql: pg.Client, gameId: string): Promise<number> {
  await sql.query("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [gameId, TEST_IMAGES.v100]);
  await readyOn(server, NS, `galaxy-game-${gameId}`, TEST_IMAGES.v100);
  const poller = new PodPoller(server, NS, `galaxy-game-${gameId}`);
  try {
    await sleep(500);
    const t0 = Date.now();
    const answer = await httpRequest(port, "POST", `/api/v1/internal/runtimes/${encodeURIComponent(gameId)}/patch`, { image_ref: TEST_IMAGES.v101 });
    if (answer.status !== 200) throw new Error(`patch of ${gameId}: ${answer.status} ${answer.body}`);
    await readyOn(server, NS, `galaxy-game-${gameId}`, TEST_IMAGES.v101);
    await sleep(500);
    const o = poller.outage(t0);
    if (!o.resolved) throw new Error(`${gameId}: engine not answering at the end`);
    return o.ms;
  } finally {
    await poller.stop();
  }
}

/** The baseline: delete the Pod, wait until it is gone, create it with the new image. */
async function barePatch(server: FakeApiServer, core: CoreV1Api, gameId: string): Promise<number> {
  const placement: Placement = { namespace: "bare", owner: null };
  const name = `galaxy-game-${gameId}`;
  await core.createNamespacedPersistentVolumeClaim({ namespace: "bare", body: claimManifest(gameId, placement, SETTINGS.instance, { storageClass: "", size: "1Gi" }) });
  await core.createNamespacedPod({ namespace: "bare", body: podManifest(benchEngineSpec(gameId, TEST_IMAGES.v100), placement, SETTINGS) });
  await readyOn(server, "bare", name, TEST_IMAGES.v100);
  const poller = new PodPoller(server, "bare", name);
  try {
    await sleep(500);
    const t0 = Date.now();
    await core.deleteNamespacedPod({ namespace: "bare", name });
    await waitFor(`${name} gone`, () => !server.get("pods", "bare", name), 60_000, 10);
    await core.createNamespacedPod({ namespace: "bare", body: podManifest(benchEngineSpec(gameId, TEST_IMAGES.v101), placement, SETTINGS) });
    await readyOn(server, "bare", name, TEST_IMAGES.v101);
    await sleep(500);
    const o = poller.outage(t0);
    if (!o.resolved) throw new Error(`${gameId}: engine not answering at the end`);
    return o.ms;
  } finally {
    await poller.stop();
  }
}

export async function podPatchRows(pgServer: PostgresServer, kubeconfigDir: string, reps: number, mode: "cri" | "docker" = "docker"): Promise<void> {
  const server = await FakeApiServer.start();
  const cluster = await TestCluster.start(server, { nodes: 1, mode, backoffBaseMs: 300, backoffCapMs: 2000 });
  const stopCluster = async () => {
    await cluster.stop();
    await server.stop();
  };
  const unregister = onCleanup("patch test cluster", stopCluster);
  const kubeconfig = path.join(kubeconfigDir, "kubeconfig-patch");
  await writeFile(kubeconfig, fakeKubeConfig(server.url).exportConfig());
  const instance = uniqueInstance("bench-podpatch");
  const url = await pgServer.createDatabase(`bench_podpatch_${process.pid}`);
  const controller = await startController(
    "tsx",
    {
      DATABASE_URL: url,
      KUBECONFIG: kubeconfig,
      RTMANAGER_RUNTIME: "kubernetes",
      RTMANAGER_POD_NAMESPACE: NS,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_CONTAINER_STOP_TIMEOUT: "10s",
      RTMANAGER_PROBE_INTERVAL: "1s",
      RTMANAGER_PROBE_TIMEOUT: "1s",
      RTMANAGER_DEFAULT_MEMORY: "64m",
      RTMANAGER_DEFAULT_CPUS: "0.5",
    },
    tmpLog(instance),
  );
  const sql = new pg.Client({ connectionString: url });
  // A PostgreSQL stopped under it on an abort must not crash the cleanup.
  sql.on("error", (err) => say(`sql client: ${err.message}`));
  await sql.connect();
  const core = fakeKubeConfig(server.url).makeApiClient(CoreV1Api);
  const rtm: number[] = [];
  const bare: number[] = [];
  /** Refused patches: reported in the row, not retried, so a flaky gate shows. */
  const failures: string[] = [];
  try {
    for (let rep = 1; rep <= reps; rep++) {
      for (const which of rep % 2 === 1 ? ["rtm", "bare"] : ["bare", "rtm"]) {
        if (which === "rtm") {
          try {
            rtm.push(await rtmPatch(server, controller.port, sql, `pp${rep}`));
          } catch (err) {
            failures.push((err as Error).message);
            say(`patch rep ${rep}: rtmanager's patch failed: ${(err as Error).message}`);
          }
        } else bare.push(await barePatch(server, core, `bp${rep}`));
      }
      say(`patch rep ${rep}: in place ${fmtMs(rtm.at(-1) ?? NaN)}, delete-and-recreate ${fmtMs(bare.at(-1)!)}; load ${loadAverage()}`);
    }
  } finally {
    await sql.end();
    await controller.stop();
    unregister();
    await stopCluster();
  }
  const r = median(rtm);
  const b = median(bare);
  emit({
    bench: "pods",
    metric: `patch 1.0.0 -> 1.0.1 downtime (/healthz not answering), median of ${rtm.length} in place, ${bare.length} recreated`,
    rtmanager: `${fmtMs(r)} in place (Pod image changed, kubelet restarts the container)`,
    baseline: `${fmtMs(b)} bare client-node delete Pod, wait until gone, create with the new image`,
    ratio: r / b,
    goal: "-",
    met: null,
    note: `test API server + test kubelet ${mode === "cri" ? "on containerd's CRI (containerd's image store, engines polled at their pod IP)" : "in Docker mode (real engine containers, polled at the kubelet's published port)"}, readiness period 1 s on both sides, polled every ${POLL_MS} ms; tsx controller; load ${loadAverage()} (a CI run shared the 2 cores)${failures.length ? `; ${failures.length} of ${reps} in-place patches were refused: ${failures.join(" | ")}` : ""}`,
    data: { rtmMs: rtm, bareMs: bare, failures },
  });
}
