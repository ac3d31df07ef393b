/**
 * The retention runnable's schedule: one pass shortly after it starts (this
 * replica was elected), then one per interval; a failed pass is logged and
 * retried on the next interval; once stopped (step-down) no pass runs again,
 * and stop waits for a pass in flight, which ends after its current batch.
 * The SQL itself is covered on both backends in test/integration/retention.test.ts.
 */
import { describe, expect, it, vi } from "vitest";
import { RetentionRunnable, type RetentionStore } from "../../src/controller/runnables/retention.js";
import { createLogger } from "../../src/log.js";
import { elapse, settle, until as fakeUntil } from "../helpers/fakeTime.js";

const logger = createLogger("silent", "test-retention");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DAY = 86_400_000;

async function until(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Counts batches; `backlog` rows of each table are there to delete; `fail` passes throw first. */
function fakeStore(opts: { backlog?: number; fail?: number; batchTakesMs?: number } = {}) {
  let events = opts.backlog ?? 0;
  let ops = opts.backlog ?? 0;
  let failures = opts.fail ?? 0;
  const calls: { table: string; olderThan: Date; limit: number }[] = [];
  const store: RetentionStore = {
    async pruneEvents(olderThan, limit) {
      calls.push({ table: "events", olderThan, limit });
      if (failures > 0) {
        failures--;
        throw new Error("database unavailable");
      }
      if (opts.batchTakesMs) await sleep(opts.batchTakesMs);
      const n = Math.min(limit, events);
      events -= n;
      return n;
    },
    async pruneOperations(olderThan, limit) {
      calls.push({ table: "ops", olderThan, limit });
      const n = Math.min(limit, ops);
      ops -= n;
      return n;
    },
  };
  return { store, calls };
}

describe("retention runnable", () => {
  it("prunes shortly after start and then every interval, with each table's own cutoff", async () => {
    const { store, calls } = fakeStore();
    const now = Date.UTC(2026, 0, 31);
    const r = new RetentionRunnable({
      store,
      settings: { eventRetentionMs: 30 * DAY, oplogRetentionMs: 7 * DAY, firstDelayMs: 20, intervalMs: 40 },
      logger,
      now: () => now,
    });
    // Fake timers: "no pass after stop" is checked over three whole intervals of fake time.
    vi.useFakeTimers();
    try {
      const abort = new AbortController();
      r.start({ signal: abort.signal });
      expect(calls).toHaveLength(0);
      await fakeUntil("three passes", () => calls.filter((c) => c.table === "events").length >= 3);
      expect(calls[0]).toEqual({ table: "events", olderThan: new Date(now - 30 * DAY), limit: 1000 });
      expect(calls[1]).toEqual({ table: "ops", olderThan: new Date(now - 7 * DAY), limit: 1000 });
      abort.abort();
      await settle("stop", r.stop());
      const after = calls.length;
      await elapse(3 * 40);
      expect(calls.length, "no pass after stop").toBe(after);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a failed pass is retried on the next interval", async () => {
    const { store, calls } = fakeStore({ fail: 1 });
    const r = new RetentionRunnable({ store, settings: { eventRetentionMs: DAY, oplogRetentionMs: DAY, firstDelayMs: 10, intervalMs: 30 }, logger });
    const abort = new AbortController();
    r.start({ signal: abort.signal });
    await until("the second pass reaches the operation log", () => calls.some((c) => c.table === "ops"));
    expect(calls.filter((c) => c.table === "events").length).toBe(2);
    abort.abort();
    await r.stop();
  });

  it("stop waits for the batch in flight and no further batch starts", async () => {
    // Fake timers: "within one batch" and "nothing after" are exact, whatever the machine's load.
    vi.useFakeTimers();
    try {
      const { store, calls } = fakeStore({ backlog: 10_000, batchTakesMs: 50 });
      const r = new RetentionRunnable({
        store,
        settings: { eventRetentionMs: DAY, oplogRetentionMs: DAY, firstDelayMs: 0, intervalMs: 60_000, batchSize: 100, batchPauseMs: 1 },
        logger,
      });
      const abort = new AbortController();
      r.start({ signal: abort.signal });
      await fakeUntil("a batch in flight", () => calls.length >= 2);
      abort.abort();
      // The batch in flight (50 ms) ends, then stop returns: no second batch is waited for.
      const { tookMs } = await settle("stop", r.stop());
      expect(tookMs).toBeLessThanOrEqual(55);
      const stoppedAt = calls.length;
      expect(stoppedAt).toBeLessThan(100);
      // Past the next interval: a stopped runnable never prunes again.
      await elapse(60_000 + 1000);
      expect(calls.length).toBe(stoppedAt);
    } finally {
      vi.useRealTimers();
    }
  });
});
