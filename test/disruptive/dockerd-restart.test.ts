/**
 * Restarts the real dockerd under a running controller. Run alone (npm test
 * runs this folder after the main suite): every container on the engine stops.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/controller/manager.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { fastSettings, startController } from "../helpers/controller.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, TEST_IMAGES, testDocker, uniqueInstance, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const docker = testDocker();
let pg: PostgresServer;
let store: SqlStore;
let manager: Manager;
const instance = uniqueInstance("dockerd");
const network = `rtm-${instance}`;

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
  pg = await startPostgres();
  store = await openStore({ databaseUrl: await pg.createDatabase("dockerd"), dataDir: "" });
  manager = await startController({ store, settings: fastSettings({ instanceId: instance, dockerNetwork: network, stateRoot: await tempStateDir() }) });
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await store?.close();
  await cleanupInstance(instance).catch(() => {});
  await removeTestNetwork(network).catch(() => {});
  await pg?.stop();
}, 60_000);

async function converged(n: number) {
  return waitFor(`${n} running, one container each`, async () => {
    const cs = await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
    return cs.length === n && cs.every((c) => c.State === "running") && new Set(cs.map((c) => c.Labels[LABELS.gameId])).size === n ? cs : undefined;
  }, 90_000, 250);
}

describe("dockerd restarted under a running controller", () => {
  it("reconverges everything, duplicates nothing", async () => {
    await pg.query(
      "INSERT INTO declarations (game_id, image_ref, restart_policy) SELECT $2 || '-' || i, $1, 'always' FROM generate_series(1, 6) i",
      [TEST_IMAGES.v100, instance],
      "dockerd",
    );
    const before = await converged(6);

    await run("pkill", ["-TERM", "-x", "dockerd"]);
    // Gone means the process has exited, not only that the API stopped answering.
    await waitFor("dockerd exited", async () => {
      try {
        await run("pgrep", ["-x", "dockerd"]);
        return undefined;
      } catch {
        return true;
      }
    }, 60_000, 200);
    await run("bash", [path.join(repoRoot, "scripts/ensure-docker.sh")], { timeout: 120_000 });

    const after = await converged(6);
    expect(after.map((c) => c.Labels[LABELS.gameId]).sort()).toEqual(before.map((c) => c.Labels[LABELS.gameId]).sort());
    const records = await store.listRecords();
    await waitFor("records running", async () => {
      const rs = await store.listRecords();
      return rs.length === 6 && rs.every((r) => r.status === "running") ? true : undefined;
    }, 30_000);
    expect(records.length).toBe(6);
    const events = await store.eventsAfter(0);
    expect(events.some((e) => e.type === "container_exited")).toBe(true);
  }, 240_000);
});
