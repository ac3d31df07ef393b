/**
 * The full periodic pass plans every game on the bulk lists and queues only
 * the games a reconcile would act on or write for (resyncTriage.reconcileWouldDoNothing).
 * The oracle is the real reconciler over the same world: whenever the pass
 * would skip a game, a reconcile of it must call the runtime for nothing and
 * write nothing; and every world where the reconcile does act is queued.
 */
import { describe, expect, it } from "vitest";
import { HealthTracker } from "../../src/controller/health.js";
import { Reconciler } from "../../src/controller/reconciler.js";
import { reconcileWouldDoNothing } from "../../src/controller/resyncTriage.js";
import { recordLocationOf } from "../../src/controller/actions.js";
import type { Declaration } from "../../src/model/declaration.js";
import type { DeclarationSource, HealthProber, ObservedContainer, ReconcileCommit, StateStore } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { createLogger } from "../../src/log.js";
import { DOCKER_VERBS, observedContainer, RECONCILER_SETTINGS } from "../helpers/fixtures.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";

const NOW = new Date("2026-11-23T12:00:00Z");
const HOUR_AGO = new Date(NOW.getTime() - 3_600_000);

const settings = RECONCILER_SETTINGS;

interface World {
  declaration: Declaration | null;
  containers: ObservedContainer[];
  record: RuntimeRecord | null;
}

function declaration(over: Partial<Declaration> = {}): Declaration {
  return { gameId: "g1", imageRef: "galaxy/engine:1.0.0", desiredState: "running", restartPolicy: "on-failure", generation: 1, opId: null, opSource: "sql", createdAt: HOUR_AGO, updatedAt: HOUR_AGO, ...over };
}

/** One real reconcile of g1 over `world`: the runtime calls it made and whether it wrote anything. */
async function reconcile(world: World, health: HealthTracker): Promise<{ calls: string[]; commits: ReconcileCommit[]; ops: number; record: RuntimeRecord | null }> {
  const calls: string[] = [];
  const commits: ReconcileCommit[] = [];
  let ops = 0;
  const source = { get: async () => world.declaration } as unknown as DeclarationSource;
  const state = {
    getRecord: async () => world.record,
    startOperation: async () => ++ops,
    commitReconcile: async (c: ReconcileCommit) => {
      commits.push(c);
      return [];
    },
    appendEvent: async () => {
      calls.push("appendEvent");
      return { seq: 1 };
    },
  } as unknown as StateStore;
  const act = (name: string) => async () => void calls.push(name);
  const runtime = fakeRuntime(
    { verbs: DOCKER_VERBS, engines: () => world.containers },
    { ensureImage: act("ensureImage"), create: async () => (calls.push("create"), "c-new"), start: act("start"), stop: act("stop"), remove: act("remove") },
  );
  const prober = { probe: async () => ({ ok: true, statusCode: 200, error: null, latencyMs: 1 }) } as HealthProber;
  const r = new Reconciler({ source, state, runtime, prober, health, settings, logger: createLogger("silent"), clock: () => NOW });
  await r.reconcile("g1");
  return { calls, commits, ops, record: commits.at(-1)?.record ?? null };
}

function wouldSkip(world: World, health: HealthTracker): boolean {
  return reconcileWouldDoNothing({
    gameId: "g1",
    declaration: world.declaration,
    record: world.record,
    containers: world.containers,
    health,
    now: NOW,
    settings,
    verbs: DOCKER_VERBS,
    location: recordLocationOf({}, settings, "g1"),
  });
}

const running = (over: Partial<ObservedContainer> = {}) => observedContainer({ id: "c-g1", name: "galaxy-game-g1", gameId: "g1", ...over }, HOUR_AGO);

/** A converged world: the record is what a reconcile of the running engine derives. */
async function converged(): Promise<World> {
  const world: World = { declaration: declaration(), containers: [running()], record: null };
  const first = await reconcile(world, new HealthTracker());
  world.record = first.record;
  expect(world.record).not.toBeNull();
  return world;
}

describe("full periodic pass: plans on the bulk lists", () => {
  it("skips a converged game, and a reconcile of it would indeed do and write nothing", async () => {
    const world = await converged();
    const health = new HealthTracker();
    expect(wouldSkip(world, health)).toBe(true);
    const again = await reconcile(world, health);
    expect(again.calls).toEqual([]);
    expect(again.commits).toEqual([]);
    expect(again.ops).toBe(0);
  });

  const changes: [string, (w: World) => void][] = [
    ["a newer declaration (patch)", (w) => (w.declaration = declaration({ imageRef: "galaxy/engine:1.0.1", generation: 2 }))],
    ["a declaration to stop", (w) => (w.declaration = declaration({ desiredState: "stopped", generation: 2 }))],
    ["an engine that exited (a missed die event)", (w) => (w.containers = [running({ phase: "exited", exitCode: 1, finishedAt: NOW })])],
    ["no engine at all", (w) => (w.containers = [])],
    ["a second engine of the game", (w) => w.containers.push(running({ id: "c-stray", name: "galaxy-game-g1-x" }))],
    ["no declaration (an orphan)", (w) => (w.declaration = null)],
    ["a record that says stopped", (w) => (w.record = { ...w.record!, status: "stopped" })],
    ["a record from before the engine was replaced", (w) => (w.record = { ...w.record!, currentContainerId: "c-old" })],
    ["no record", (w) => (w.record = null)],
  ];
  it.each(changes)("queues %s, where a reconcile acts or writes", async (_, change) => {
    const world = await converged();
    change(world);
    const health = new HealthTracker();
    expect(wouldSkip(world, health)).toBe(false);
    const r = await reconcile(world, health);
    expect(r.calls.length + r.commits.length + r.ops).toBeGreaterThan(0);
  });

  it("skips a game whose probe time alone moved (the triaged passes ignore it too)", async () => {
    const world = await converged();
    world.record = { ...world.record!, health: "healthy", consecutiveProbeFailures: 0, lastProbeAt: HOUR_AGO };
    const health = new HealthTracker();
    health.observe("g1", "c-g1", true, NOW, settings.probeFailureThreshold);
    expect(wouldSkip(world, health)).toBe(true);
  });

  it("queues a game whose probes the record has not seen yet", async () => {
    const world = await converged();
    const health = new HealthTracker();
    health.observe("g1", "c-g1", false, NOW, settings.probeFailureThreshold);
    expect(wouldSkip(world, health)).toBe(false);
    const r = await reconcile(world, health);
    expect(r.commits.length).toBeGreaterThan(0);
  });
});
