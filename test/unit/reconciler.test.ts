/**
 * The reconciler over fakes (no Docker, no database): what it reports when the
 * store fails under it, and how it reports orphans it leaves alone.
 */
import { describe, expect, it } from "vitest";
import { HealthTracker } from "../../src/controller/health.js";
import { Reconciler, type ReconcileObserver, type ReconcilerSettings } from "../../src/controller/reconciler.js";
import type { Declaration } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";
import { EngineStillTerminating, RuntimeFailure } from "../../src/model/runtimeFailure.js";
import type { DeclarationSource, HealthProber, ObservedContainer, ReconcileCommit, RuntimePort, StateStore } from "../../src/model/ports.js";
import type { NewOperation, NewRuntimeEvent, OperationResult, RuntimeRecord } from "../../src/model/record.js";
import { createLogger, type Logger } from "../../src/log.js";
import { Metrics } from "../../src/metrics.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";
import { StubJobRuntime } from "../helpers/jobRuntime.js";
import { StubPodRuntime } from "../helpers/podRuntime.js";
import { DOCKER_VERBS, observedContainer, RECONCILER_SETTINGS, POD_VERBS, runtimeRecord } from "../helpers/fixtures.js";

const NOW = new Date("2026-11-23T12:00:00Z");

const settings = RECONCILER_SETTINGS;

function container(gameId: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  const hourAgo = new Date(NOW.getTime() - 3_600_000);
  return observedContainer({ id: `c-${gameId}`, name: `galaxy-game-${gameId}`, gameId, ...over }, hourAgo);
}

function declaration(gameId: string): Declaration {
  return {
    gameId,
    imageRef: "galaxy/engine:1.0.0",
    desiredState: "running",
    restartPolicy: "on-failure",
    generation: 1,
    opId: null,
    opSource: "sql",
    createdAt: NOW,
    updatedAt: NOW,
  };
}

interface World {
  declarations: Map<string, Declaration>;
  containers: ObservedContainer[];
  records: Map<string, RuntimeRecord>;
  events: NewRuntimeEvent[];
  failStartOperation?: RtmError;
  /** Operation-log rows by id, when the test looks at them. */
  operations?: Map<number, { op: NewOperation; result?: OperationResult }>;
}

function reconciler(
  world: World,
  opts: {
    settings?: Partial<ReconcilerSettings>;
    observer?: ReconcileObserver;
    logs?: Record<string, unknown>[];
    mayAct?: () => boolean;
    runtime?: Partial<RuntimePort>;
    /** A whole runtime of the test's own, instead of the FakeRuntime over `world.containers`. */
    runtimeInstance?: RuntimePort;
    prober?: HealthProber;
    clock?: () => Date;
  } = {},
) {
  const source = {
    get: async (id: string) => world.declarations.get(id) ?? null,
  } as unknown as DeclarationSource;
  let opSeq = 0;
  const state = {
    getRecord: async (id: string) => world.records.get(id) ?? null,
    putRecord: async (r: RuntimeRecord) => void world.records.set(r.gameId, r),
    startOperation: async (op: NewOperation) => {
      if (world.failStartOperation) throw world.failStartOperation;
      world.operations?.set(++opSeq, { op });
      return opSeq;
    },
    finishOperation: async (id: number, result: OperationResult) => {
      const row = world.operations?.get(id);
      if (row) row.result = result;
    },
    appendEvent: async (e: NewRuntimeEvent) => {
      world.events.push(e);
      return { ...e, seq: world.events.length, at: NOW };
    },
    commitReconcile: async (c: ReconcileCommit) => {
      world.events.push(...c.events);
      const row = c.finishOperation ? world.operations?.get(c.finishOperation.id) : undefined;
      if (row && c.finishOperation) row.result = c.finishOperation.result;
      if (c.record) world.records.set(c.record.gameId, c.record);
      return c.events.map((e, i) => ({ ...e, seq: world.events.length - c.events.length + i + 1, at: NOW }));
    },
  } as unknown as StateStore;
  const docker = opts.runtimeInstance ?? fakeRuntime({ engines: () => world.containers, now: NOW }, opts.runtime);
  const prober = opts.prober ?? ({ probe: async () => ({ ok: true }) } as unknown as HealthProber);
  let logger: Logger = createLogger("silent");
  if (opts.logs) {
    const sink = opts.logs;
    const capture = (level: string) => (obj: object, msg?: string) => void sink.push({ level, ...obj, msg });
    const fake = { info: capture("info"), warn: capture("warn"), error: capture("error"), debug: () => undefined, child: () => fake };
    logger = fake as unknown as Logger;
  }
  return new Reconciler({
    source,
    state,
    runtime: docker,
    prober,
    health: new HealthTracker(),
    settings: { ...settings, ...opts.settings },
    logger,
    observer: opts.observer,
    clock: opts.clock ?? (() => NOW),
    mayAct: opts.mayAct,
  });
}

/** A counter's value summed over the series whose labels include `labels`. */
async function counter(m: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  return data.values
    .filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, string>)[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

describe("reconciler", () => {
  it("a reconcile whose store write throws returns an error outcome with its code (retryable), counted as an error", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const hooks = metrics.managerHooks();
    const world: World = {
      declarations: new Map([["g1", declaration("g1")]]),
      containers: [container("g1")],
      records: new Map(),
      events: [],
      failStartOperation: new RtmError("service_unavailable", "database is down"),
    };
    const r = reconciler(world, { observer: { onReconcile: hooks.onReconcile } });
    const result = await r.reconcile("g1");
    expect(result.outcome).toMatchObject({ type: "error", terminal: false, error: { code: "service_unavailable", message: "database is down" } });

    expect(await counter(metrics, "rtmanager_reconcile_total", { result: "error" })).toBe(1);
    expect(await counter(metrics, "rtmanager_reconcile_errors_total", { code: "service_unavailable" })).toBe(1);
    const time = await metrics.loop.reconcileTime.get();
    expect(time.values.find((v) => v.metricName === "rtmanager_reconcile_time_seconds_count")?.value).toBe(1);
  });

  it("leadership lost mid-reconcile: nothing more is written or announced, and the outcome is a retryable service_unavailable", async () => {
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [] };
    const announced: RuntimeRecord[] = [];
    const logs: Record<string, unknown>[] = [];
    const r = reconciler(world, { mayAct: () => false, observer: { onRecord: (rec) => announced.push(rec) }, logs });
    const result = await r.reconcile("g1");
    // The fence check before the first runtime call (the observation's list) already finds leadership gone.
    expect(result.plan).toBeNull();
    expect(result.outcome).toMatchObject({ type: "error", terminal: false, error: { code: "service_unavailable" } });
    expect(result.record).toBeNull();
    // No failure record a REST waiter could take for a verdict, no events.
    expect(world.records.size).toBe(0);
    expect(world.events).toEqual([]);
    expect(announced).toEqual([]);
    expect(logs.some((l) => l.msg === "reconcile aborted; nothing more is written" && /lost leadership/.test(String(l.why)))).toBe(true);
  });

  it("an error that is not an RtmError is counted as internal_error", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [container("g1")], records: new Map(), events: [] };
    world.failStartOperation = new TypeError("boom") as unknown as RtmError;
    const r = reconciler(world, { observer: { onReconcile: metrics.managerHooks().onReconcile } });
    const result = await r.reconcile("g1");
    expect(result.outcome).toMatchObject({ type: "error", terminal: false, error: { code: "internal_error" } });
    expect(await counter(metrics, "rtmanager_reconcile_errors_total", { code: "internal_error" })).toBe(1);
  });

  it("reports a dry-run orphan once (a warn line and the gauge), not on every resync, and never touches it", async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const logs: Record<string, unknown>[] = [];
    const world: World = {
      declarations: new Map(),
      containers: [container("g2")],
      records: new Map([["g2", runtimeRecord({ gameId: "g2", currentContainerId: "c-g2" }, NOW)]]),
      events: [],
    };
    const r = reconciler(world, { settings: { orphanDryRun: true }, logs, observer: { onReconcile: metrics.managerHooks().onReconcile } });
    for (let i = 0; i < 3; i++) {
      const result = await r.reconcile("g2");
      expect(result.outcome.type).not.toBe("error");
      expect(result.plan?.actions).toEqual([]);
    }
    const warned = logs.filter((l) => l.level === "warn" && l.msg === "orphan left in place");
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ containerId: "c-g2", why: "dry_run" });
    expect(world.events.filter((e) => e.type === "orphan_reported")).toEqual([
      expect.objectContaining({ gameId: "g2", data: expect.objectContaining({ containerId: "c-g2", why: "dry_run" }) }),
    ]);
    expect(await counter(metrics, "rtmanager_orphans_reported", { reason: "dry_run" })).toBe(1);

    // Declared again: adopted, no longer an orphan; the gauge drops.
    world.declarations.set("g2", declaration("g2"));
    await r.reconcile("g2");
    expect(await counter(metrics, "rtmanager_orphans_reported")).toBe(0);
  });

  it("leaves an orphan this store never recorded in place on every pass, and writes no record that would make it removable", async () => {
    const logs: Record<string, unknown>[] = [];
    const world: World = { declarations: new Map(), containers: [container("g3")], records: new Map(), events: [] };
    const r = reconciler(world, { logs });
    for (let i = 0; i < 3; i++) {
      const result = await r.reconcile("g3");
      expect(result.plan?.actions).toEqual([]);
      expect(result.plan?.orphanReport?.why).toBe("unrecorded");
    }
    expect(world.records.has("g3")).toBe(false);
    expect(logs.filter((l) => l.msg === "orphan left in place")).toHaveLength(1);
    expect(world.events.filter((e) => e.type === "orphan_reported").map((e) => e.data)).toEqual([expect.objectContaining({ why: "unrecorded" })]);
  });
});

describe("reconciler: a health gate is one check per reconcile", () => {
  const OLD = "galaxy/engine:1.0.0";
  const NEW = "galaxy/engine:1.0.1";

  /** A game whose patch to NEW has been running its health gate for 2 s: the interim record and the new engine. */
  function gatedWorld() {
    const world: World = {
      declarations: new Map([["g1", { ...declaration("g1"), imageRef: NEW, generation: 2 }]]),
      containers: [container("g1", { id: "c-new", imageRef: NEW })],
      records: new Map([
        ["g1", runtimeRecord({ gameId: "g1", currentContainerId: "c-new", currentImageRef: NEW, previousImageRef: OLD, rolloutStartedAt: new Date(NOW.getTime() - 2000), observedGeneration: 1 }, NOW)],
      ]),
      events: [],
      operations: new Map(),
    };
    let healthy = false;
    let probes = 0;
    let t = NOW.getTime();
    const prober: HealthProber = {
      probe: async () => {
        probes++;
        return { ok: healthy, statusCode: healthy ? 200 : 503, error: healthy ? null : "HTTP 503", latencyMs: 1 };
      },
    };
    const r = reconciler(world, {
      settings: { patchMinHealthyMs: 0, patchHealthTimeoutMs: 60_000 },
      runtime: { verbs: DOCKER_VERBS, probeAddress: () => "127.0.0.1:1" },
      prober,
      clock: () => new Date(t),
    });
    return { world, r, probes: () => probes, becomeHealthy: () => (healthy = true), advance: (ms: number) => (t += ms) };
  }

  it("a reconcile of an open gate makes one probe and returns a requeue in the gate lane; the record keeps the gate open and the generation unreached", async () => {
    const g = gatedWorld();
    const before = g.world.records.get("g1");
    const first = await g.r.reconcile("g1");
    expect(first.outcome).toEqual({ type: "requeue", afterMs: 250, lane: "gate" });
    expect(g.probes()).toBe(1);
    // The record already showed this gate on this engine: nothing rewritten, the REST waiter still waits.
    expect(g.world.records.get("g1")).toBe(before);
    expect(g.world.records.get("g1")).toMatchObject({ observedGeneration: 1, rolloutStartedAt: expect.any(Date) });

    // The next check carries on with the same operation-log row, still open.
    g.advance(250);
    expect((await g.r.reconcile("g1")).outcome).toMatchObject({ type: "requeue", lane: "gate" });
    expect(g.probes()).toBe(2);
    expect([...g.world.operations!.values()].map((o) => [o.op.kind, o.result?.outcome ?? "running"])).toEqual([["patch", "running"]]);

    // Healthy: the verdict closes the row and the record reaches the generation.
    g.becomeHealthy();
    g.advance(250);
    const last = await g.r.reconcile("g1");
    expect(last.outcome).toEqual({ type: "done" });
    expect(g.world.records.get("g1")).toMatchObject({ observedGeneration: 2, rolloutStartedAt: null, currentImageRef: NEW, lastErrorCode: null });
    expect([...g.world.operations!.values()].map((o) => [o.op.kind, o.result?.outcome])).toEqual([["patch", "success"]]);
  });

  it("an open gate the declaration moved past (a stop) is left: its row is closed as interrupted, and the stop is planned at once", async () => {
    const g = gatedWorld();
    await g.r.reconcile("g1");
    g.world.declarations.set("g1", { ...g.world.declarations.get("g1")!, desiredState: "stopped", generation: 3 });
    const stop = await g.r.reconcile("g1");
    expect(stop.plan?.kind).toBe("stop");
    const rows = [...g.world.operations!.values()];
    expect(rows[0]).toMatchObject({ op: { kind: "patch" }, result: { outcome: "interrupted" } });
    expect(rows[0]!.result?.message).toMatch(/health gate of generation 2 was left without a verdict/);
  });
});

describe("reconciler: an engine the runtime only accepted (a Pod not running yet)", () => {
  it("a start on a runtime that starts engines itself does not reach the generation until the engine runs, and then it is no adoption", async () => {
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    const runtime: Partial<RuntimePort> = {
      verbs: POD_VERBS,
      ensureImage: async () => undefined,
      // The API server has the Pod; no container runs yet.
      create: async (spec) => {
        world.containers.push(container(spec.gameId, { id: "pod:uid-1", phase: "pending", imageRef: spec.imageRef, generation: 1, startedAt: null, createdAt: NOW }));
        return "pod:uid-1";
      },
      start: async () => undefined,
    };
    const r = reconciler(world, { runtime });
    const first = await r.reconcile("g1");
    expect(first.outcome).toEqual({ type: "requeue", afterMs: 2000 });
    // A REST waiter must not wake: the generation is not reached.
    expect(world.records.get("g1")).toMatchObject({ observedGeneration: 0, currentContainerId: "pod:uid-1" });

    // Woken again before the kubelet ran it: a wait, no action, no new operation-log row.
    const waiting = await r.reconcile("g1");
    expect(waiting.plan?.actions).toEqual([]);
    expect(waiting.outcome).toMatchObject({ type: "requeue" });
    expect(world.operations!.size).toBe(1);

    // The kubelet runs it (its container id is the kubelet's): the start is done, not an adoption.
    world.containers = [container("g1", { id: "k-1", generation: 1, createdAt: NOW })];
    const done = await r.reconcile("g1");
    expect(done.outcome).toEqual({ type: "done" });
    expect(world.records.get("g1")).toMatchObject({ status: "running", observedGeneration: 1, currentContainerId: "k-1" });
    expect(world.events.map((e) => e.type)).not.toContain("container_adopted");
  });
});

describe("reconciler: a runtime's problem is reported once per engine", () => {
  const OUT_OF_CPU = { kind: "start_failed" as const, reason: "OutOfcpu", message: "Pod was rejected: Node didn't have enough resource: cpu", final: true };

  function rejectingCluster(restartPolicy: Declaration["restartPolicy"]) {
    const world: World = { declarations: new Map([["g1", { ...declaration("g1"), restartPolicy }]]), containers: [], records: new Map(), events: [], operations: new Map() };
    let pods = 0;
    const runtime: Partial<RuntimePort> = {
      verbs: POD_VERBS,
      ensureImage: async () => undefined,
      create: async (spec) => {
        const id = `pod:uid-${++pods}`;
        world.containers.push(container(spec.gameId, { id, phase: "pending", imageRef: spec.imageRef, generation: 1, startedAt: null, createdAt: NOW }));
        return id;
      },
      start: async () => undefined,
      stop: async () => undefined,
      remove: async (id) => void (world.containers = world.containers.filter((c) => c.id !== id)),
    };
    /** The kubelet rejects the game's Pod at admission, as every node is full. */
    const reject = () => (world.containers = world.containers.map((c) => ({ ...c, phase: "exited" as const, problem: OUT_OF_CPU })));
    const reports = () => world.events.filter((e) => e.type === "reconcile_failed").map((e) => (e.data as { message: string }).message);
    return { world, r: reconciler(world, { runtime }), reject, reports };
  }

  it("each rejected Pod replaced in a run of identical rejections is reported, with the kubelet's reason", async () => {
    const c = rejectingCluster("on-failure");
    await c.r.reconcile("g1");
    for (let pod = 1; pod <= 3; pod++) {
      c.reject();
      await c.r.reconcile("g1");
      expect(c.world.containers.map((x) => x.id), "replaced by a new Pod").toEqual([`pod:uid-${pod + 1}`]);
      // Woken again by the new Pod before the kubelet judged it: nothing new to report.
      await c.r.reconcile("g1");
      expect(c.reports(), `after ${pod} rejected Pods`).toHaveLength(pod);
    }
    for (const m of c.reports()) expect(m).toBe(`OutOfcpu: ${OUT_OF_CPU.message}`);
    expect(c.world.records.get("g1")?.lastErrorMessage).toBe(`OutOfcpu: ${OUT_OF_CPU.message}`);
  });

  it("an engine that keeps its problem (a container the kubelet cannot create) is reported once, however often it is reconciled", async () => {
    const c = rejectingCluster("on-failure");
    await c.r.reconcile("g1");
    const problem = { kind: "start_failed" as const, reason: "CreateContainerConfigError", message: 'secret "engine-env" not found', final: false };
    c.world.containers = c.world.containers.map((x) => ({ ...x, problem }));
    for (let i = 0; i < 3; i++) await c.r.reconcile("g1");
    expect(c.world.containers.map((x) => x.id)).toEqual(["pod:uid-1"]);
    expect(c.reports()).toEqual([`CreateContainerConfigError: ${problem.message}`]);
  });
});

describe("reconciler: a third runtime (StubJobRuntime, a Nomad-job-shaped stub) with no controller change", () => {
  it("starts, patches in place on a new allocation, records the client's own restart, and stops, each converging", async () => {
    const jobs = new StubJobRuntime("rtm", () => NOW);
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    // No health gate: the runtime's readiness is the verdict, and this test is about the vocabulary.
    const r = reconciler(world, { runtimeInstance: jobs, settings: { patchHealthTimeoutMs: 0 } });
    const declare = (over: Partial<Declaration>) => {
      const d = world.declarations.get("g1")!;
      world.declarations.set("g1", { ...d, ...over, generation: d.generation + 1 });
    };

    // Registered, not placed yet: the generation waits for the scheduler.
    expect((await r.reconcile("g1")).outcome).toMatchObject({ type: "requeue" });
    expect(world.records.get("g1")).toMatchObject({ observedGeneration: 0, currentContainerId: "alloc-1" });
    jobs.schedule();
    expect((await r.reconcile("g1")).outcome).toEqual({ type: "done" });
    expect(world.records.get("g1")).toMatchObject({ status: "running", observedGeneration: 1, currentContainerId: "alloc-1" });

    // A patch is one update of the job, never a purge and register; its allocation is a new engine id.
    declare({ imageRef: "galaxy/engine:1.0.1" });
    await r.reconcile("g1");
    jobs.schedule();
    await r.reconcile("g1");
    expect(world.records.get("g1")).toMatchObject({ status: "running", observedGeneration: 2, currentImageRef: "galaxy/engine:1.0.1", currentContainerId: "alloc-2" });
    expect(jobs.calls.filter((c) => !c.startsWith("start"))).toEqual(["register g1 galaxy/engine:1.0.0", "update alloc-1 galaxy/engine:1.0.1"]);

    // The client restarts the task itself: recorded as an exit, and nothing asked of the runtime.
    const before = jobs.calls.length;
    jobs.crash("g1", 137);
    await r.reconcile("g1");
    expect(jobs.calls.length).toBe(before);
    expect(world.events.filter((e) => e.type === "container_exited").at(-1)?.data).toMatchObject({ restartedBy: "runtime", restartCount: 1 });

    // Declared stopped: the job is stopped and stays listed, dead; the record reads stopped.
    declare({ desiredState: "stopped", stopReason: "finished" });
    await r.reconcile("g1");
    expect(jobs.calls.at(-1)).toBe("stop alloc-2");
    expect(await jobs.listForGame("g1")).toMatchObject([{ id: "alloc-2", phase: "exited" }]);
    expect(world.records.get("g1")).toMatchObject({ status: "stopped", observedGeneration: 3 });
  });

  it("a Pod restart whose old Pod is held terminating is split: the delete, then a look without acting, then the new Pod once the old is gone, still a gated restart", async () => {
    const pods = new StubPodRuntime();
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    let now = NOW;
    const r = reconciler(world, { runtimeInstance: pods, clock: () => now });
    await r.reconcile("g1");
    const [first] = await pods.listForGame("g1");
    expect(world.records.get("g1")).toMatchObject({ observedGeneration: 1, status: "running", currentContainerId: first!.id });

    world.declarations.set("g1", { ...declaration("g1"), generation: 2, restartToken: "t2" });
    pods.holdDeletions = true;
    pods.calls.length = 0;
    const split = await r.reconcile("g1");
    // The old Pod's deletion was accepted; its name is still taken, so no create, no gate, and the generation not reached.
    expect(pods.calls).toEqual(["list", "stop", "remove", "list", "list"]);
    expect(split.outcome).toEqual({ type: "requeue", afterMs: 2000 });
    expect(world.records.get("g1")).toMatchObject({ observedGeneration: 1, currentContainerId: first!.id });
    expect(await pods.listForGame("g1")).toMatchObject([{ id: first!.id, terminating: true }]);

    pods.calls.length = 0;
    const waiting = await r.reconcile("g1");
    expect(pods.calls).toEqual(["list"]);
    expect(waiting.outcome).toEqual({ type: "requeue", afterMs: 2000 });
    expect(waiting.plan?.reason).toContain("deleting engine");

    pods.releaseDeletions();
    const created = await r.reconcile("g1");
    const [second] = await pods.listForGame("g1");
    expect(second).toMatchObject({ restartToken: "t2", phase: "running", terminating: false });
    expect(second!.id).not.toBe(first!.id);
    // The second half is the restart it was (its kind, cause and health gate), not a plain start.
    expect(created.plan).toMatchObject({ kind: "restart", restartCause: "restart_requested", gate: { rollbackTo: null } });
    expect(created.outcome).toMatchObject({ type: "requeue", lane: "gate" });
    expect(created.record).toMatchObject({ observedGeneration: 1, currentContainerId: second!.id });
    now = new Date(NOW.getTime() + 6000);
    const healthy = await r.reconcile("g1");
    expect(healthy.outcome).toEqual({ type: "done" });
    expect(healthy.record).toMatchObject({ observedGeneration: 2, status: "running", currentContainerId: second!.id, rolloutStartedAt: null });
    expect([...world.operations!.values()].map((o) => [o.op.kind, o.result?.outcome])).toEqual([
      ["start", "success"],
      ["restart", "success"],
      ["restart", "success"],
    ]);
  });
});

describe("reconciler: a runtime call that deleted an engine held terminating (EngineStillTerminating)", () => {
  it("an in-place patch whose finished Pod a finalizer holds is split: no error, then the new Pod as the same patch, gated, its rollback a replace", async () => {
    const pods = new StubPodRuntime();
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    let now = NOW;
    const r = reconciler(world, { runtimeInstance: pods, clock: () => now });
    await r.reconcile("g1");
    const [first] = await pods.listForGame("g1");

    // The Pod finished under the patch: the runtime deletes it to recreate it, and a finalizer holds it.
    pods.updateImage = async (id) => {
      pods.holdDeletions = true;
      await pods.remove(id, { succeeded: true });
      throw new EngineStillTerminating("updateImage", "the finished Pod is still being deleted", { gameId: "g1" });
    };
    world.declarations.set("g1", { ...declaration("g1"), generation: 2, imageRef: "galaxy/engine:1.0.1" });
    const split = await r.reconcile("g1");
    expect(split.outcome).toEqual({ type: "requeue", afterMs: 2000 });
    expect(world.records.get("g1")).toMatchObject({ observedGeneration: 1, lastErrorCode: null });

    const waiting = await r.reconcile("g1");
    expect(waiting.plan?.reason).toContain("deleting engine");

    pods.releaseDeletions();
    const created = await r.reconcile("g1");
    const [second] = await pods.listForGame("g1");
    expect(second).toMatchObject({ imageRef: "galaxy/engine:1.0.1", phase: "running", terminating: false });
    expect(second!.id).not.toBe(first!.id);
    expect(created.plan).toMatchObject({ kind: "patch", gate: { rollbackTo: "galaxy/engine:1.0.0", resumed: false } });
    // The in-place rollback named the Pod that is gone: the successor's rollback replaces whatever runs then.
    expect(created.plan?.gate?.rollback.map((a) => a.type)).toEqual(["removeAll", "create", "start"]);
    expect(created.outcome).toMatchObject({ type: "requeue", lane: "gate" });
    now = new Date(NOW.getTime() + 6000);
    const healthy = await r.reconcile("g1");
    expect(healthy.outcome).toEqual({ type: "done" });
    expect(healthy.record).toMatchObject({ observedGeneration: 2, status: "running", currentImageRef: "galaxy/engine:1.0.1", currentContainerId: second!.id });
    expect([...world.operations!.values()].map((o) => [o.op.kind, o.result?.outcome])).toEqual([
      ["start", "success"],
      ["patch", "success"],
      ["patch", "success"],
    ]);
  });
});

describe("reconciler: a stop sent between the two halves of a split Pod replace", () => {
  it("the game reads stopped once the old Pod is gone, with its last engine (image, stop time), and no new Pod is made", async () => {
    const pods = new StubPodRuntime();
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    const r = reconciler(world, { runtimeInstance: pods, clock: () => NOW });
    await r.reconcile("g1");
    const [first] = await pods.listForGame("g1");

    // A restart whose old Pod a finalizer holds: the first half deletes it and leaves the create.
    world.declarations.set("g1", { ...declaration("g1"), generation: 2, restartToken: "t2" });
    pods.holdDeletions = true;
    await r.reconcile("g1");
    expect(await pods.listForGame("g1")).toMatchObject([{ id: first!.id, terminating: true }]);

    // Before the second half, the game is stopped.
    world.declarations.set("g1", { ...declaration("g1"), generation: 3, restartToken: "t2", desiredState: "stopped", stopReason: "admin_request" });
    const waiting = await r.reconcile("g1");
    expect(waiting.plan?.reason).toContain("deleting engine");
    expect(world.records.get("g1")?.observedGeneration).toBe(1);

    pods.releaseDeletions();
    pods.calls.length = 0;
    await r.reconcile("g1");
    expect(pods.calls.filter((c) => c !== "list")).toEqual([]);
    expect(world.records.get("g1")).toMatchObject({ status: "stopped", observedGeneration: 3, currentImageRef: "galaxy/engine:1.0.0", removedAt: null });
    expect(world.records.get("g1")?.stoppedAt).toBeInstanceOf(Date);
  });
});

describe("reconciler: a split Pod replace whose second half cannot create the new Pod", () => {
  it("is rolled back to the old image, as the same replace unsplit would be: the patch's generation held, the old image running", async () => {
    const pods = new StubPodRuntime();
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    const r = reconciler(world, { runtimeInstance: pods, clock: () => NOW });
    await r.reconcile("g1");

    world.declarations.set("g1", { ...declaration("g1"), generation: 2, imageRef: "galaxy/engine:1.0.1", env: { MODE: "b" } });
    pods.holdDeletions = true;
    await r.reconcile("g1");
    pods.releaseDeletions();

    // The API server refuses the new Pod (an admission webhook, say).
    const create = pods.create.bind(pods);
    pods.create = async (spec) => {
      if (spec.imageRef === "galaxy/engine:1.0.1") throw new RuntimeFailure("config_refused", "create", "admission webhook denied the Pod", { status: 422 });
      return create(spec);
    };
    const second = await r.reconcile("g1");
    expect(second.plan).toMatchObject({ kind: "patch" });
    expect(second.outcome).toMatchObject({ type: "error", error: { code: "container_start_failed" } });
    expect(world.events.map((e) => e.type)).toContain("patch_rolled_back");
    expect(await pods.listForGame("g1")).toMatchObject([{ imageRef: "galaxy/engine:1.0.0", phase: "running", terminating: false }]);
    expect(world.records.get("g1")).toMatchObject({ status: "running", currentImageRef: "galaxy/engine:1.0.0", heldGeneration: 2 });

    // Held: the next look keeps the restored engine and creates nothing (the split is done with).
    const [restored] = await pods.listForGame("g1");
    pods.calls.length = 0;
    await r.reconcile("g1");
    expect(pods.calls.filter((c) => c !== "list")).toEqual([]);
    expect(await pods.listForGame("g1")).toMatchObject([{ id: restored!.id, imageRef: "galaxy/engine:1.0.0" }]);
  });
});

describe("reconciler: a failover between the two halves of a split Pod replace", () => {
  it("the new leader, which never saw the first half, creates the new Pod as a start: on the declared image, no patch gate, no rollback", async () => {
    const pods = new StubPodRuntime();
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    const r = reconciler(world, { runtimeInstance: pods, clock: () => NOW });
    await r.reconcile("g1");
    const [first] = await pods.listForGame("g1");

    // A patch that recreates (env changes with the image): the old Pod is held, the first half leaves the create.
    world.declarations.set("g1", { ...declaration("g1"), generation: 2, imageRef: "galaxy/engine:1.0.1", env: { MODE: "b" } });
    pods.holdDeletions = true;
    const half = await r.reconcile("g1");
    expect(half.plan).toMatchObject({ kind: "patch", gate: { rollbackTo: "galaxy/engine:1.0.0" } });
    pods.releaseDeletions();

    // Another process takes over: what the first half was lived in the old one's memory only.
    const next = reconciler(world, { runtimeInstance: pods, clock: () => NOW });
    const created = await next.reconcile("g1");
    const [second] = await pods.listForGame("g1");
    expect(second).toMatchObject({ imageRef: "galaxy/engine:1.0.1", phase: "running" });
    expect(second!.id).not.toBe(first!.id);
    expect(created.plan).toMatchObject({ kind: "start", gate: null, restartCause: null });
    expect(created.record).toMatchObject({ status: "running", observedGeneration: 2, currentImageRef: "galaxy/engine:1.0.1" });
  });
});

describe("reconciler: a patch sent into another operation's open health gate", () => {
  it("gets a gate of its own: the record's rollback target is the patch's, not the restart's (none) or an older patch's, and a failed patch rolls back", async () => {
    const pods = new StubPodRuntime();
    const world: World = { declarations: new Map([["g1", declaration("g1")]]), containers: [], records: new Map(), events: [], operations: new Map() };
    let now = NOW.getTime();
    let healthy = true;
    const prober: HealthProber = { probe: async () => ({ ok: healthy, statusCode: healthy ? 200 : 503, error: healthy ? null : "HTTP 503", latencyMs: 1 }) };
    const r = reconciler(world, { runtimeInstance: pods, prober, clock: () => new Date(now), settings: { patchMinHealthyMs: 1000, patchHealthTimeoutMs: 10_000 } });
    const declare = (over: Partial<Declaration>) => world.declarations.set("g1", { ...world.declarations.get("g1")!, ...over });
    const passGate = async () => {
      now += 2000;
      expect((await r.reconcile("g1")).outcome).toEqual({ type: "done" });
    };
    await r.reconcile("g1");

    // A patch 1.0.0 -> 1.0.1 that passes its gate: 1.0.0 is the image it could have rolled back to.
    declare({ generation: 2, imageRef: "galaxy/engine:1.0.1" });
    await r.reconcile("g1");
    await passGate();
    expect(world.records.get("g1")).toMatchObject({ currentImageRef: "galaxy/engine:1.0.1", previousImageRef: "galaxy/engine:1.0.0" });

    // A restart: its gate has no rollback, and the record must not say 1.0.0 while it is open.
    declare({ generation: 3, restartToken: "t3" });
    const restart = await r.reconcile("g1");
    expect(restart.plan?.kind).toBe("restart");
    expect(restart.outcome).toMatchObject({ type: "requeue", lane: "gate" });
    expect(world.records.get("g1")).toMatchObject({ previousImageRef: null, rolloutStartedAt: new Date(now) });

    // Into that open gate, a patch to 1.0.2 on the same Pod (in place): a gate of its own, from now, rolling back to 1.0.1.
    now += 500;
    declare({ generation: 4, imageRef: "galaxy/engine:1.0.2" });
    const patch = await r.reconcile("g1");
    expect(patch.plan).toMatchObject({ kind: "patch", gate: { rollbackTo: "galaxy/engine:1.0.1" } });
    expect(patch.plan?.actions.map((a) => a.type)).toEqual(["updateImage"]);
    expect(world.records.get("g1")).toMatchObject({ currentImageRef: "galaxy/engine:1.0.2", previousImageRef: "galaxy/engine:1.0.1", rolloutStartedAt: new Date(now) });
    const rows = [...world.operations!.values()];
    expect(rows.find((o) => o.op.kind === "restart" && o.result)?.result?.outcome).toBe("interrupted");

    // 1.0.2 never gets healthy: the resumed gate is the patch's, and it rolls back to 1.0.1.
    healthy = false;
    now += 11_000;
    const verdict = await r.reconcile("g1");
    expect(verdict.outcome).toMatchObject({ type: "error", error: { code: "container_start_failed" } });
    expect((verdict.outcome as { error: Error }).error.message).toMatch(/^patch to galaxy\/engine:1\.0\.2 failed: .*rolled back to galaxy\/engine:1\.0\.1$/);
    expect(verdict.record).toMatchObject({ currentImageRef: "galaxy/engine:1.0.1", heldGeneration: 4 });
    expect(world.events.map((e) => e.type)).toContain("patch_rolled_back");
  });
});
