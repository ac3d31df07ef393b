/**
 * The loop forgets a game's probe history when it removes the game: over
 * real Docker and PostgreSQL, an engine is started and probed, then its
 * declaration asks for `removed`; once the record says removed, the health
 * tracker holds nothing for it. The periodic resync (which also forgets gone
 * games) is set far out, so this is the removal itself doing it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/controller/manager.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { fastSettings, startController } from "../helpers/controller.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, TEST_IMAGES, uniqueGameId, uniqueInstance, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

let pg: PostgresServer;
let store: SqlStore;
let manager: Manager;
const instance = uniqueInstance("forget");
const network = `rtm-forget-${instance}`;

const sql = (text: string, params: unknown[]) => pg.query(text, params, "forget");

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
  pg = await startPostgres();
  store = await openStore({ databaseUrl: await pg.createDatabase("forget"), dataDir: "" });
  const settings = fastSettings({ instanceId: instance, engineNetwork: network, stateRoot: await tempStateDir(), resyncIntervalMs: 600_000 });
  manager = await startController({ store, settings });
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await store?.close();
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await pg?.stop();
}, 60_000);

describe("health tracker and removed games", () => {
  it("a removed game's probe history is dropped when the loop removes it", async () => {
    const g = uniqueGameId();
    await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, TEST_IMAGES.v100]);
    const running = await waitFor("record running", async () => {
      const r = await store.getRecord(g);
      return r?.status === "running" && r.currentContainerId ? r : undefined;
    }, 30_000);
    const containerId = running.currentContainerId!;
    await waitFor("probed", () => manager.health.get(g, containerId) !== null, 10_000);

    await sql("UPDATE declarations SET desired_state = 'removed' WHERE game_id = $1", [g]);
    await waitFor("record removed", async () => ((await store.getRecord(g))?.status === "removed" ? true : undefined), 30_000);
    // The record write and the tracker's forget happen in one reconcile; the store may show it a moment first.
    await waitFor("probe history dropped", () => manager.health.get(g, containerId) === null, 2_000);
    expect(manager.health.get(g, containerId)).toBeNull();
  }, 90_000);
});
