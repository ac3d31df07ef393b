/**
 * The health tracker forgets games that are gone, so it does not grow with
 * every game ever run: a resync pass drops the probe history of a game whose
 * record says removed and that has no container left; games still running,
 * or removed on record but with a container Docker still lists, keep theirs.
 */
import { describe, expect, it } from "vitest";
import { HealthTracker } from "../../src/controller/health.js";
import { ResyncRunnable } from "../../src/controller/runnables/resync.js";
import { createLogger } from "../../src/log.js";
import type { DeclarationSource, ObservedContainer, StateStore } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { observedContainer, runtimeRecord } from "../helpers/fixtures.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";

const logger = createLogger("silent", "test-health-forget");

function resync(health: HealthTracker, lists: { records: RuntimeRecord[]; containers: ObservedContainer[]; failContainers?: boolean }) {
  const source = { listGameIds: () => Promise.resolve([]) } as Partial<DeclarationSource> as DeclarationSource;
  const docker = fakeRuntime({}, { listManaged: () => (lists.failContainers ? Promise.reject(new Error("docker down")) : Promise.resolve(lists.containers)) });
  const state: Pick<StateStore, "listRecords"> = { listRecords: () => Promise.resolve(lists.records) };
  const queued: string[] = [];
  const r = new ResyncRunnable({ source, runtime: docker, state, health, enqueue: (id) => void queued.push(id), intervalMs: 3_600_000, logger });
  r.start();
  return { r, queued };
}

describe("HealthTracker.forget through resync", () => {
  const now = new Date();
  const probed = () => {
    const health = new HealthTracker();
    for (const g of ["gone", "running", "leftover"]) health.observe(g, `${g}-c`, false, now, 3);
    return health;
  };
  const records = [
    runtimeRecord({ gameId: "gone", status: "removed", currentContainerId: null }),
    runtimeRecord({ gameId: "running", currentContainerId: "running-c" }),
    runtimeRecord({ gameId: "leftover", status: "removed", currentContainerId: null }),
  ];
  const containers = [observedContainer({ id: "running-c", gameId: "running" }), observedContainer({ id: "leftover-c", gameId: "leftover", phase: "exited" })];

  it("drops a removed game with no container and keeps the others", async () => {
    const health = probed();
    const { r } = resync(health, { records, containers });
    await r.runNow("test");
    expect(health.get("gone", "gone-c")).toBeNull();
    expect(health.get("running", "running-c")?.consecutiveFailures).toBe(1);
    expect(health.get("leftover", "leftover-c")?.consecutiveFailures).toBe(1);
    await r.stop();
  });

  it("forgets nothing when Docker's list failed: a missing list proves no game gone", async () => {
    const health = probed();
    const { r } = resync(health, { records, containers, failContainers: true });
    await r.runNow("test");
    expect(health.get("gone", "gone-c")?.consecutiveFailures).toBe(1);
    await r.stop();
  });
});
