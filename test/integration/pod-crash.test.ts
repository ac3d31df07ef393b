/**
 * Crash safety of the Pod runtime with real processes: rtmanager
 * (RTMANAGER_RUNTIME=kubernetes, declarations in a real PostgreSQL) is killed
 * with SIGKILL in the middle of a batch of starts, then of a batch of in-place
 * patches, against the test API server and the test kubelet (simulated mode:
 * Pods Running and Ready once bound, no Docker). The next process converges:
 * one Pod per game, every declaration running on its image, every record on
 * its Pod's container, and the operation log shows what was interrupted.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POD_LABELS } from "../../src/runtime/kubernetes/names.js";
import { engineStatus, stripScheme } from "../../src/runtime/kubernetes/observed.js";
import type { V1Pod } from "@kubernetes/client-node";
import { TEST_IMAGES, uniqueInstance, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { spawnController, type ControllerProcess } from "../helpers/process.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { TestCluster } from "../k8s/kubelet/cluster.js";

const NS = "games";
const GAMES = 30;
let pg: PostgresServer;
let server: FakeApiServer;
let cluster: TestCluster;
let dir: string;
const spawned: ControllerProcess[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  server = await FakeApiServer.start();
  cluster = await TestCluster.start(server, { nodes: 3, mode: "simulated" });
  dir = await mkdtemp(path.join(os.tmpdir(), "rtm-pod-crash-"));
}, 120_000);

afterAll(async () => {
  await Promise.all(spawned.map((p) => p.stop()));
  await cluster?.stop();
  await server?.stop();
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 120_000);

const pods = () => server.list("pods", NS) as unknown as V1Pod[];

/** Every game has exactly one Pod, Running and Ready on `image`, and nothing else carries the installation's labels. */
function convergedOn(image: string) {
  return waitFor(
    `${GAMES} Pods ready on ${image}`,
    () => {
      const all = pods();
      const live = all.filter((p) => !p.metadata?.deletionTimestamp);
      const games = new Set(live.map((p) => p.metadata?.labels?.[POD_LABELS.gameId]));
      const ok = all.length === GAMES && games.size === GAMES && live.every((p) => p.spec?.containers[0]?.image === image && engineStatus(p)?.ready);
      return ok ? live : undefined;
    },
    120_000,
    250,
  );
}

describe("Pod runtime crash safety", () => {
  it("kill -9 during a batch of starts, then during a batch of in-place patches: the next process converges, one Pod per game, records on their Pods", async () => {
    const instance = uniqueInstance("podcrash");
    const url = await pg.createDatabase("pod_crash");
    const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => pg.query<T>(text, params, "pod_crash");
    const kubeconfig = path.join(dir, "kubeconfig");
    await writeFile(kubeconfig, fakeKubeConfig(server.url).exportConfig());
    const env = {
      DATABASE_URL: url,
      KUBECONFIG: kubeconfig,
      RTMANAGER_RUNTIME: "kubernetes",
      RTMANAGER_POD_NAMESPACE: NS,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_RESYNC_INTERVAL: "2s",
      RTMANAGER_PATCH_MIN_HEALTHY: "300ms",
      RTMANAGER_PATCH_HEALTH_TIMEOUT: "20s",
      RTMANAGER_LEASE_DURATION: "3s",
      RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
      RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
    };
    const start = (tag: string) => {
      const p = spawnController(env, path.join(dir, `${tag}.log`));
      spawned.push(p);
      return p;
    };

    const first = start("a");
    await waitFor("migrations applied", async () => ((await sql("SELECT 1 FROM declarations LIMIT 1").then(() => true, () => false)) ? true : undefined), 30_000, 100);
    await sql("INSERT INTO declarations (game_id, image_ref) SELECT 'pc-' || i, $1 FROM generate_series(1, $2::int) i", [TEST_IMAGES.v100, GAMES]);
    await waitFor("some Pods", () => (pods().length >= 6 ? true : undefined), 60_000, 10);
    await first.kill9();
    // Mid-batch, or the test proves nothing: work in flight, Pods still missing.
    expect(pods().length).toBeLessThan(GAMES);
    const leftRunning = Number((await sql<{ n: string }>("SELECT count(*) AS n FROM operation_log WHERE outcome = 'running'"))[0]!.n);
    expect(leftRunning).toBeGreaterThan(0);

    const second = start("b");
    await convergedOn(TEST_IMAGES.v100);
    await waitFor("interrupted work marked", async () => {
      const [row] = await sql<{ n: string }>("SELECT count(*) AS n FROM operation_log WHERE outcome = 'interrupted'");
      return Number(row!.n) >= leftRunning ? true : undefined;
    }, 30_000);
    expect(Number((await sql<{ n: string }>("SELECT count(*) AS n FROM declarations"))[0]!.n)).toBe(GAMES);

    // In-place patches, interrupted: the kubelet may already run the new image of some Pods.
    await sql("UPDATE declarations SET image_ref = $1", [TEST_IMAGES.v101]);
    await waitFor("some patched", () => (pods().some((p) => p.spec?.containers[0]?.image === TEST_IMAGES.v101) ? true : undefined), 60_000, 10);
    await second.kill9();
    expect(pods().filter((p) => p.spec?.containers[0]?.image === TEST_IMAGES.v101).length).toBeLessThan(GAMES);
    start("c");
    const final = await convergedOn(TEST_IMAGES.v101);
    const byGame = new Map(final.map((p) => [p.metadata!.labels![POD_LABELS.gameId]!, stripScheme(engineStatus(p)?.containerID)]));
    await waitFor("records on their Pods", async () => {
      const rs = await sql<{ game_id: string; status: string; current_image_ref: string; current_container_id: string }>("SELECT game_id, status, current_image_ref, current_container_id FROM runtime_records");
      const ok = rs.length === GAMES && rs.every((r) => r.status === "running" && r.current_image_ref === TEST_IMAGES.v101 && r.current_container_id === byGame.get(r.game_id));
      return ok ? true : undefined;
    }, 30_000);
    // Kept across the crashes: one claim and one Service per game, never a second.
    expect(server.list("persistentvolumeclaims", NS).length).toBe(GAMES);
    expect(server.list("services", NS).length).toBe(GAMES);
  }, 300_000);
});
