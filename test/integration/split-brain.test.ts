/**
 * Split brain with real processes: two controllers on one PostgreSQL, the
 * leader frozen (SIGSTOP) inside the health gates of two healthy patches for
 * longer than its lease. The standby takes over, resumes and finishes the
 * gates, and one of the games is stopped through the standby's REST API.
 * When the former leader is woken (SIGCONT) it must not act or record: no
 * rollback, nothing degraded or held, no container started again, no stale
 * record or operation-log row, and its own pending patch calls answer 200
 * or 503, never a 500 verdict it does not know.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, TEST_IMAGES, testDocker, uniqueInstance, waitFor } from "../helpers/docker.js";
import { freePort, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { afterLoopLookedAgain, metricValue } from "../helpers/loop.js";
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
  for (const p of spawned) if (p.child.exitCode === null) p.child.kill("SIGCONT");
  await Promise.all(spawned.map((p) => p.stop()));
  for (const i of instances) await cleanupInstance(i);
  for (const n of networks) await removeTestNetwork(n);
  await pg?.stop();
}, 120_000);


interface Replica {
  proc: ControllerProcess;
  url: string;
}

async function rest(replica: Replica, method: string, route: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${replica.url}${route}`, {
    method,
    headers: { "content-type": "application/json", "X-Galaxy-Caller": "game_master" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("split brain", () => {
  it("a leader frozen inside two health gates past its lease: the standby finishes them and stops one game; the woken former leader changes nothing", async () => {
    const instance = uniqueInstance("split");
    const network = `rtm-${instance}`;
    instances.push(instance);
    networks.push(network);
    await createTestNetwork(network);
    const db = "split_brain";
    const dbUrl = await pg.createDatabase(db);
    const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => pg.query<T>(text, params, db);
    const env = {
      DATABASE_URL: dbUrl,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_DOCKER_NETWORK: network,
      RTMANAGER_STATE_ROOT: await tempStateDir(),
      RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
      RTMANAGER_CONTAINER_STOP_TIMEOUT: "2s",
      RTMANAGER_RESYNC_INTERVAL: "2s",
      RTMANAGER_PATCH_MIN_HEALTHY: "6s",
      RTMANAGER_PATCH_HEALTH_TIMEOUT: "60s",
      RTMANAGER_LEASE_DURATION: "3s",
      RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
      RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
      RTMANAGER_DEFAULT_MEMORY: "64m",
    };
    const start = async (tag: string): Promise<Replica> => {
      const port = await freePort();
      const proc = spawnController({ ...env, RTMANAGER_INTERNAL_HTTP_ADDR: `127.0.0.1:${port}` }, path.join(os.tmpdir(), `${instance}-${tag}.log`));
      spawned.push(proc);
      const replica = { proc, url: `http://127.0.0.1:${port}` };
      await waitFor(`replica ${tag} serving`, () => fetch(`${replica.url}/healthz`).then((r) => r.ok || undefined, () => undefined), 30_000, 100);
      return replica;
    };
    const holderPid = async () => {
      const rows = await sql<{ holder: string }>("SELECT holder FROM leases WHERE expires_at > now()").catch(() => []);
      return rows[0] ? Number(rows[0].holder.split("-").at(-2)) : undefined;
    };
    const containersOf = (gameId: string) => docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`, `${LABELS.gameId}=${gameId}`] } });
    const record = async (gameId: string) => (await sql<Record<string, unknown>>("SELECT * FROM runtime_records WHERE game_id = $1", [gameId]))[0];

    const a = await start("a");
    const b = await start("b");
    const leaderPid = await waitFor("a leader", holderPid, 30_000);
    const [leader, standby] = leaderPid === a.proc.pid ? [a, b] : [b, a];

    const games = ["sb-patched", "sb-stopped"];
    for (const g of games) expect((await rest(leader, "POST", `/api/v1/internal/runtimes/${g}/start`, { image_ref: TEST_IMAGES.v100 })).status).toBe(200);

    // Both patches go to the leader; its answers are awaited only after it is woken.
    const patches = games.map((g) => rest(leader, "POST", `/api/v1/internal/runtimes/${g}/patch`, { image_ref: TEST_IMAGES.v101 }));
    for (const g of games) await waitFor(`${g}'s health gate open`, async () => ((await record(g))?.rollout_started_at ? true : undefined), 30_000, 50);
    await new Promise((r) => setTimeout(r, 1_500));
    leader.proc.child.kill("SIGSTOP");
    const frozenAt = Date.now();

    await waitFor("the standby holding the lease", async () => ((await holderPid()) === standby.proc.pid ? true : undefined), 20_000, 100);
    // Stopped through the standby (now the leader): the stop is acted on at once; the open gate it supersedes gets no verdict.
    const stopped = await rest(standby, "POST", `/api/v1/internal/runtimes/sb-stopped/stop`, { reason: "admin_request" });
    expect(stopped.status).toBe(200);
    await waitFor("the standby finishing the other patch", async () => {
      const r = await record("sb-patched");
      return r && r.current_image_ref === TEST_IMAGES.v101 && r.rollout_started_at === null ? true : undefined;
    }, 60_000, 100);
    expect(Date.now() - frozenAt).toBeGreaterThan(3_000);

    const opsBefore = await sql<{ id: string; outcome: string }>("SELECT id, outcome FROM operation_log ORDER BY id");
    const patchedBefore = await record("sb-patched");
    const stoppedBefore = await record("sb-stopped");
    leader.proc.child.kill("SIGCONT");

    // The former leader's pending patch calls: the new leader's record, or 503; never its own false verdict.
    for (const answer of await Promise.all(patches)) {
      expect([200, 503], JSON.stringify(answer.body)).toContain(answer.status);
    }
    // The woken replica has looked at its lease (stepped down: rtmanager_leader 0) and the leader
    // has looked at the fleet twice since: whatever the former leader would do, it has done.
    await waitFor("the woken replica stepping down", async () => ((await metricValue(leader.url, "rtmanager_leader")) === 0 ? true : undefined), 30_000, 100);
    await afterLoopLookedAgain(standby.url, 2);

    const patched = await record("sb-patched");
    expect(patched).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101, degraded: false, held_generation: null, last_error_code: null });
    expect(patched!.observed_generation).toEqual(patchedBefore!.observed_generation);
    const stoppedRecord = await record("sb-stopped");
    expect(stoppedRecord).toMatchObject({ status: "stopped", degraded: false, held_generation: null });
    expect(stoppedRecord!.observed_generation).toEqual(stoppedBefore!.observed_generation);

    // Docker: one container per game; the patched one runs 1.0.1, the stopped one was not started again.
    const pc = await containersOf("sb-patched");
    expect(pc.map((c) => [c.State, c.Labels[LABELS.imageRef]])).toEqual([["running", TEST_IMAGES.v101]]);
    const sc = await containersOf("sb-stopped");
    expect(sc.length).toBeLessThanOrEqual(1);
    expect(sc.every((c) => c.State !== "running")).toBe(true);

    // Nothing of the former leader's term landed after the freeze: no rollback, its rows stay as the standby left them.
    const ops = await sql<{ id: string; outcome: string; kind: string }>("SELECT id, outcome, kind FROM operation_log ORDER BY id");
    expect(ops.filter((o) => o.kind === "rollback")).toEqual([]);
    for (const before of opsBefore) expect(ops.find((o) => o.id === before.id)?.outcome).toBe(before.outcome);
    const badEvents = await sql("SELECT type FROM runtime_events WHERE type IN ('patch_rolled_back', 'rollback_failed')");
    expect(badEvents).toEqual([]);

    const leaderLog = await readFile(leader.proc.logFile, "utf8");
    expect(leaderLog).toMatch(/"why":"this replica lost leadership[^"]*","msg":"reconcile aborted; nothing more is written"|fenced write refused/);
    expect(leaderLog).not.toMatch(/rolling back/);
  }, 240_000);
});
