/**
 * The fleet's bookkeeping (src/controller/fleet.ts) and the quarantine's
 * counting (src/controller/quarantine.ts) over in-memory stores: canary
 * state derived from records (and rebuilt from them on a new leader),
 * canary slots claimed synchronously with the plan, held games woken when a
 * canary passes or leaves its slot, rollbacks counted into a quarantine.
 */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createFleet, standingOf } from "../../src/controller/fleet.js";
import { blankPlan, type Plan } from "../../src/controller/plan.js";
import { CANARY_WAIT_REASON } from "../../src/controller/planFleet.js";
import { Quarantines, ROLLBACK_COUNT_SHARED_MS, type Quarantine, type QuarantineStore } from "../../src/controller/quarantine.js";
import type { Declaration } from "../../src/model/declaration.js";
import type { StateStore } from "../../src/model/ports.js";
import type { NewRuntimeEvent, RuntimeEvent, RuntimeRecord } from "../../src/model/record.js";
import { runtimeRecord } from "../helpers/fixtures.js";

const NEW = "galaxy/engine:1.0.1";
const OLD = "galaxy/engine:1.0.0";
const logger = pino({ level: "silent" });

/** Counts rollbacks from the events it was given, as the SQL store counts them from runtime_events. */
class MemoryQuarantines implements QuarantineStore {
  rows = new Map<string, Quarantine & { lifted: boolean }>();
  rollbacks: { imageRef: string; gameId: string }[] = [];
  async activeQuarantines() {
    return [...this.rows.values()].filter((q) => !q.lifted);
  }
  async recentRollbacks(imageRef: string) {
    const hits = this.rollbacks.filter((r) => r.imageRef === imageRef);
    return { count: hits.length, games: [...new Set(hits.map((h) => h.gameId))].sort() };
  }
  async imposeQuarantine(q: Quarantine) {
    const row = this.rows.get(q.imageRef);
    if (row && !row.lifted) return { quarantine: row, created: false };
    this.rows.set(q.imageRef, { ...q, lifted: false });
    return { quarantine: q, created: true };
  }
  async liftQuarantine(imageRef: string) {
    const row = this.rows.get(imageRef);
    if (!row || row.lifted) return null;
    row.lifted = true;
    // Rollbacks before a lift no longer count.
    this.rollbacks = this.rollbacks.filter((r) => r.imageRef !== imageRef);
    return row;
  }
}

function setup(canaries: number, records: RuntimeRecord[] = []) {
  const store = new MemoryQuarantines();
  const events: NewRuntimeEvent[] = [];
  const woken: string[] = [];
  const state = {
    appendEvent: async (e: NewRuntimeEvent) => {
      events.push(e);
      if (e.type === "patch_rolled_back") store.rollbacks.push({ imageRef: String(e.data.failedImageRef), gameId: e.gameId });
      return { ...e, seq: events.length, at: new Date(), opId: e.opId ?? null } as RuntimeEvent;
    },
    listRecords: async () => records,
  };
  const { fleet, quarantines } = createFleet({ store, state, settings: { after: 3, windowMs: 600_000, canaries }, logger, enqueue: (g) => woken.push(g) });
  return { fleet, quarantines, store, events, woken, loopState: fleet.countingRollbacks(state as unknown as StateStore) };
}

const decl = (gameId: string, imageRef = NEW): Declaration => ({
  gameId,
  imageRef,
  desiredState: "running",
  restartPolicy: "on-failure",
  generation: 2,
  opId: null,
  opSource: "gm_rest",
  createdAt: new Date(),
  updatedAt: new Date(),
});

function patchPlan(): Plan {
  return { ...blankPlan(0, NEW), kind: "patch", gate: { minHealthyMs: 1000, timeoutMs: 5000, rollbackTo: OLD, rollback: [], resumed: false } };
}

function heldPlan(): Plan {
  return { ...blankPlan(0, NEW), converges: false, requeueAfterMs: 5000, reason: `${CANARY_WAIT_REASON}: ...` };
}

const gating = (gameId: string) => runtimeRecord({ gameId, currentImageRef: NEW, previousImageRef: OLD, rolloutStartedAt: new Date() });
const passed = (gameId: string) => runtimeRecord({ gameId, currentImageRef: NEW, previousImageRef: OLD, rolloutStartedAt: null, health: "healthy" });
const rolledBack = (gameId: string) => runtimeRecord({ gameId, currentImageRef: OLD, previousImageRef: NEW, rolloutStartedAt: null });

describe("canary state from records", () => {
  it("an open patch gate is a canary in flight; running outside a gate is proof; a restart's gate is neither", () => {
    expect(standingOf(gating("a"))).toEqual({ gating: NEW, proven: null });
    expect(standingOf(passed("a"))).toEqual({ gating: null, proven: NEW });
    expect(standingOf(runtimeRecord({ currentImageRef: NEW, previousImageRef: null, rolloutStartedAt: new Date() }))).toEqual({ gating: null, proven: null });
    expect(standingOf(runtimeRecord({ currentImageRef: NEW, health: "unhealthy" }))).toEqual({ gating: null, proven: null });
    expect(standingOf(runtimeRecord({ status: "stopped", currentImageRef: NEW }))).toEqual({ gating: null, proven: null });
  });

  it("a new leader rebuilds it from the records: canaries in flight hold their slots, a passed canary proves the image", async () => {
    const { fleet } = setup(1, [gating("a")]);
    await fleet.runnable().start({ signal: new AbortController().signal });
    expect([...fleet.view().inFlight(NEW)]).toEqual(["a"]);
    expect(fleet.view().proven(NEW)).toBe(false);

    const after = setup(1, [passed("a")]);
    await after.fleet.runnable().start({ signal: new AbortController().signal });
    expect(after.fleet.view().proven(NEW)).toBe(true);
  });

  it("a canary's slot is claimed with its plan, before its first record (no second canary from a concurrent worker)", () => {
    const { fleet } = setup(1);
    expect(fleet.view().inFlight(NEW).size).toBe(0);
    fleet.planned("a", patchPlan(), decl("a"));
    expect([...fleet.view().inFlight(NEW)]).toEqual(["a"]);
    // No claim once the image is proven: there is nothing left to wait for.
    fleet.onRecord(passed("b"));
    fleet.planned("c", patchPlan(), decl("c"));
    expect(fleet.view().inFlight(NEW).has("c")).toBe(false);
  });

  it("held games are woken when the canary passes, and when a canary leaves its slot by rolling back", () => {
    const { fleet, woken } = setup(1);
    fleet.planned("a", patchPlan(), decl("a"));
    fleet.onRecord(gating("a"));
    fleet.planned("b", heldPlan(), decl("b"));
    fleet.planned("c", heldPlan(), decl("c"));
    expect(woken).toEqual([]);
    fleet.onRecord(rolledBack("a"));
    expect(woken.sort()).toEqual(["b", "c"]);
    expect(fleet.view().inFlight(NEW).size).toBe(0);

    woken.length = 0;
    fleet.planned("b", patchPlan(), decl("b"));
    fleet.onRecord(gating("b"));
    fleet.planned("c", heldPlan(), decl("c"));
    fleet.onRecord(passed("b"));
    expect(woken).toEqual(["c"]);
    expect(fleet.view().proven(NEW)).toBe(true);
  });
});

describe("quarantine counting", () => {
  it("the third rollback to one image quarantines it (one image_quarantined event), another image stays free, a lift frees it and starts the count again", async () => {
    const { fleet, quarantines, events, loopState, woken } = setup(0);
    const rollback = (gameId: string, imageRef = NEW) =>
      loopState.appendEvent({ gameId, type: "patch_rolled_back", opId: null, data: { failedImageRef: imageRef, restoredImageRef: OLD, reason: "unhealthy" } });
    await rollback("a");
    await rollback("b");
    await rollback("x", "galaxy/engine:1.0.2");
    expect(await quarantines.find(NEW)).toBeNull();
    fleet.planned("h", { ...blankPlan(0, NEW), converges: false, reason: "held by a quarantine: ..." }, decl("h"));
    await rollback("c");
    // A game held waiting on that image looks again (and now fails on the quarantine).
    expect(woken).toEqual(["h"]);
    expect(fleet.view().quarantined.get(NEW)).toMatchObject({ imageRef: NEW, rollbacks: 3, gameId: "c", games: ["a", "b", "c"] });
    expect(fleet.view().quarantined.has("galaxy/engine:1.0.2")).toBe(false);
    expect(events.filter((e) => e.type === "image_quarantined")).toHaveLength(1);
    expect(events.find((e) => e.type === "image_quarantined")?.gameId).toBe("c");
    // A fourth rollback (a patch already under way) imposes nothing new.
    await rollback("d");
    expect(events.filter((e) => e.type === "image_quarantined")).toHaveLength(1);

    await quarantines.lift(NEW, "admin_rest");
    expect(fleet.view().quarantined.has(NEW)).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: "image_quarantine_lifted", gameId: "c", data: { imageRef: NEW, liftedBy: "admin_rest" } });
    await expect(quarantines.lift(NEW, "admin_rest")).rejects.toMatchObject({ code: "not_found" });
    await rollback("e");
    expect(await quarantines.find(NEW)).toBeNull();
  });

  it("rollbacks a store writes in one transaction with the record (commitReconcile) count too, after the commit", async () => {
    const { fleet, store, events } = setup(0);
    const committed: string[] = [];
    const batching = {
      appendEvent: async () => {
        throw new Error("not used");
      },
      commitReconcile: async (commit: { events: NewRuntimeEvent[] }) => {
        for (const e of commit.events) store.rollbacks.push({ imageRef: String(e.data.failedImageRef), gameId: e.gameId });
        committed.push(...commit.events.map((e) => e.gameId));
        return [];
      },
    };
    const loop = fleet.countingRollbacks(batching as unknown as StateStore) as unknown as typeof batching;
    for (const g of ["a", "b", "c"]) {
      await loop.commitReconcile({ events: [{ gameId: g, type: "patch_rolled_back", opId: null, data: { failedImageRef: NEW } }] });
    }
    expect(committed).toEqual(["a", "b", "c"]);
    expect(fleet.view().quarantined.get(NEW)).toMatchObject({ rollbacks: 3, gameId: "c" });
    expect(events.map((e) => e.type)).toEqual(["image_quarantined"]);
  });

  it("a quarantine missed by a crash after the third rollback is imposed by the next check of that image", async () => {
    const { quarantines, store, events } = setup(0);
    store.rollbacks.push({ imageRef: NEW, gameId: "a" }, { imageRef: NEW, gameId: "b" }, { imageRef: NEW, gameId: "c" });
    expect(await quarantines.find(NEW)).toMatchObject({ imageRef: NEW, rollbacks: 3 });
    expect(events.map((e) => e.type)).toEqual(["image_quarantined"]);
  });

  it("a fleet patch's calls to one image share one count of its rollbacks for a second; a rollback or a lift counts afresh", async () => {
    let now = 1_000_000;
    const store = new MemoryQuarantines();
    let counts = 0;
    const recentRollbacks = store.recentRollbacks.bind(store);
    store.recentRollbacks = async (imageRef: string) => {
      counts++;
      return recentRollbacks(imageRef);
    };
    const q = new Quarantines({ store, settings: { after: 3, windowMs: 600_000 }, appendEvent: async () => undefined, logger, now: () => now });
    const found = await Promise.all(Array.from({ length: 1000 }, () => q.find(NEW)));
    expect(found.every((f) => f === null)).toBe(true);
    expect(counts).toBe(1);
    expect(await q.find(OLD)).toBeNull();
    expect(counts).toBe(2);

    // Two rollbacks counted by the loop, then a third: the third imposes it, and the next find sees it at once.
    store.rollbacks.push({ imageRef: NEW, gameId: "a" }, { imageRef: NEW, gameId: "b" }, { imageRef: NEW, gameId: "c" });
    await q.noteRollback(NEW, "c");
    expect(await q.find(NEW)).toMatchObject({ imageRef: NEW, rollbacks: 3 });

    // After the window of sharing, a missed rollback (no noteRollback: a crash) is counted again.
    await q.lift(NEW, "ops");
    expect(await q.find(NEW)).toBeNull();
    const before = counts;
    store.rollbacks.push({ imageRef: NEW, gameId: "d" }, { imageRef: NEW, gameId: "e" }, { imageRef: NEW, gameId: "f" });
    expect(await q.find(NEW)).toBeNull(); // within the shared second: the count from before
    now += ROLLBACK_COUNT_SHARED_MS;
    expect(await q.find(NEW)).toMatchObject({ imageRef: NEW, rollbacks: 3 });
    expect(counts).toBe(before + 1);
  });
});
