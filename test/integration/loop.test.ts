/**
 * The controller core end to end: declarations in real PostgreSQL (written
 * with plain SQL, as any writer may), converged onto the real Docker engine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/controller/manager.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { fastSettings, startController } from "../helpers/controller.js";
import {
  cleanupInstance,
  createTestNetwork,
  ensureTestImages,
  removeTestNetwork,
  tempStateDir,
  TEST_IMAGES,
  testDocker,
  uniqueGameId,
  uniqueInstance,
  waitFor,
} from "../helpers/docker.js";
import { LoopLooks } from "../helpers/loop.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { readFile } from "node:fs/promises";
import path from "node:path";

const docker = testDocker();
let pg: PostgresServer;
let store: SqlStore;
let manager: Manager;
const instance = uniqueInstance("loop");
const network = `rtm-loop-${instance}`;
let stateRoot: string;
const looks = new LoopLooks();

async function containersOf(gameId: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`, `${LABELS.gameId}=${gameId}`] } });
}

async function runningContainer(gameId: string, image?: string) {
  return waitFor(`${gameId} running${image ? ` ${image}` : ""}`, async () => {
    const cs = await containersOf(gameId);
    const c = cs.find((x) => x.State === "running" && (!image || x.Labels[LABELS.imageRef] === image));
    return c && cs.length === 1 ? c : undefined;
  }, 30_000);
}

/** Plain SQL, as any writer of the declarations table may use. */
async function sql(text: string, params: unknown[]) {
  return pg.query(text, params, "loop");
}

async function insert(gameId: string, image: string) {
  await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [gameId, image]);
}

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
  stateRoot = await tempStateDir();
  pg = await startPostgres();
  const url = await pg.createDatabase("loop");
  store = await openStore({ databaseUrl: url, dataDir: "" });
  manager = await startController({ store, hooks: looks.hooks, settings: fastSettings({ instanceId: instance, engineNetwork: network, stateRoot }) });
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await store?.close();
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await pg?.stop();
}, 60_000);

describe("controller core over real Docker and PostgreSQL", () => {
  it("converges a plain SQL insert from empty, with labels, network alias, state dir and limits", async () => {
    const g = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    const c = await runningContainer(g, TEST_IMAGES.v100);
    expect(c.Names).toEqual([`/galaxy-game-${g}`]);
    const info = await docker.getContainer(c.Id).inspect();
    expect(info.NetworkSettings.Networks[network]?.Aliases).toContain(`galaxy-game-${g}`);
    expect(info.Config.Env).toContain("GAME_STATE_PATH=/var/lib/galaxy-game");
    expect(info.HostConfig.RestartPolicy?.Name ?? "").toMatch(/^(no|)$/);
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);
    const record = await waitFor("record running", async () => {
      const r = await store.getRecord(g);
      return r?.status === "running" && r.currentContainerId === c.Id ? r : undefined;
    });
    expect(record.engineEndpoint).toBe(`http://galaxy-game-${g}:8080`);
    expect(record.statePath).toBe(path.join(stateRoot, g));
    const boots = await waitFor("boots.log", () => readFile(path.join(stateRoot, g, "boots.log"), "utf8").catch(() => undefined));
    expect(boots).toContain("1.0.0");
    const ops = await store.listOperations(g);
    expect(ops.some((o) => o.kind === "start" && o.outcome === "success" && o.opSource === "sql")).toBe(true);
  }, 60_000);

  it("stops, then restarts with a new container id on restart_token change, endpoint unchanged", async () => {
    const g = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    const first = await runningContainer(g);
    await sql("UPDATE declarations SET restart_token = 'r1' WHERE game_id = $1", [g]);
    const second = await waitFor("new container", async () => {
      const c = (await containersOf(g)).find((x) => x.State === "running" && x.Id !== first.Id);
      return c;
    }, 30_000);
    expect((await containersOf(g)).length).toBe(1);
    expect(second.Names).toEqual(first.Names);

    await sql("UPDATE declarations SET desired_state = 'stopped', stop_reason = 'finished' WHERE game_id = $1", [g]);
    await waitFor("stopped", async () => (await containersOf(g)).find((x) => x.State === "exited"), 30_000);
    const r = await waitFor("record stopped", async () => {
      const rec = await store.getRecord(g);
      return rec?.status === "stopped" ? rec : undefined;
    });
    expect(r.stoppedAt).not.toBeNull();
    const ops = await store.listOperations(g);
    expect(ops.find((o) => o.kind === "stop")?.stopReason).toBe("finished");
  }, 60_000);

  it("a periodic resync skips a converged engine and queues one that is not", async () => {
    const g = uniqueGameId();
    const stopped = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    await insert(stopped, TEST_IMAGES.v100);
    await runningContainer(g);
    await runningContainer(stopped);
    await sql("UPDATE declarations SET desired_state = 'stopped', stop_reason = 'finished' WHERE game_id = $1", [stopped]);
    await waitFor("stopped", async () => (await containersOf(stopped)).find((x) => x.State === "exited"), 30_000);
    // The real lists (declaration generations, Docker's summaries, records) must line up with
    // the record once the loop has written the engine's health: then a pass leaves it alone.
    const pass = await waitFor("a pass that skips the converged game", async () => {
      const r = await manager.resyncNow("periodic");
      return r?.skipped.includes(g) ? r : undefined;
    }, 30_000, 250);
    expect(pass.queued).toContain(stopped);
    expect(pass.skipped).not.toContain(stopped);
    // Something the lists can show (a declaration change nobody was told about) is queued again.
    await store.sql.query("ALTER TABLE declarations DISABLE TRIGGER USER");
    try {
      await sql("UPDATE declarations SET generation = generation + 1 WHERE game_id = $1", [g]);
      expect((await manager.resyncNow("periodic"))?.queued).toContain(g);
    } finally {
      await store.sql.query("ALTER TABLE declarations ENABLE TRIGGER USER");
    }
  }, 60_000);

  it("recreates a running engine when its env changes, on the same image", async () => {
    const g = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    const before = await runningContainer(g, TEST_IMAGES.v100);
    await sql(`UPDATE declarations SET env = '{"GALAXY_MAP": "spiral"}'::jsonb WHERE game_id = $1`, [g]);
    const after = await waitFor("recreated", async () => {
      const c = (await containersOf(g)).find((x) => x.State === "running" && x.Id !== before.Id);
      return c;
    }, 30_000);
    const info = await docker.getContainer(after.Id).inspect();
    expect(info.Config.Env).toContain("GALAXY_MAP=spiral");
    expect((await containersOf(g)).length).toBe(1);
  }, 60_000);

  it("patches within the semver line, and refuses across it with nothing changed", async () => {
    const g = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    const before = await runningContainer(g, TEST_IMAGES.v100);
    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, TEST_IMAGES.v101]);
    const patched = await runningContainer(g, TEST_IMAGES.v101);
    expect(patched.Id).not.toBe(before.Id);

    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, TEST_IMAGES.v110]);
    const rec = await waitFor("semver_patch_only recorded", async () => {
      const r = await store.getRecord(g);
      return r?.lastErrorCode === "semver_patch_only" ? r : undefined;
    });
    expect(rec.currentImageRef).toBe(TEST_IMAGES.v101);
    const after = await containersOf(g);
    expect(after.map((c) => c.Id)).toEqual([patched.Id]);
    expect(after[0]!.State).toBe("running");
  }, 60_000);

  it("brings a docker-killed engine back under on-failure; leaves a clean exit stopped", async () => {
    const g = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    const c = await runningContainer(g);
    await docker.getContainer(c.Id).kill();
    await waitFor("restarted after kill", async () => {
      const r = await store.getRecord(g);
      const cs = await containersOf(g);
      return r && r.restartCount >= 1 && cs[0]?.State === "running" ? true : undefined;
    }, 30_000);
    const events = await store.eventsAfter(0, { gameId: g });
    expect(events.map((e) => e.type)).toContain("container_exited");

    // A clean exit: the engine's TERM trap exits 0.
    await docker.getContainer(c.Id).stop({ t: 2 });
    await waitFor("record stopped after clean exit", async () => {
      const r = await store.getRecord(g);
      return r?.status === "stopped" && r.lastExitCode === 0 ? r : undefined;
    }, 30_000);
    await looks.lookedAgain(2); // the loop looked again, twice: a clean exit stays stopped
    expect((await containersOf(g))[0]?.State).toBe("exited");
    const ops = await store.listOperations(g);
    expect(ops.some((o) => o.kind === "self_heal")).toBe(true);
    expect(ops.some((o) => o.kind === "record_exit")).toBe(true);
  }, 60_000);

  it("removes an orphan of this instance and never touches another instance's container", async () => {
    const g = uniqueGameId();
    await insert(g, TEST_IMAGES.v100);
    const c = await runningContainer(g);
    const foreign = await docker.createContainer({
      Image: TEST_IMAGES.v100,
      name: `galaxy-game-${uniqueGameId("foreign")}`,
      Labels: { [LABELS.managed]: "true", [LABELS.instance]: "someone-else", [LABELS.gameId]: g },
    });
    await foreign.start();
    try {
      await sql("DELETE FROM declarations WHERE game_id = $1", [g]);
      await waitFor("orphan removed", async () => ((await containersOf(g)).length === 0 ? true : undefined), 30_000);
      // The container goes before the operation row is closed: wait for the row.
      const op = await waitFor("orphan_cleanup logged", async () => {
        const row = (await store.listOperations(g)).find((o) => o.kind === "orphan_cleanup");
        return row?.outcome === "success" ? row : undefined;
      });
      expect(op.stopReason).toBe("orphan_cleanup");
      expect((await foreign.inspect()).State.Running).toBe(true);
      expect(c.Id).toBeTruthy();
    } finally {
      await foreign.remove({ force: true });
    }
  }, 60_000);

  it("records image_pull_failed for an image that is not present and cannot be pulled", async () => {
    const g = uniqueGameId();
    await insert(g, "galaxy/not-here:1.0.0");
    const r = await waitFor("pull failure recorded", async () => {
      const rec = await store.getRecord(g);
      return rec?.lastErrorCode === "image_pull_failed" ? rec : undefined;
    }, 30_000);
    expect(r.lastErrorMessage).toContain("galaxy/not-here:1.0.0");
    expect(await containersOf(g)).toHaveLength(0);
  }, 60_000);

});
