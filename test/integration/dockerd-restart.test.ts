/**
 * The engine restarted under a running controller. The engine is a dockerd
 * this file starts for itself (test/helpers/ownDockerd.ts: own socket, data
 * and exec roots, containerd, pid file and address pool) and restarts by its
 * pid; the machine's dockerd and whatever runs on it are never touched, so
 * this file runs in the main suite beside the others.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/controller/manager.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { fastSettings, startController } from "../helpers/controller.js";
import { ensureTestImages, tempStateDir, TEST_IMAGES, uniqueInstance, waitFor } from "../helpers/docker.js";
import { OWN_SUBNET, ownDockerdUnavailable, startOwnDockerd, type OwnDockerd } from "../helpers/ownDockerd.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const unavailable = ownDockerdUnavailable();
/** The machine's default bridge: a second dockerd must leave it alone (with --bridge=none dockerd deletes it). */
const hostBridge = "/sys/class/net/docker0";
const hostBridgeBefore = existsSync(hostBridge);
let engine: OwnDockerd;
let pg: PostgresServer;
let store: SqlStore;
let manager: Manager;
const instance = uniqueInstance("dockerd");
const network = `rtm-${instance}`;

beforeAll(async () => {
  if (unavailable) return;
  await ensureTestImages();
  engine = await startOwnDockerd();
  await engine.loadImages([TEST_IMAGES.v100]);
  // An explicit subnet: the own engine has no address pool of its own (see ownDockerd.ts).
  await engine.docker().createNetwork({ Name: network, Driver: "bridge", IPAM: { Config: [{ Subnet: OWN_SUBNET }] }, Labels: { "com.galaxy.test": "true" } });
  pg = await startPostgres();
  store = await openStore({ databaseUrl: await pg.createDatabase("dockerd"), dataDir: "" });
  manager = await startController({
    store,
    docker: engine.docker(),
    settings: fastSettings({ instanceId: instance, engineNetwork: network, stateRoot: await tempStateDir() }),
  });
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await store?.close();
  // Its containers, network and bridge go with it: nothing of this file is left on the machine.
  await engine?.destroy();
  await pg?.stop();
}, 120_000);

async function converged(n: number) {
  return waitFor(`${n} running, one container each`, async () => {
    const cs = await engine.docker().listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
    return cs.length === n && cs.every((c) => c.State === "running") && new Set(cs.map((c) => c.Labels[LABELS.gameId])).size === n ? cs : undefined;
  }, 90_000, 250);
}

describe.skipIf(unavailable !== null)(`dockerd restarted under a running controller${unavailable ? ` (skipped: ${unavailable})` : ""}`, () => {
  it("reconverges everything, duplicates nothing", async () => {
    await pg.query(
      "INSERT INTO declarations (game_id, image_ref, restart_policy) SELECT $2 || '-' || i, $1, 'always' FROM generate_series(1, 6) i",
      [TEST_IMAGES.v100, instance],
      "dockerd",
    );
    const before = await converged(6);

    const pid = engine.pid();
    // Resolves once that process has exited, not only once its API stopped answering.
    await engine.stop();
    expect(engine.pid()).toBeNull();
    await engine.start();
    expect(engine.pid()).not.toBe(pid);

    const after = await converged(6);
    expect(after.map((c) => c.Labels[LABELS.gameId]).sort()).toEqual(before.map((c) => c.Labels[LABELS.gameId]).sort());
    await waitFor("records running", async () => {
      const rs = await store.listRecords();
      return rs.length === 6 && rs.every((r) => r.status === "running") ? true : undefined;
    }, 30_000);
    const events = await store.eventsAfter(0);
    expect(events.some((e) => e.type === "container_exited")).toBe(true);
    // Its own engine came and went twice; the machine's is as it was.
    expect(existsSync(hostBridge)).toBe(hostBridgeBefore);
  }, 240_000);
});
