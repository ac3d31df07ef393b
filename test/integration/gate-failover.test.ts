/**
 * Issue 18: lost leadership while health gates wait in the queue. One worker,
 * three patches to an engine that never gets healthy, all three gates open;
 * then the leader loses its lease. It writes no verdict (no rollback, nothing
 * held or degraded), even once the gates' deadline has passed; the next
 * leader resumes the gates from their records and gives the verdicts.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Manager, type ManagerSettings } from "../../src/controller/manager.js";
import { withContractErrors } from "../../src/controller/runtimeErrors.js";
import { createLogger } from "../../src/log.js";
import type { Lease } from "../../src/model/ports.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";
import { HttpProber } from "../../src/runtime/httpProber.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { fastSettings, TEST_PUBLISH_HOST } from "../helpers/controller.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, tempStateDir, TEST_IMAGES, uniqueGameId, uniqueInstance, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const instance = uniqueInstance("gatefail");
const network = `rtm-${instance}`;
const leaseName = `rtmanager/${instance}`;
let pg: PostgresServer;
let store: SqlStore;
let settings: ManagerSettings;
const managers: Manager[] = [];

/** The store's lease, which the test can cut off: every renewal is then refused, as for a replica partitioned from it. */
function cuttableLease(): Lease & { cut(): void } {
  const inner = store.lease(leaseName);
  let cut = false;
  return {
    tryAcquire: (holder, durationMs, signal) => (cut ? Promise.resolve(false) : inner.tryAcquire(holder, durationMs, signal)),
    release: (holder, signal) => (cut ? Promise.resolve() : inner.release(holder, signal)),
    cut: () => void (cut = true),
  };
}

async function startReplica(identity: string, lease: Lease): Promise<Manager> {
  const manager = new Manager({
    source: store,
    state: store,
    runtime: withContractErrors(new DockerRuntime({ instance, network, publishHost: TEST_PUBLISH_HOST })),
    prober: new HttpProber(),
    lease,
    fencing: store.fencing(leaseName),
    identity,
    settings,
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? "silent", identity),
  });
  managers.push(manager);
  await manager.start();
  return manager;
}

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
  pg = await startPostgres();
  store = await openStore({ databaseUrl: await pg.createDatabase("gatefail"), dataDir: "" });
  settings = fastSettings({
    instanceId: instance,
    engineNetwork: network,
    stateRoot: await tempStateDir(),
    concurrency: 1,
    patchMinHealthyMs: 1000,
    // Long enough that no gate reaches its deadline before the lease is cut, even with slow Docker calls.
    patchHealthTimeoutMs: 25_000,
  });
}, 180_000);

afterAll(async () => {
  for (const m of managers) await m.stop().catch(() => undefined);
  await store?.close();
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await pg?.stop();
}, 60_000);

describe("lost leadership while health gates wait in the queue", () => {
  it("the former leader writes no verdict, even past the gates' deadline; the next leader resumes the gates and gives it", async () => {
    const leaseA = cuttableLease();
    const a = await startReplica("replica-a", leaseA);
    await waitFor("replica a leading", async () => (a.isLeader ? true : undefined), 20_000, 50);

    const games = Array.from({ length: 3 }, () => uniqueGameId());
    for (const g of games) await store.mutate(g, () => ({ gameId: g, imageRef: TEST_IMAGES.v100, desiredState: "running", restartPolicy: "on-failure" }), { opId: randomUUID(), opSource: "sql" });
    for (const g of games) await waitFor(`${g} running`, async () => ((await store.getRecord(g))?.status === "running" ? true : undefined), 40_000, 50);

    // Patched to an engine that never answers /healthz: each gate would end in a rollback at its deadline.
    for (const g of games) await store.mutate(g, (d) => (d ? { gameId: g, imageRef: TEST_IMAGES.unhealthy, desiredState: "running", restartPolicy: d.restartPolicy } : null), { opId: randomUUID(), opSource: "sql" });
    for (const g of games) await waitFor(`${g}'s gate open`, async () => ((await store.getRecord(g))?.rolloutStartedAt ? true : undefined), 30_000, 50);

    // The premise: every gate is still open, well before its deadline, when leadership goes.
    const openedAt = await Promise.all(games.map(async (g) => (await store.getRecord(g))!.rolloutStartedAt!.getTime()));
    expect(Math.min(...openedAt) + settings.patchHealthTimeoutMs - Date.now()).toBeGreaterThan(5_000);
    leaseA.cut();
    await waitFor("replica a stepped down", async () => (a.isLeader ? undefined : true), 10_000, 50);
    // Past every gate's deadline: a replica still acting would have rolled them all back by now.
    const wait = Math.max(...openedAt) + settings.patchHealthTimeoutMs + 2000 - Date.now();
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));

    for (const g of games) {
      const r = await store.getRecord(g);
      expect(r, g).toMatchObject({ currentImageRef: TEST_IMAGES.unhealthy, heldGeneration: null, degraded: false, lastErrorCode: null, observedGeneration: 1 });
      expect(r?.rolloutStartedAt, g).not.toBeNull();
      const events = (await store.eventsAfter(0, { gameId: g })).map((e) => e.type);
      expect(events, g).not.toContain("patch_rolled_back");
      expect(events, g).not.toContain("rollback_failed");
      expect((await store.listOperations(g)).some((o) => o.kind === "rollback"), g).toBe(false);
    }

    // The next leader finds the open gates in the records and gives their verdicts.
    const b = await startReplica("replica-b", store.lease(leaseName));
    await waitFor("replica b leading", async () => (b.isLeader ? true : undefined), 20_000, 50);
    for (const g of games) {
      const r = await waitFor(`${g} rolled back by the next leader`, async () => {
        const rec = await store.getRecord(g);
        return rec?.heldGeneration === 2 ? rec : undefined;
      }, 60_000, 100);
      expect(r).toMatchObject({ currentImageRef: TEST_IMAGES.v100, rolloutStartedAt: null, lastErrorCode: "container_start_failed", degraded: false });
      const events = (await store.eventsAfter(0, { gameId: g })).map((e) => e.type);
      expect(events.filter((t) => t === "patch_rolled_back"), g).toHaveLength(1);
    }
  }, 240_000);
});
