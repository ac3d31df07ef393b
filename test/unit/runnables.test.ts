/**
 * The Manager as a host of runnables: a group starts in order and stops in
 * reverse within a bound; leader runnables run only while this replica leads
 * (started on election, stopped on step-down, again on re-election), the
 * others always; a runnable that fails to start makes the leader step down and
 * try again. Fakes stand in for the store, the source and Docker.
 */
import { describe, expect, it, vi } from "vitest";
import { Manager, type Runnable } from "../../src/controller/manager.js";
import { RunnableGroup, RunnableStartError } from "../../src/controller/runnables/runnable.js";
import { createLogger } from "../../src/log.js";
import type { DeclarationSource, HealthProber, Lease, StateStore } from "../../src/model/ports.js";
import { fastSettings } from "../helpers/controller.js";
import { settle } from "../helpers/fakeTime.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";

const logger = createLogger("silent", "test-runnables");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Records start/stop into `log`; `failStarts` starts throw, `stopTakesMs` delays its stop. */
function recorder(log: string[], name: string, opts: { needsLeadership?: boolean; failStarts?: number; stopTakesMs?: number } = {}) {
  let failures = opts.failStarts ?? 0;
  const r = {
    name,
    needsLeadership: opts.needsLeadership ?? true,
    signal: null as AbortSignal | null,
    abortedBeforeStop: false,
    start(ctx: { signal: AbortSignal }) {
      if (failures > 0) {
        failures--;
        throw new Error(`${name} cannot start`);
      }
      r.signal = ctx.signal;
      log.push(`start ${name}`);
    },
    async stop() {
      r.abortedBeforeStop = r.signal?.aborted ?? false;
      log.push(`stop ${name}`);
      if (opts.stopTakesMs) await sleep(opts.stopTakesMs);
      log.push(`stopped ${name}`);
    },
  } satisfies Runnable & Record<string, unknown>;
  return r;
}

describe("RunnableGroup", () => {
  it("starts in order, stops in reverse, aborting each runnable's signal before its stop", async () => {
    const log: string[] = [];
    const group = new RunnableGroup(logger, 1000);
    const [a, b, c] = ["a", "b", "c"].map((n) => recorder(log, n));
    for (const r of [a!, b!, c!]) group.add(r);
    await group.start();
    expect(group.isRunning).toBe(true);
    expect(a!.signal?.aborted).toBe(false);
    await group.stop();
    expect(log).toEqual(["start a", "start b", "start c", "stop c", "stopped c", "stop b", "stopped b", "stop a", "stopped a"]);
    expect([a!, b!, c!].every((r) => r.abortedBeforeStop)).toBe(true);
    expect(group.isRunning).toBe(false);
  });

  it("a runnable that fails to start: the ones started are stopped in reverse, the rest never start", async () => {
    const log: string[] = [];
    const group = new RunnableGroup(logger, 1000);
    for (const r of [recorder(log, "a"), recorder(log, "b"), recorder(log, "c", { failStarts: 1 }), recorder(log, "d")]) group.add(r);
    const err = await group.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunnableStartError);
    expect((err as RunnableStartError).runnable).toBe("c");
    expect(log).toEqual(["start a", "start b", "stop b", "stopped b", "stop a", "stopped a"]);
    expect(group.isRunning).toBe(false);
  });

  it("a stop is bounded: a hanging runnable is left behind, the others still stop, and the next start waits for it", async () => {
    // Fake timers: the bound (100 ms) and the slow stop (400 ms) are exact, whatever the machine's load.
    vi.useFakeTimers();
    try {
      const log: string[] = [];
      const group = new RunnableGroup(logger, 100);
      for (const r of [recorder(log, "a"), recorder(log, "slow", { stopTakesMs: 400 }), recorder(log, "c")]) group.add(r);
      await group.start();
      const stopped = await settle("stop", group.stop());
      // Gave up on "slow" at its 100 ms bound, long before its 400 ms stop ended.
      expect(stopped.tookMs).toBeLessThanOrEqual(105);
      expect(log).toEqual(["start a", "start slow", "start c", "stop c", "stopped c", "stop slow", "stop a", "stopped a"]);

      // Restarting while "slow" is still stopping would run it twice at once: the start waits.
      const restarted = await settle("start", group.start());
      expect(log.slice(8)).toEqual(["stopped slow", "start a", "start slow", "start c"]);
      expect(stopped.tookMs + restarted.tookMs).toBeGreaterThanOrEqual(400);
      await settle("stop", group.stop().catch(() => undefined));
    } finally {
      vi.useRealTimers();
    }
  });
});

// ------------------------------------------------------------------ Manager as host

/** A lease that grants while `granting`. */
class SwitchLease implements Lease {
  granting = true;
  releases = 0;
  attempts = 0;
  tryAcquire(): Promise<boolean> {
    this.attempts++;
    return Promise.resolve(this.granting);
  }
  release(): Promise<void> {
    this.releases++;
    return Promise.resolve();
  }
}

/** Just enough of the ports for the loop's runnables to start and stop, with no games. */
function fakes(log: string[]) {
  const source = {
    get: () => Promise.resolve(null),
    listGameIds: () => Promise.resolve([]),
    mutate: () => Promise.reject(new Error("not in this test")),
    delete: () => Promise.resolve(false),
    watch: () => {
      log.push("start declaration watch");
      return Promise.resolve(() => {
        log.push("stop declaration watch");
        return Promise.resolve();
      });
    },
  } satisfies DeclarationSource;
  const docker = fakeRuntime(
    {},
    {
      watchEvents: () => {
        log.push("start docker watch");
        return () => void log.push("stop docker watch");
      },
    },
  );
  const state = {
    markInterruptedOperations: () => Promise.resolve([]),
    listRecords: () => Promise.resolve([]),
  } as Partial<StateStore> as StateStore;
  const prober: HealthProber = { probe: () => Promise.reject(new Error("no engines in this test")) };
  return { source, runtime: docker, state, prober };
}

function manager(log: string[], lease: Lease | undefined, runnables: Runnable[]) {
  const settings = fastSettings({ instanceId: "host-test", engineNetwork: "none", stateRoot: "/nonexistent", retryPeriodMs: 30, renewDeadlineMs: 200, leaseDurationMs: 400 });
  return new Manager({ ...fakes(log), lease, identity: "me", settings, logger, runnables });
}

describe("Manager as a host of runnables", () => {
  it("leader runnables start on election around the loop's own and stop in reverse on step-down; the others run throughout", async () => {
    const log: string[] = [];
    const lease = new SwitchLease();
    lease.granting = false;
    const m = manager(log, lease, [recorder(log, "always", { needsLeadership: false }), recorder(log, "mirror")]);
    await m.start();
    // The elector has provably looked again (two refused attempts since start), not merely some time passed.
    const attempts = lease.attempts;
    await until("two more lease attempts", () => lease.attempts >= attempts + 2);
    // Not leading: only the runnable that needs no leadership runs.
    expect(log).toEqual(["start always"]);
    expect(await m.resyncNow("test")).toBeNull();

    lease.granting = true;
    await until("leading", () => m.mayAct());
    await until("loop started", () => log.includes("start docker watch"));
    expect(log).toEqual(["start always", "start mirror", "start declaration watch", "start docker watch"]);
    expect(await m.resyncNow("test")).toEqual({ queued: [], skipped: [] });

    log.length = 0;
    lease.granting = false;
    await until("stepped down", () => !m.isLeader);
    await until("mirror stopped", () => log.includes("stopped mirror"));
    // Reverse order: the watches before the workers, the workers before the writer they feed.
    expect(log).toEqual(["stop docker watch", "stop declaration watch", "stop mirror", "stopped mirror"]);
    expect(await m.resyncNow("test")).toBeNull();

    log.length = 0;
    lease.granting = true;
    await until("leading again", () => log.includes("start docker watch"));
    expect(log).toEqual(["start mirror", "start declaration watch", "start docker watch"]);

    log.length = 0;
    await m.stop();
    expect(log).toEqual(["stop docker watch", "stop declaration watch", "stop mirror", "stopped mirror", "stop always", "stopped always"]);
    expect(lease.releases).toBe(1);
  });

  it("a leader runnable that fails to start: the leader steps down, stops what started, and tries again", async () => {
    const log: string[] = [];
    const lease = new SwitchLease();
    const m = manager(log, lease, [recorder(log, "first"), recorder(log, "flaky", { failStarts: 2 })]);
    await m.start();
    await until("the loop started on the third try", () => log.includes("start docker watch"), 3000);
    expect(log).toEqual(["start first", "stop first", "stopped first", "start first", "stop first", "stopped first", "start first", "start flaky", "start declaration watch", "start docker watch"]);
    expect(m.mayAct()).toBe(true);
    await m.stop();
  });

  it("without a lease it leads at once, and a failed start is thrown to the caller with nothing left running", async () => {
    const log: string[] = [];
    const m = manager(log, undefined, [recorder(log, "first"), recorder(log, "broken", { failStarts: 1 })]);
    await expect(m.start()).rejects.toThrow(/broken did not start/);
    expect(m.mayAct()).toBe(false);
    expect(log).toEqual(["start first", "stop first", "stopped first"]);
  });

  it("runnables cannot be added once the manager has started", async () => {
    const log: string[] = [];
    const m = manager(log, undefined, []);
    await m.start();
    expect(() => m.add(recorder(log, "late"))).toThrow(/has started/);
    await m.stop();
  });
});
