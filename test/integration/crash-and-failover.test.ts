/**
 * Crash safety and leader failover with real processes: rtmanager is killed
 * with SIGKILL mid-batch, and the next start (or the standby) converges with
 * no duplicate container, no lost declaration, and an operation log that
 * shows what was interrupted.
 */
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, TEST_IMAGES, testDocker, uniqueInstance, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { spawnController, type ControllerProcess } from "../helpers/process.js";

const docker = testDocker();
let pg: PostgresServer;
const spawned: ControllerProcess[] = [];
const instances: string[] = [];
const networks: string[] = [];

beforeAll(async () => {
  await ensureTestImages();
  pg = await startPostgres();
}, 180_000);

afterAll(async () => {
  await Promise.all(spawned.map((p) => p.stop()));
  for (const i of instances) await cleanupInstance(i);
  for (const n of networks) await removeTestNetwork(n);
  await pg?.stop();
}, 120_000);

async function setup(name: string) {
  const instance = uniqueInstance(name);
  const network = `rtm-${instance}`;
  instances.push(instance);
  networks.push(network);
  await createTestNetwork(network);
  const db = name.replace(/-/g, "_");
  const url = await pg.createDatabase(db);
  const env = {
    DATABASE_URL: url,
    RTMANAGER_INSTANCE_ID: instance,
    RTMANAGER_DOCKER_NETWORK: network,
    RTMANAGER_STATE_ROOT: await tempStateDir(),
    RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
    RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
    RTMANAGER_CONTAINER_STOP_TIMEOUT: "2s",
    RTMANAGER_RESYNC_INTERVAL: "2s",
    RTMANAGER_PATCH_MIN_HEALTHY: "500ms",
    RTMANAGER_PATCH_HEALTH_TIMEOUT: "20s",
    RTMANAGER_LEASE_DURATION: "3s",
    RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
    RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
    RTMANAGER_DEFAULT_MEMORY: "64m",
  };
  const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => pg.query<T>(text, params, db);
  const containers = () => docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
  const log = (tag: string) => path.join(os.tmpdir(), `${instance}-${tag}.log`);
  const start = (tag: string) => {
    const p = spawnController(env, log(tag));
    spawned.push(p);
    return p;
  };
  /** Migrations applied and a leader elected: the process is ready for work. */
  const leaderReady = () =>
    waitFor("a leader", async () => {
      const rows = await sql<{ holder: string; expires_at: Date }>("SELECT holder, expires_at FROM leases WHERE expires_at > now()").catch(() => []);
      return rows[0] ? Number(rows[0].holder.split("-").at(-2)) : undefined;
    }, 30_000);
  return { instance, sql, containers, start, leaderReady };
}

/** Every game has exactly one container, running `image`. */
async function convergedOn(containers: () => Promise<Awaited<ReturnType<typeof docker.listContainers>>>, games: number, image: string) {
  return waitFor(
    `${games} games running ${image}`,
    async () => {
      const cs = await containers();
      const byGame = new Map<string, number>();
      for (const c of cs) byGame.set(c.Labels[LABELS.gameId]!, (byGame.get(c.Labels[LABELS.gameId]!) ?? 0) + 1);
      const ok = cs.length === games && byGame.size === games && cs.every((c) => c.State === "running" && c.Labels[LABELS.imageRef] === image);
      return ok ? cs : undefined;
    },
    120_000,
    250,
  );
}

describe("crash safety", () => {
  it("kill -9 during a batch of 30 starts, then during a batch of 30 patches: the next start converges, nothing duplicated", async () => {
    const { sql, containers, start, leaderReady } = await setup("crash");
    const first = start("a");
    await leaderReady();
    await sql("INSERT INTO declarations (game_id, image_ref) SELECT 'crash-' || i, $1 FROM generate_series(1, 30) i", [TEST_IMAGES.v100]);
    await waitFor("some containers", async () => ((await containers()).length >= 6 ? true : undefined), 60_000, 20);
    await first.kill9();
    const leftRunning = await sql<{ n: string }>("SELECT count(*) AS n FROM operation_log WHERE outcome = 'running'");
    // Killed mid-batch: work was in flight, and the log shows it.
    expect(Number(leftRunning[0]!.n)).toBeGreaterThan(0);

    const second = start("b");
    await convergedOn(containers, 30, TEST_IMAGES.v100);
    const interrupted = await sql<{ n: string }>("SELECT count(*) AS n FROM operation_log WHERE outcome = 'interrupted'");
    expect(Number(interrupted[0]!.n)).toBe(Number(leftRunning[0]!.n));
    expect((await sql<{ n: string }>("SELECT count(*) AS n FROM declarations"))[0]!.n).toBe("30");

    // Now interrupt a batch of patches.
    await sql("UPDATE declarations SET image_ref = $1", [TEST_IMAGES.v101]);
    await waitFor("some patched", async () => ((await containers()).some((c) => c.Labels[LABELS.imageRef] === TEST_IMAGES.v101) ? true : undefined), 60_000, 20);
    await second.kill9();
    start("c");
    await convergedOn(containers, 30, TEST_IMAGES.v101);
    const records = await sql<{ status: string; current_image_ref: string }>("SELECT status, current_image_ref FROM runtime_records");
    await waitFor("records caught up", async () => {
      const rs = await sql<{ status: string; current_image_ref: string }>("SELECT status, current_image_ref FROM runtime_records");
      return rs.length === 30 && rs.every((r) => r.status === "running" && r.current_image_ref === TEST_IMAGES.v101) ? true : undefined;
    }, 30_000);
    expect(records.length).toBe(30);
  }, 300_000);
});

describe("leader failover", () => {
  it("two controllers, the leader killed mid-batch: the standby takes over and converges; no game acted on by both at once", async () => {
    const { sql, containers, start, leaderReady } = await setup("ha");
    const a = start("a");
    const b = start("b");
    const leaderPid = await leaderReady();
    const [leader, standby] = leaderPid === a.pid ? [a, b] : [b, a];
    expect([a.pid, b.pid]).toContain(leaderPid);

    await sql("INSERT INTO declarations (game_id, image_ref) SELECT 'ha-' || i, $1 FROM generate_series(1, 30) i", [TEST_IMAGES.v100]);
    await waitFor("some containers", async () => ((await containers()).length >= 5 ? true : undefined), 60_000, 20);
    await leader.kill9();
    await convergedOn(containers, 30, TEST_IMAGES.v100);
    const holder = (await sql<{ holder: string }>("SELECT holder FROM leases"))[0]!.holder;
    expect(Number(holder.split("-").at(-2))).toBe(standby.pid);

    // Per game, each operation finished (or was marked interrupted) before the next began.
    const ops = await sql<{ game_id: string; started_at: Date; finished_at: Date | null }>(
      "SELECT game_id, started_at, finished_at FROM operation_log ORDER BY game_id, started_at, id",
    );
    for (let i = 1; i < ops.length; i++) {
      const prev = ops[i - 1]!;
      const cur = ops[i]!;
      if (prev.game_id !== cur.game_id) continue;
      expect(prev.finished_at, `${cur.game_id}: an operation never finished`).not.toBeNull();
      expect(cur.started_at.getTime(), `${cur.game_id}: overlapping operations`).toBeGreaterThanOrEqual(prev.finished_at!.getTime());
    }
  }, 300_000);
});
