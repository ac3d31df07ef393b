/**
 * Cancellation as a signal (issue 18 part 3), through the real Manager,
 * elector, queue, reconciler, rollout and executor over fakes, on fake time:
 * a lost term or a shutdown fires the reconcile's AbortSignal, the runtime
 * call in flight sees it and gives up at once, and the aborted reconcile
 * writes nothing (no record, no events, no verdict).
 */
import { describe, expect, it } from "vitest";
import { Manager } from "../../src/controller/manager.js";
import type { ReconcileResult } from "../../src/controller/reconciler.js";
import { createLogger } from "../../src/log.js";
import type { Declaration } from "../../src/model/declaration.js";
import type { CallOptions, DeclarationSource, EngineSpec, HealthProber, Lease, ObservedContainer, ReconcileCommit, StateStore } from "../../src/model/ports.js";
import type { NewOperation, NewRuntimeEvent, RuntimeRecord } from "../../src/model/record.js";
import { fastSettings } from "../helpers/controller.js";
import { elapse, settle, until, useFakeTime } from "../helpers/fakeTime.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";
import { observedContainer, runtimeRecord } from "../helpers/fixtures.js";

useFakeTime();

const OLD = "galaxy/engine:1.0.0";
const NEW = "galaxy/engine:1.0.1";
const RENEW_DEADLINE_MS = 2000;

/** A lease that grants while `granting`; once `hanging`, a renewal never answers (an API server or database gone quiet). */
class TestLease implements Lease {
  hanging = false;
  renewals = 0;
  tryAcquire(_holder: string, _ms: number, signal?: AbortSignal): Promise<boolean> {
    if (!this.hanging) {
      this.renewals++;
      return Promise.resolve(true);
    }
    return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
  }
  release(): Promise<void> {
    return Promise.resolve();
  }
}

/** A slow runtime call: settles only when its signal fires, and then as the AbortError it was given. */
interface SlowCall {
  signal: AbortSignal | undefined;
  abortedAt: number | null;
}

function world() {
  const declarations = new Map<string, Declaration>();
  const records = new Map<string, RuntimeRecord>();
  const commits: ReconcileCommit[] = [];
  const events: NewRuntimeEvent[] = [];
  const operations: NewOperation[] = [];
  const containers: ObservedContainer[] = [];
  const calls: string[] = [];
  const slow = { start: false };
  const slowCalls: SlowCall[] = [];
  let healthy = true;
  let probes = 0;
  let seq = 0;

  const source = {
    get: async (id: string) => declarations.get(id) ?? null,
    listGameIds: async () => [...declarations.keys()],
    mutate: () => Promise.reject(new Error("not in this test")),
    delete: async () => false,
    watch: async () => async () => undefined,
  } satisfies DeclarationSource;

  const state = {
    markInterruptedOperations: async () => [],
    listRecords: async () => [...records.values()],
    getRecord: async (id: string) => records.get(id) ?? null,
    putRecord: async (r: RuntimeRecord) => void records.set(r.gameId, r),
    startOperation: async (op: NewOperation) => (operations.push(op), operations.length),
    finishOperation: async () => undefined,
    appendEvent: async (e: NewRuntimeEvent) => (events.push(e), { ...e, seq: events.length, at: new Date() }),
    commitReconcile: async (c: ReconcileCommit) => {
      commits.push(c);
      events.push(...c.events);
      if (c.record) records.set(c.record.gameId, c.record);
      return [];
    },
  } as Partial<StateStore> as StateStore;

  const find = (id: string) => containers.find((c) => c.id === id)!;
  const slowCall = (o: CallOptions | undefined): Promise<void> => {
    const call: SlowCall = { signal: o?.signal, abortedAt: null };
    slowCalls.push(call);
    return new Promise((_, reject) =>
      o?.signal?.addEventListener(
        "abort",
        () => {
          call.abortedAt = performance.now();
          reject(o.signal!.reason as Error);
        },
        { once: true },
      ),
    );
  };
  const runtime = fakeRuntime(
    { name: "docker", engines: () => containers },
    {
      listManaged: async () => containers.map((c) => ({ ...c })),
      listForGame: async (id: string) => containers.filter((c) => c.gameId === id).map((c) => ({ ...c })),
      create: async (spec: EngineSpec) => {
        const id = `c${++seq}`;
        calls.push(`create ${spec.imageRef}`);
        containers.push(observedContainer({ id, gameId: spec.gameId, imageRef: spec.imageRef, generation: spec.generation, phase: "pending", startedAt: null }));
        return id;
      },
      start: async (id: string, o?: CallOptions) => {
        calls.push(`start ${id}`);
        if (slow.start) return slowCall(o);
        Object.assign(find(id), { phase: "running", startedAt: new Date() });
      },
      stop: async (id: string) => {
        calls.push(`stop ${id}`);
        Object.assign(find(id), { phase: "exited", exitCode: 0 });
      },
      remove: async (id: string) => {
        calls.push(`remove ${id}`);
        containers.splice(containers.indexOf(find(id)), 1);
      },
      probeAddress: (c: ObservedContainer) => `127.0.0.1:${c.id}`,
    },
  );

  const prober: HealthProber = {
    probe: async () => {
      probes++;
      return { ok: healthy, statusCode: healthy ? 200 : 503, error: healthy ? null : "HTTP 503", latencyMs: 1 };
    },
  };

  const outcomes: ReconcileResult[] = [];
  const manager = (lease?: Lease, over: Parameters<typeof fastSettings>[0] extends infer S ? Partial<S> : never = {}) =>
    new Manager({
      source,
      state,
      runtime,
      prober,
      lease,
      identity: "me",
      logger: createLogger("silent", "test-reconcile-abort"),
      settings: fastSettings({
        instanceId: "rtm",
        engineNetwork: "galaxy-net",
        stateRoot: "/nonexistent",
        renewDeadlineMs: RENEW_DEADLINE_MS,
        leaseDurationMs: 3000,
        retryPeriodMs: 300,
        resyncIntervalMs: 600_000,
        probeIntervalMs: 600_000,
        ...over,
      }),
      hooks: { onReconcile: (r) => void outcomes.push(r) },
    });

  return {
    declarations,
    records,
    commits,
    events,
    operations,
    containers,
    calls,
    slow,
    slowCalls,
    outcomes,
    manager,
    setHealthy: (ok: boolean) => (healthy = ok),
    probes: () => probes,
  };
}

function declaration(imageRef: string, generation = 1): Declaration {
  const at = new Date();
  return { gameId: "g1", imageRef, desiredState: "running", restartPolicy: "on-failure", generation, opId: null, opSource: "sql", createdAt: at, updatedAt: at };
}

const abortedOutcome = { type: "error", terminal: false, error: { code: "service_unavailable" } };

describe("a reconcile's AbortSignal", () => {
  it("lost leadership during a slow runtime call aborts the call by the renew deadline, and the reconcile writes no record and no events", async () => {
    const w = world();
    w.declarations.set("g1", declaration(OLD));
    w.slow.start = true;
    const lease = new TestLease();
    const m = w.manager(lease);
    await m.start();
    await until("the start call in flight", () => w.slowCalls.length === 1);
    const call = w.slowCalls[0]!;
    expect(call.signal?.aborted).toBe(false);

    // The lease stops answering; the last renewal was at most one retry period ago.
    const lastRenewals = lease.renewals;
    lease.hanging = true;
    const hungAt = performance.now();
    await until("the start call aborted", () => call.abortedAt !== null, 2 * RENEW_DEADLINE_MS);
    expect(call.abortedAt! - hungAt).toBeLessThanOrEqual(RENEW_DEADLINE_MS);
    expect(lease.renewals).toBe(lastRenewals);
    expect(call.signal?.reason).toMatchObject({ name: "AbortError", message: expect.stringMatching(/lost leadership/) });

    await until("the reconcile returned", () => w.outcomes.length === 1);
    expect(w.outcomes[0]!.outcome).toMatchObject(abortedOutcome);
    expect(w.outcomes[0]!.record).toBeNull();
    // The row it opened stays `running` for the next leader to mark interrupted; nothing else was written.
    expect(w.operations.map((o) => o.kind)).toEqual(["start"]);
    expect(w.commits).toEqual([]);
    expect(w.records.size).toBe(0);
    expect(w.events).toEqual([]);
    expect(w.calls).toEqual([`create ${OLD}`, "start c1"]);
    await until("stepped down", () => !m.isLeader);
    await settle("stop", m.stop());
  });

  it("a shutdown aborts the reconcile in flight at once instead of waiting out the runnables' stop bound", async () => {
    const w = world();
    w.declarations.set("g1", declaration(OLD));
    w.slow.start = true;
    const m = w.manager();
    await m.start();
    await until("the start call in flight", () => w.slowCalls.length === 1);

    // Without the signal the stop would wait for the workers up to DEFAULT_RUNNABLE_STOP_TIMEOUT_MS (20 s).
    const stopped = await settle("the shutdown", m.stop(), 3000);
    expect(stopped.tookMs).toBeLessThanOrEqual(50);
    expect(w.slowCalls[0]!.abortedAt).not.toBeNull();
    expect(w.slowCalls[0]!.signal?.reason).toMatchObject({ name: "AbortError", message: expect.stringMatching(/shutting down/) });
    expect(w.outcomes).toHaveLength(1);
    expect(w.outcomes[0]!.outcome).toMatchObject(abortedOutcome);
    expect(w.commits).toEqual([]);
    expect(w.records.size).toBe(0);
  });

  it("lost leadership while a health gate waits in the queue: no verdict, no rollback, the interim record stays", async () => {
    const w = world();
    // Game g1 runs OLD at generation 1; generation 2 patches it to NEW, whose engine never turns healthy.
    w.containers.push(observedContainer({ id: "c-old", gameId: "g1", imageRef: OLD, generation: 1 }));
    w.records.set("g1", runtimeRecord({ gameId: "g1", currentContainerId: "c-old", currentImageRef: OLD, observedGeneration: 1 }));
    w.declarations.set("g1", declaration(NEW, 2));
    w.setHealthy(false);
    const lease = new TestLease();
    const m = w.manager(lease, { patchHealthTimeoutMs: 4000, patchMinHealthyMs: 1000 });
    await m.start();

    // The gate is open: interim record written, then checked again from the gate lane.
    await until("the interim record", () => w.records.get("g1")?.rolloutStartedAt != null);
    const checked = w.probes();
    await until("two more gate checks", () => w.probes() >= checked + 2);
    const gateOpenAt = performance.now();
    lease.hanging = true;
    await until("stepped down", () => !m.isLeader, 2 * RENEW_DEADLINE_MS);
    // Well past the gate's deadline: had this replica still judged it, it would have rolled back.
    await elapse(4000);
    expect(performance.now() - gateOpenAt).toBeGreaterThan(4000);

    expect(w.calls.filter((c) => c.startsWith("create"))).toEqual([`create ${NEW}`]);
    expect(w.events.map((e) => e.type)).not.toContain("patch_rolled_back");
    expect(w.operations.map((o) => o.kind)).not.toContain("rollback");
    const record = w.records.get("g1")!;
    expect(record.rolloutStartedAt).not.toBeNull();
    expect(record.observedGeneration).toBe(1);
    expect(record.lastErrorCode).toBeNull();
    expect(w.containers.map((c) => [c.imageRef, c.phase])).toEqual([[NEW, "running"]]);
    await settle("stop", m.stop());
  });
});
