/**
 * The rollout over fakes (no Docker, no database, a clock the test moves):
 * the health gate's checks, one per reconcile, its verdicts and the plan's
 * rollback, run through the real action executor.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { executeActions } from "../../src/controller/actions.js";
import { plan, type Action, type Plan } from "../../src/controller/planner.js";
import { ReconcileScope } from "../../src/controller/reconcileScope.js";
import { GATE_CHECK_MAX_INTERVAL_MS, GATE_CHECK_MIN_INTERVAL_MS, gateCheckIntervalMs, Rollout, type OpenGate, type RolloutInput, type RolloutStep, type RolloutVerdict } from "../../src/controller/rollout.js";
import type { Declaration } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";
import type { HealthProber, ObservedContainer, StateStore } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import type { NewOperation, OperationResult } from "../../src/model/record.js";
import { createLogger } from "../../src/log.js";
import { DOCKER_VERBS, observedContainer, PLANNER_SETTINGS, POD_VERBS, runtimeRecord } from "../helpers/fixtures.js";
import { fakeRuntime, type FakeRuntime } from "../helpers/fakeRuntime.js";

const NOW = new Date("2026-11-23T12:00:00Z");
const OLD = "galaxy/engine:1.0.0";
const NEW = "galaxy/engine:1.0.1";
const stateRoot = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-rollout-"));
afterAll(() => fs.rm(stateRoot, { recursive: true, force: true }));

const settings = {
  ...PLANNER_SETTINGS,
  patchMinHealthyMs: 0,
  patchHealthTimeoutMs: 300,
  imagePullPolicy: "if_not_present" as const,
  stopTimeoutMs: 1000,
  engineNetwork: "galaxy-net",
  stateRoot,
  defaultCpus: 1,
  defaultMemoryBytes: 64 * 1024 * 1024,
  defaultPidsLimit: 64,
  probeTimeoutMs: 100,
};

/** A Docker engine in memory: the shared FakeRuntime, whose images are there or not (nothing can be pulled). */
class FakeDocker {
  containers: ObservedContainer[] = [];
  images = new Set([OLD, NEW]);
  readonly port: FakeRuntime = fakeRuntime(
    { engines: () => this.containers, now: NOW },
    {
      ensureImage: async (ref) => {
        if (!this.images.has(ref)) throw new RuntimeFailure("image_not_found", "pull", `image ${ref} not found`);
      },
      probeAddress: (c) => `127.0.0.1:${c.id}`,
    },
  );
  get calls(): string[] {
    return this.port.calls;
  }
}

function world(probeOk: () => boolean, mayAct?: () => boolean) {
  const docker = new FakeDocker();
  const operations: { op: NewOperation; result?: OperationResult }[] = [];
  const state = {
    startOperation: async (op: NewOperation) => operations.push({ op }),
    finishOperation: async (id: number, result: OperationResult) => void (operations[id - 1]!.result = result),
  } as unknown as StateStore;
  let probes = 0;
  const prober: HealthProber = {
    probe: async () => {
      probes++;
      const ok = probeOk();
      return { ok, statusCode: ok ? 200 : 503, error: ok ? null : "HTTP 503", latencyMs: 1 };
    },
  };
  const clock = new TestClock();
  const rollout = new Rollout({ settings, clock: () => clock.now() });
  // What the reconciler hands the rollout: its runtime, store and prober, fenced by `mayAct`.
  const scope = new ReconcileScope({ runtime: docker.port, state, prober, source: { get: async () => null }, mayAct });
  return { docker, operations, rollout, io: scope.io, clock, probes: () => probes };
}

/** The rollout's clock; only the test moves it. */
class TestClock {
  private t = NOW.getTime();
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/**
 * What the reconciler does with a gate: one step, and while it is pending,
 * the next step after `afterMs` (the gate lane's requeue), continuing the
 * gate this process holds open. `between` runs between two steps.
 */
async function drive(
  w: { rollout: Rollout; clock: TestClock },
  first: RolloutInput,
  between: (steps: number) => void = () => undefined,
): Promise<{ verdict: RolloutVerdict; steps: RolloutStep[] }> {
  const steps: RolloutStep[] = [];
  let input = first;
  let open: OpenGate | undefined;
  for (;;) {
    const step = await w.rollout.run(input, open);
    steps.push(step);
    if (step.type === "verdict") return { verdict: step.verdict, steps };
    expect(step.afterMs).toBeLessThanOrEqual(gateCheckIntervalMs(input.gate.minHealthyMs));
    w.clock.advance(step.afterMs);
    between(steps.length);
    // The next reconcile plans the resumed gate (no actions) and continues this process's open gate.
    const plan = { ...input.plan, actions: [], gate: { ...input.gate, resumed: true } };
    open = w.rollout.continuing(input.gameId, plan, input.declaration.generation);
    expect(open).toBeDefined();
    input = { ...input, plan, gate: plan.gate, actionError: null };
  }
}

function declaration(imageRef: string): Declaration {
  return { gameId: "g1", imageRef, desiredState: "running", restartPolicy: "on-failure", generation: 3, opId: "op", opSource: "gm_rest", createdAt: NOW, updatedAt: NOW };
}

/** Plans a patch OLD -> NEW over the fake world and runs its actions: the rollout's first input. */
async function patchInput(w: ReturnType<typeof world>, over: Partial<RolloutInput> = {}): Promise<RolloutInput> {
  w.docker.containers.push(observedContainer({ id: "c-old", gameId: "g1", imageRef: OLD }, NOW));
  const d = declaration(NEW);
  const previous = runtimeRecord({ currentContainerId: "c-old", observedGeneration: 2 }, NOW);
  const p: Plan = plan({ gameId: "g1", declaration: d, declarationError: null, containers: w.docker.containers, record: previous, health: null, now: NOW, settings, verbs: DOCKER_VERBS });
  expect(p.gate?.rollbackTo).toBe(OLD);
  const touched = new Set<string>();
  const execute = (actions: readonly Action[], before?: (a: Action) => void) =>
    executeActions(actions, {
      runtime: w.io.runtime,
      declaration: d,
      gameId: "g1",
      settings,
      observer: {
        onAction: () => undefined,
        beforeAction: (a) => {
          if (a.type === "stop" || a.type === "remove") touched.add(a.containerId);
          before?.(a);
        },
      },
    });
  let actionError: RtmError | null = null;
  await execute(p.actions).catch((err: RtmError) => (actionError = err));
  const input: RolloutInput = {
    gameId: "g1",
    declaration: d,
    plan: p,
    gate: p.gate!,
    actionError,
    oldTouched: touched.has("c-old"),
    now: NOW,
    opId: "op",
    opRow: null,
    execute,
    log: createLogger("silent"),
    io: w.io,
    ...over,
  };
  return input;
}

async function patch(w: ReturnType<typeof world>, over: Partial<RolloutInput> = {}): Promise<RolloutVerdict> {
  return (await drive(w, await patchInput(w, over))).verdict;
}

describe("rollout", () => {
  it("a healthy engine passes the gate at its first check when no healthy window is asked for", async () => {
    const w = world(() => true);
    const { verdict, steps } = await drive(w, await patchInput(w));
    expect(verdict).toEqual({ error: null, aborted: false, held: false, degraded: false, events: [] });
    expect(steps).toHaveLength(1);
    expect(w.docker.containers.map((c) => c.imageRef)).toEqual([NEW]);
  });

  it("each step is one check: a pending gate made one probe and hands back the engine for the interim record", async () => {
    const w = world(() => false);
    const input = await patchInput(w);
    const step = await w.rollout.run(input);
    expect(w.probes()).toBe(1);
    expect(step).toMatchObject({ type: "pending", afterMs: gateCheckIntervalMs(input.gate.minHealthyMs), engine: { imageRef: NEW, phase: "running" } });
    // Nothing was rolled back or written by the check itself.
    expect(w.operations).toEqual([]);
  });

  it("a 5 s healthy window is checked once a second, and its verdict comes when the window ends, not a check later", async () => {
    expect([gateCheckIntervalMs(1000), gateCheckIntervalMs(2500), gateCheckIntervalMs(5000), gateCheckIntervalMs(60_000)]).toEqual([GATE_CHECK_MIN_INTERVAL_MS, 500, GATE_CHECK_MAX_INTERVAL_MS, GATE_CHECK_MAX_INTERVAL_MS]);
    const w = world(() => true);
    const first = await patchInput(w, {});
    const gate = { ...first.gate, minHealthyMs: 5000, timeoutMs: 60_000 };
    const { verdict, steps } = await drive(w, { ...first, gate });
    expect(verdict.error).toBeNull();
    // Checks at 0, 1, 2, 3, 4 and 5 s (20 at the old flat 250 ms).
    expect(steps.map((s) => (s.type === "pending" ? s.afterMs : "verdict"))).toEqual([1000, 1000, 1000, 1000, 1000, "verdict"]);
    expect(w.probes()).toBe(6);

    // A 5.5 s window: the last wait is cut to the window's end (500 ms), not a whole interval past it.
    const longer = world(() => true);
    const input = await patchInput(longer, {});
    const out = await drive(longer, { ...input, gate: { ...gate, minHealthyMs: 5500 } });
    expect(out.verdict.error).toBeNull();
    expect(out.steps.map((s) => (s.type === "pending" ? s.afterMs : "verdict"))).toEqual([1000, 1000, 1000, 1000, 1000, 500, "verdict"]);
  });

  it("the healthy window runs over the steps of one process; a resumed gate (a restart, a new term) starts it again, never shorter", async () => {
    const w = world(() => true);
    const first = await patchInput(w, {});
    const gate = { ...first.gate, minHealthyMs: 1000, timeoutMs: 10_000 };
    const { verdict, steps } = await drive(w, { ...first, gate });
    expect(verdict.error).toBeNull();
    // Healthy from the first check at t=0: the verdict comes at the check at t >= 1000 ms.
    expect(steps.length).toBe(1000 / GATE_CHECK_MIN_INTERVAL_MS + 1);

    const again = world(() => true);
    const input = { ...(await patchInput(again)), gate };
    expect((await again.rollout.run(input)).type).toBe("pending");
    again.clock.advance(750);
    // This process forgets the gate (a new term): the next check resumes from the record alone.
    again.rollout.forgetAll();
    const resumedPlan = { ...input.plan, actions: [], gate: { ...gate, resumed: true } };
    expect(again.rollout.continuing("g1", resumedPlan, 3)).toBeUndefined();
    const resumed = { ...input, plan: resumedPlan, gate: resumedPlan.gate };
    expect((await again.rollout.run(resumed)).type).toBe("pending");
    again.clock.advance(750);
    const open = again.rollout.continuing("g1", resumedPlan, 3);
    // 1500 ms after the first healthy probe, but only 750 ms into the resumed window.
    expect((await again.rollout.run(resumed, open)).type).toBe("pending");
    again.clock.advance(250);
    expect(await again.rollout.run(resumed, again.rollout.continuing("g1", resumedPlan, 3))).toMatchObject({ type: "verdict", verdict: { error: null } });
  });

  it("a fresh gate's deadline runs from when it opens, after the plan's actions, not from when the reconcile planned", async () => {
    const w = world(() => false);
    const input = await patchInput(w);
    // The swap took longer than the whole gate (a slow stop under load).
    w.clock.advance(settings.patchHealthTimeoutMs + 1000);
    const step = await w.rollout.run(input);
    expect(step).toMatchObject({ type: "pending", since: w.clock.now() });
  });

  it("a gate of another generation is not continued", async () => {
    const w = world(() => false);
    const input = await patchInput(w);
    await w.rollout.run(input);
    const resumedPlan = { ...input.plan, actions: [], gate: { ...input.gate, resumed: true } };
    expect(w.rollout.continuing("g1", resumedPlan, 3)).toBeDefined();
    expect(w.rollout.continuing("g1", resumedPlan, 4)).toBeUndefined();
    expect(w.rollout.continuing("g1", input.plan, 3)).toBeUndefined();
  });

  it("an engine that never gets healthy is rolled back with the plan's rollback: the old image runs, the generation is held", async () => {
    const w = world(() => false);
    const verdict = await patch(w);
    expect(verdict.held).toBe(true);
    expect(verdict.degraded).toBe(false);
    expect(verdict.error?.code).toBe("container_start_failed");
    expect(verdict.error?.message).toMatch(/rolled back to galaxy\/engine:1\.0\.0/);
    expect(verdict.events.map((e) => e.type)).toEqual(["patch_rolled_back"]);
    expect(w.docker.containers.map((c) => [c.imageRef, c.phase])).toEqual([[OLD, "running"]]);
    expect(w.operations.find((o) => o.op.kind === "rollback")?.result).toMatchObject({ outcome: "success" });
  });

  it("a rollback whose image is gone leaves the failing engine in place and the runtime degraded", async () => {
    const w2 = world(() => false);
    w2.docker.images.delete(OLD);
    const gone = await patch(w2);
    expect(gone.held).toBe(true);
    expect(gone.degraded).toBe(true);
    expect(gone.events.map((e) => e.type)).toEqual(["rollback_failed"]);
    expect(gone.error?.message).toMatch(/no longer present locally .*left in place\); the runtime is degraded/);
    expect(w2.docker.containers.map((c) => c.imageRef)).toEqual([NEW]);
  });

  it("a failed pull before the old engine was touched is no rollout failure: the error stands and no probe is made", async () => {
    const w = world(() => true);
    w.docker.images.delete(NEW);
    const verdict = await patch(w);
    expect(verdict).toMatchObject({ held: false, degraded: false, events: [] });
    expect(verdict.error?.code).toBe("image_pull_failed");
    expect(w.probes()).toBe(0);
    expect(w.docker.containers.map((c) => [c.id, c.phase])).toEqual([["c-old", "running"]]);
  });

  it("leadership lost during the gate aborts it without a verdict: no rollback, nothing held or degraded, the new engine left running", async () => {
    let probesSeen = 0;
    // Unhealthy, so without the abort the gate would time out into a rollback.
    const w = world(
      () => (probesSeen++, false),
      () => probesSeen < 2,
    );
    // The third check's first runtime call finds leadership gone: the check is cut short, no verdict at all.
    await expect(patch(w)).rejects.toMatchObject({ name: "AbortError" });
    expect(w.io.signal.aborted).toBe(true);
    expect(probesSeen).toBe(2);
    expect(w.docker.calls.filter((c) => c.startsWith("create"))).toEqual([`create ${NEW}`]);
    expect(w.operations.some((o) => o.op.kind === "rollback")).toBe(false);
    expect(w.docker.containers.map((c) => [c.imageRef, c.phase])).toEqual([[NEW, "running"]]);
  });

  it("leadership lost during the rollback aborts it: the runtime is not called degraded, and the rollback row is not closed", async () => {
    let leading = true;
    const w = world(() => false, () => leading);
    // The rollback's first action is where this replica finds it no longer leads.
    const realStop = w.docker.port.stop.bind(w.docker.port);
    w.docker.port.stop = async (id, t) => {
      await realStop(id, t);
      if (id !== "c-old") leading = false;
    };
    const verdict = await patch(w);
    expect(verdict).toMatchObject({ aborted: true, held: false, degraded: false, events: [] });
    expect(w.operations.find((o) => o.op.kind === "rollback")?.result).toBeUndefined();
  });

  it("a gate without a rollback target (a restart) fails to the restart policy, not held", async () => {
    const w = world(() => false);
    const verdict = await patch(w, { gate: { minHealthyMs: 0, timeoutMs: 200, rollbackTo: null, rollback: [], resumed: false } });
    expect(verdict.held).toBe(false);
    expect(verdict.error?.message).toMatch(/the restart policy takes over/);
    expect(w.docker.containers.map((c) => c.imageRef)).toEqual([NEW]);
  });
});

/**
 * A Pod runtime in memory: one engine whose image is swapped in place, and
 * what the kubelet does next scripted by `afterUpdate`, done when the test
 * calls `kubelet()` (its container id changes with each container,
 * readiness is the runtime's own).
 */
class FakePods {
  containers: ObservedContainer[] = [observedContainer({ id: "k-old", gameId: "g1", imageRef: OLD, ready: true, restartCount: 0 }, NOW)];
  calls: string[] = [];
  private pending: (() => void) | null = null;
  constructor(private readonly afterUpdate: (engine: ObservedContainer) => void) {}
  kubelet(): void {
    this.pending?.();
    this.pending = null;
  }
  readonly port: FakeRuntime = fakeRuntime(
    { name: "fake-pods", verbs: POD_VERBS, engines: () => this.containers, now: NOW },
    {
      ensureImage: async () => undefined,
      probeAddress: () => null,
      updateImage: async (id, spec) => {
        this.calls.push(`updateImage ${id} ${spec.imageRef}`);
        // The runtime finds the game's Pod from any id its engine had (podRuntime's locate).
        const c = this.containers[0]!;
        // Not ready while the old image still runs (observed.ts isReady); the kubelet acts a moment later.
        Object.assign(c, { imageRef: spec.imageRef, ready: false });
        this.pending = () => this.afterUpdate(c);
      },
      create: async (spec) => {
        this.calls.push(`create ${spec.imageRef}`);
        this.containers.push(observedContainer({ id: "k-recreated", gameId: spec.gameId, imageRef: spec.imageRef, ready: true, restartCount: 0 }, NOW));
        return "k-recreated";
      },
      start: async () => undefined,
      stop: async (id) => void this.calls.push(`stop ${id}`),
      remove: async (id) => {
        this.calls.push(`remove ${id}`);
        this.containers = this.containers.filter((c) => c.id !== id);
      },
    },
  );
}

async function patchInPlace(pods: FakePods) {
  const operations: { op: NewOperation; result?: OperationResult }[] = [];
  const state = {
    startOperation: async (op: NewOperation) => operations.push({ op }),
    finishOperation: async (id: number, result: OperationResult) => void (operations[id - 1]!.result = result),
  } as unknown as StateStore;
  const prober: HealthProber = { probe: async () => ({ ok: false, statusCode: null, error: "the gate must ask the runtime's readiness", latencyMs: 0 }) };
  const clock = new TestClock();
  const rollout = new Rollout({ settings, clock: () => clock.now() });
  const { io } = new ReconcileScope({ runtime: pods.port, state, prober, source: { get: async () => null } });
  const d = declaration(NEW);
  const previous = runtimeRecord({ currentContainerId: "k-old", observedGeneration: 2 }, NOW);
  const p = plan({ gameId: "g1", declaration: d, declarationError: null, containers: pods.containers, record: previous, health: null, now: NOW, settings, verbs: POD_VERBS });
  expect(p.actions).toEqual([{ type: "updateImage", containerId: "k-old", imageRef: NEW }]);
  const execute = (actions: readonly Action[]) => executeActions(actions, { runtime: io.runtime, declaration: d, gameId: "g1", settings, observer: { onAction: () => undefined } });
  await execute(p.actions);
  const input: RolloutInput = { gameId: "g1", declaration: d, plan: p, gate: p.gate!, actionError: null, oldTouched: true, now: NOW, opId: "op", opRow: null, execute, log: createLogger("silent"), io };
  // The kubelet acts after the first check: that check still sees the old container, not ready.
  const { verdict } = await drive({ rollout, clock }, input, () => pods.kubelet());
  return { verdict, operations };
}

describe("rollout of an in-place update (a Pod's image patched; issue 12)", () => {
  it("the container that ran the old image stopped (exit 0 on SIGTERM) and left stopped by the runtime is no exit of the new image: the engine is recreated on the new image, which passes", async () => {
    // The kubelet killed the old container for the new spec, its start of the new image failed, and under
    // OnFailure it never restarts a container that exited 0: the Pod reports the OLD container, exited, code 0.
    const pods = new FakePods((c) => Object.assign(c, { phase: "exited", exitCode: 0, ready: false, finishedAt: NOW }));
    const { verdict, operations } = await patchInPlace(pods);
    expect(verdict).toEqual({ error: null, aborted: false, held: false, degraded: false, events: [] });
    expect(pods.calls).toEqual([`updateImage k-old ${NEW}`, "remove k-old", `create ${NEW}`]);
    expect(pods.containers.map((c) => [c.id, c.imageRef, c.phase])).toEqual([["k-recreated", NEW, "running"]]);
    expect(operations).toEqual([]);
  });

  it("a real exit of the new image (a new container id) still fails the gate and is rolled back in place", async () => {
    // The kubelet started the new image, which exited at once: the Pod reports the NEW container, exited.
    const pods = new FakePods((c) => Object.assign(c, { id: "k-new", phase: "exited", exitCode: 0, ready: false, restartCount: 1, finishedAt: NOW }));
    const { verdict, operations } = await patchInPlace(pods);
    expect(verdict).toMatchObject({ held: true, degraded: false });
    expect(verdict.error?.message).toBe(`patch to ${NEW} failed: the engine exited (code 0) during the health gate; rolled back to ${OLD}`);
    expect(pods.calls).toEqual([`updateImage k-old ${NEW}`, `updateImage k-old ${OLD}`]);
    expect(operations.map((o) => [o.op.kind, o.result?.outcome])).toEqual([["rollback", "success"]]);
  });

  it("an image the kubelet cannot pull after the kill (pending, pull_failed) still fails the gate at once", async () => {
    const pods = new FakePods((c) => Object.assign(c, { phase: "pending", problem: { kind: "pull_failed", reason: "ErrImagePull", message: "not found", final: false }, exitCode: 0, ready: false }));
    const { verdict } = await patchInPlace(pods);
    expect(verdict.held).toBe(true);
    expect(verdict.error?.message).toMatch(/the engine stopped running during the health gate: ErrImagePull \(not found\); rolled back/);
    expect(pods.calls).not.toContain(`create ${NEW}`);
  });
});
