/**
 * Issue 18: fresh work never queues behind a fleet rollout's swaps. The
 * workers and the reconciler wired as the Manager wires them, over fakes, on
 * fake timers: each swap's `docker stop` takes 3 s, as a loaded dockerd's
 * swaps do. A start of a new game queued during the first swap of a fleet
 * patch is carried out before the remaining swaps.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { HealthTracker } from "../../src/controller/health.js";
import { Reconciler } from "../../src/controller/reconciler.js";
import { rolloutSlots, Workers } from "../../src/controller/runnables/workers.js";
import { MAX_HOLD_MS, RuntimeTurns } from "../../src/controller/runtimeTurns.js";
import type { Declaration } from "../../src/model/declaration.js";
import type { DeclarationSource, EngineSpec, HealthProber, ObservedContainer, ReconcileCommit, StateStore } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { createLogger } from "../../src/log.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";
import { observedContainer, RECONCILER_SETTINGS, runtimeRecord } from "../helpers/fixtures.js";

const OLD = "galaxy/engine:1.0.0";
const NEW = "galaxy/engine:1.0.1";
const STOP_MS = 3000;

function declaration(gameId: string, imageRef: string, generation: number): Declaration {
  const at = new Date();
  return { gameId, imageRef, desiredState: "running", restartPolicy: "on-failure", generation, opId: null, opSource: "gm_rest", createdAt: at, updatedAt: at };
}

function fleet(concurrency: number, opts: { turns?: RuntimeTurns; createMs?: (gameId: string) => number } = {}) {
  const declarations = new Map<string, Declaration>();
  const records = new Map<string, RuntimeRecord>();
  let containers: ObservedContainer[] = [];
  /** Runtime calls in the order they began: "stop p1", "create g6", … */
  const calls: string[] = [];
  let seq = 0;
  let reconciles = 0;
  const gameOf = (id: string) => containers.find((c) => c.id === id)?.gameId ?? "?";
  const runtime = fakeRuntime(
    { name: "docker", engines: () => containers },
    {
      listForGame: async (gameId: string) => containers.filter((c) => c.gameId === gameId),
      probeAddress: () => "127.0.0.1:1",
      stop: async (id: string) => {
        calls.push(`stop ${gameOf(id)}`);
        await new Promise((r) => setTimeout(r, STOP_MS));
        containers = containers.map((c) => (c.id === id ? { ...c, phase: "exited", exitCode: 0 } : c));
      },
      remove: async (id: string) => {
        calls.push(`remove ${gameOf(id)}`);
        containers = containers.filter((c) => c.id !== id);
      },
      create: async (spec: EngineSpec) => {
        calls.push(`create ${spec.gameId}`);
        const ms = opts.createMs?.(spec.gameId) ?? 0;
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
        calls.push(`created ${spec.gameId}`);
        const id = `c${++seq}`;
        containers.push(observedContainer({ id, name: spec.name, gameId: spec.gameId, imageRef: spec.imageRef, generation: spec.generation, configHash: spec.configHash, phase: "pending" }));
        return id;
      },
      start: async (id: string) => {
        containers = containers.map((c) => (c.id === id ? { ...c, phase: "running", startedAt: new Date() } : c));
      },
    },
  );
  const state = {
    getRecord: async (id: string) => records.get(id) ?? null,
    putRecord: async (r: RuntimeRecord) => void records.set(r.gameId, r),
    startOperation: async () => ++seq,
    finishOperation: async () => undefined,
    appendEvent: async () => ({}),
    commitReconcile: async (c: ReconcileCommit) => {
      if (c.record) records.set(c.record.gameId, c.record);
      return [];
    },
    markInterruptedOperations: async () => [],
  } as unknown as StateStore;
  const source = { get: async (id: string) => declarations.get(id) ?? null } as unknown as DeclarationSource;
  const prober: HealthProber = { probe: async () => ({ ok: true, statusCode: 200, error: null, latencyMs: 1 }) };
  const logger = createLogger("silent");
  const settings = { ...RECONCILER_SETTINGS, patchMinHealthyMs: 1000, patchHealthTimeoutMs: 60_000 };
  let workers: Workers | null = null;
  const reconciler = new Reconciler({
    source,
    state,
    runtime,
    prober,
    health: new HealthTracker(),
    settings,
    logger,
    laneOf: (gameId) => workers!.laneOf(gameId),
    turns: opts.turns,
  });
  workers = new Workers({
    reconcile: (key) => {
      reconciles++;
      return reconciler.reconcile(key);
    },
    state,
    settings: { concurrency, retryBackoffBaseMs: 100, retryBackoffMaxMs: 1000, resyncIntervalMs: 60_000 },
    logger,
  });

  /** A game running OLD, patched to NEW (generation 2) as a REST patch declares it. */
  const runningThenPatched = (gameId: string) => {
    const c = observedContainer({ id: `old-${gameId}`, name: `galaxy-game-${gameId}`, gameId, imageRef: OLD }, new Date(Date.now() - 3_600_000));
    containers.push(c);
    records.set(gameId, runtimeRecord({ gameId, currentContainerId: c.id, currentImageRef: OLD }));
    declarations.set(gameId, declaration(gameId, NEW, 2));
  };
  return { workers, calls, declarations, records, runningThenPatched, reconciles: () => reconciles };
}

describe("the rollout lane", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("with one worker and five patches queued, a start queued during the first swap runs before the other four swaps", async () => {
    const f = fleet(1);
    const patched = ["p1", "p2", "p3", "p4", "p5"];
    for (const g of patched) f.runningThenPatched(g);
    await f.workers.start();
    for (const g of patched) f.workers.add(g);

    // Into the first swap: its stop is under way.
    await vi.advanceTimersByTimeAsync(100);
    expect(f.calls).toEqual(["stop p1"]);

    f.declarations.set("g6", declaration("g6", OLD, 1));
    f.workers.add("g6");
    await vi.advanceTimersByTimeAsync(STOP_MS);

    // g6 is created right after the swap in progress, before any other swap began.
    const began = f.calls.filter((c) => !c.startsWith("created"));
    expect(began.slice(0, 3)).toEqual(["stop p1", "remove p1", "create p1"]);
    expect(began[3]).toBe("create g6");
    expect(f.records.get("g6")).toMatchObject({ status: "running", currentImageRef: OLD, observedGeneration: 1 });

    // The rollout carries on: every game swapped and past its gate.
    await vi.advanceTimersByTimeAsync(5 * (STOP_MS + 2000));
    for (const g of patched) expect(f.records.get(g), g).toMatchObject({ currentImageRef: NEW, observedGeneration: 2, rolloutStartedAt: null });
    expect(f.calls.filter((c) => c.startsWith("stop"))).toEqual(patched.map((g) => `stop ${g}`));
    await f.workers.stop();
  });

  it("with eight workers, at most seven swaps run at once and a start queued during them is carried out at once", async () => {
    expect(rolloutSlots(8)).toBe(7);
    const f = fleet(8);
    const patched = Array.from({ length: 20 }, (_, i) => `p${i + 1}`);
    for (const g of patched) f.runningThenPatched(g);
    await f.workers.start();
    for (const g of patched) f.workers.add(g);

    await vi.advanceTimersByTimeAsync(100);
    expect(f.calls.filter((c) => c.startsWith("stop"))).toHaveLength(7);

    const before = f.reconciles();
    f.declarations.set("g6", declaration("g6", OLD, 1));
    f.workers.add("g6");
    await vi.advanceTimersByTimeAsync(10);
    // The free worker took it while all seven swaps still wait on their stops.
    expect(f.reconciles()).toBeGreaterThan(before);
    expect(f.calls.filter((c) => c.startsWith("stop"))).toHaveLength(7);
    expect(f.calls.filter((c) => c.startsWith("remove"))).toHaveLength(0);
    expect(f.records.get("g6")).toMatchObject({ status: "running", observedGeneration: 1 });

    await vi.advanceTimersByTimeAsync(3 * (STOP_MS + 2000));
    for (const g of patched) expect(f.records.get(g), g).toMatchObject({ currentImageRef: NEW, observedGeneration: 2 });
    await f.workers.stop();
  });

  /** Two workers: one swap at a time, one worker free. At 0.2 s p1's stop (0 to 3 s) runs and g6's create has begun. */
  async function startDuringSwap(turns: RuntimeTurns | undefined, createMs: number) {
    const f = fleet(2, { turns, createMs: (g) => (g === "g6" ? createMs : 0) });
    for (const g of ["p1", "p2"]) f.runningThenPatched(g);
    await f.workers.start();
    for (const g of ["p1", "p2"]) f.workers.add(g);
    await vi.advanceTimersByTimeAsync(100);
    expect(f.calls).toEqual(["stop p1"]);
    f.declarations.set("g6", declaration("g6", OLD, 1));
    f.workers.add("g6");
    await vi.advanceTimersByTimeAsync(100);
    expect(f.calls).toEqual(["stop p1", "create g6"]);
    return f;
  }

  it("a swap holds its next runtime call while a fresh start acts on the runtime, and goes on once it is done", async () => {
    const f = await startDuringSwap(new RuntimeTurns(), 3500);
    // p1's stop ended at 3 s; its remove waits for g6, which is still being created until 3.7 s.
    await vi.advanceTimersByTimeAsync(3300);
    expect(f.calls).toEqual(["stop p1", "create g6"]);
    await vi.advanceTimersByTimeAsync(300);
    expect(f.calls.slice(0, 4)).toEqual(["stop p1", "create g6", "created g6", "remove p1"]);
    expect(f.records.get("g6")).toMatchObject({ status: "running", observedGeneration: 1 });
    await vi.advanceTimersByTimeAsync(2 * (STOP_MS + 2000));
    for (const g of ["p1", "p2"]) expect(f.records.get(g), g).toMatchObject({ currentImageRef: NEW, observedGeneration: 2 });
    await f.workers.stop();
  });

  it("without the turns the swap's remove runs beside the start's create (the contention the turns remove)", async () => {
    const f = await startDuringSwap(undefined, 3500);
    await vi.advanceTimersByTimeAsync(3000);
    expect(f.calls.slice(0, 5)).toEqual(["stop p1", "create g6", "remove p1", "create p1", "created p1"]);
    expect(f.calls).not.toContain("created g6");
    await vi.advanceTimersByTimeAsync(10_000);
    await f.workers.stop();
  });

  it("a swap is held at most MAX_HOLD_MS a call: fresh work that keeps acting slows a rollout but never stops it", async () => {
    const f = await startDuringSwap(new RuntimeTurns(), 60_000);
    await vi.advanceTimersByTimeAsync(2750 + MAX_HOLD_MS);
    expect(f.calls).toEqual(["stop p1", "create g6"]);
    await vi.advanceTimersByTimeAsync(100);
    expect(f.calls).toEqual(["stop p1", "create g6", "remove p1"]);
    // Each further call of the swap is held again while g6 still acts.
    await vi.advanceTimersByTimeAsync(MAX_HOLD_MS);
    expect(f.calls).toEqual(["stop p1", "create g6", "remove p1", "create p1", "created p1"]);
    await vi.advanceTimersByTimeAsync(70_000);
    await f.workers.stop();
  });

  it("with the call slots of a container engine, seven swaps run but only three of their calls are in flight at once", async () => {
    const f = fleet(8, { turns: new RuntimeTurns(MAX_HOLD_MS, 3) });
    const patched = Array.from({ length: 20 }, (_, i) => `p${i + 1}`);
    for (const g of patched) f.runningThenPatched(g);
    await f.workers.start();
    for (const g of patched) f.workers.add(g);
    await vi.advanceTimersByTimeAsync(100);
    expect(f.calls.filter((c) => c.startsWith("stop"))).toHaveLength(3);
    // As a stop answers, the next swap's stop takes its slot.
    await vi.advanceTimersByTimeAsync(STOP_MS);
    expect(f.calls.filter((c) => c.startsWith("stop"))).toHaveLength(6);
    await vi.advanceTimersByTimeAsync(10 * (STOP_MS + 2000));
    for (const g of patched) expect(f.records.get(g), g).toMatchObject({ currentImageRef: NEW, observedGeneration: 2 });
    await f.workers.stop();
  });
});
