/**
 * PostgreSQL taken away under a leading controller, end to end: a real
 * rtmanager process leading through its PostgreSQL lease with five running
 * engines on real Docker; the test's own PostgreSQL server is stopped for
 * 10 s, then started again on the same port with the same data.
 *
 * While it is gone the engines keep running untouched (same containers, still
 * answering), and the leader steps down (it cannot renew its lease, so it must
 * not act). When it is back the same process leads again and everything
 * converges: records running on the containers they had, one container per
 * game, nothing started twice, the process never exited.
 */
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, TEST_IMAGES, testDocker, uniqueInstance, waitFor } from "../helpers/docker.js";
import { engineGet, enginePort } from "../helpers/engine.js";
import { afterLoopLookedAgain, metricValue } from "../helpers/loop.js";
import { freePort, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { spawnController, type ControllerProcess } from "../helpers/process.js";

const docker = testDocker();
const instance = uniqueInstance("pgout");
const network = `rtm-${instance}`;
const GAMES = [1, 2, 3, 4, 5].map((i) => `${instance}-g${i}`);
const OUTAGE_MS = 10_000;
let pg: PostgresServer;
let proc: ControllerProcess | undefined;
let url = "";
let db = "";

const sql = <T = Record<string, unknown>>(text: string, params: unknown[] = []) => pg.query<T>(text, params, db);


async function start(gameId: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/internal/runtimes/${gameId}/start`, {
    method: "POST",
    headers: { "content-type": "application/json", "X-Galaxy-Caller": "game_master" },
    body: JSON.stringify({ image_ref: TEST_IMAGES.v100 }),
    signal: AbortSignal.timeout(60_000),
  });
  await res.body?.cancel();
  return res.status;
}

/** Each game's containers (every state), by game id. */
async function containersByGame(): Promise<Map<string, { id: string; state: string }[]>> {
  const cs = await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
  const out = new Map<string, { id: string; state: string }[]>();
  for (const c of cs) {
    const g = c.Labels[LABELS.gameId] ?? "?";
    out.set(g, [...(out.get(g) ?? []), { id: c.Id, state: c.State }]);
  }
  return out;
}

const leading = async () => metricValue(url, "rtmanager_leader");

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
  pg = await startPostgres();
  db = "pg_outage";
  const dbUrl = await pg.createDatabase(db);
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  proc = spawnController(
    {
      DATABASE_URL: dbUrl,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_DOCKER_NETWORK: network,
      RTMANAGER_STATE_ROOT: await tempStateDir(),
      RTMANAGER_INTERNAL_HTTP_ADDR: `127.0.0.1:${port}`,
      RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
      RTMANAGER_CONTAINER_STOP_TIMEOUT: "2s",
      RTMANAGER_RESYNC_INTERVAL: "2s",
      RTMANAGER_PROBE_INTERVAL: "500ms",
      RTMANAGER_LEASE_DURATION: "3s",
      RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
      RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
      RTMANAGER_DEFAULT_MEMORY: "64m",
    },
    path.join(os.tmpdir(), `${instance}.log`),
  );
  await waitFor("rtmanager serving", () => fetch(`${url}/healthz`).then((r) => r.ok || undefined, () => undefined), 30_000, 100);
  await waitFor("rtmanager leading", async () => ((await leading()) === 1 ? true : undefined), 30_000, 100);
}, 180_000);

afterAll(async () => {
  await proc?.stop();
  await cleanupInstance(instance).catch(() => undefined);
  await removeTestNetwork(network).catch(() => undefined);
  await pg?.stop();
}, 120_000);

describe("PostgreSQL stopped for 10 s under a leader with five running games", () => {
  it("engines stay up, the leader steps down, and on its return everything converges with no duplicate container", async () => {
    expect(await Promise.all(GAMES.map(start))).toEqual(GAMES.map(() => 200));
    const before = await waitFor("five games running, one container each", async () => {
      const byGame = await containersByGame();
      return GAMES.every((g) => byGame.get(g)?.length === 1 && byGame.get(g)![0]!.state === "running") ? byGame : undefined;
    }, 60_000, 250);
    const idOf = (byGame: Map<string, { id: string }[]>, g: string) => byGame.get(g)![0]!.id;
    const ports = await Promise.all(GAMES.map(async (g) => (await enginePort(idOf(before, g)))!));

    await pg.stopServer();
    const downAt = Date.now();
    // It cannot renew its lease: by its renew deadline (2 s) it must stop acting.
    await waitFor("the leader stepping down", async () => ((await leading()) === 0 ? true : undefined), 15_000, 100);
    // For the whole outage the engines run on, the same containers, answering.
    let looks = 0;
    while (Date.now() - downAt < OUTAGE_MS) {
      const now = await containersByGame();
      for (const g of GAMES) expect(now.get(g), `${g} during the outage`).toEqual([{ id: idOf(before, g), state: "running" }]);
      looks++;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(looks).toBeGreaterThanOrEqual(2);
    for (const p of ports) expect((await engineGet(p, "/healthz")).status).toBe(200);
    expect(await leading()).toBe(0);

    await pg.startServer();
    await waitFor("the same process leading again", async () => ((await leading()) === 1 ? true : undefined), 60_000, 200);
    // Two resync passes after its return: what is checked below is what the loop left, not a moment before it looked.
    await afterLoopLookedAgain(url, 2);

    const after = await containersByGame();
    expect([...after.keys()].sort()).toEqual([...GAMES].sort());
    for (const g of GAMES) expect(after.get(g), `${g} after the outage`).toEqual([{ id: idOf(before, g), state: "running" }]);
    const records = await sql<{ game_id: string; status: string; current_container_id: string; held_generation: number | null }>(
      "SELECT game_id, status, current_container_id, held_generation FROM runtime_records ORDER BY game_id",
    );
    expect(records).toEqual([...GAMES].sort().map((g) => ({ game_id: g, status: "running", current_container_id: idOf(before, g), held_generation: null })));
    // Nothing was restarted or recreated because the database was away.
    const events = await sql<{ game_id: string; type: string }>(
      "SELECT game_id, type FROM runtime_events WHERE type IN ('container_created', 'container_started', 'container_exited', 'container_stopped', 'container_removed', 'container_disappeared')",
    );
    expect(events.filter((e) => e.type !== "container_created" && e.type !== "container_started")).toEqual([]);
    for (const g of GAMES) expect(events.filter((e) => e.game_id === g && e.type === "container_started"), `${g} started once`).toHaveLength(1);
    expect(proc!.child.exitCode).toBeNull();
  }, 240_000);
});
