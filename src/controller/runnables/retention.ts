/**
 * Retention of the append-mostly tables (runtime events, the operation log):
 * the leader deletes rows older than their retention shortly after it is
 * elected and then on an interval. Deletes go in small batches with a pause
 * between them, so a backlog of millions of rows never holds a long lock or
 * one long statement (which the SQL statement timeout would cancel anyway).
 * One replica prunes, so two never fight over the same rows.
 */
import type { Logger } from "../../log.js";
import type { Runnable, RunnableContext } from "./runnable.js";

export const RETENTION_TABLES = ["runtime_events", "operation_log"] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];

/** How often the leader prunes, and how soon after it is elected. */
export const RETENTION_INTERVAL_MS = 10 * 60_000;
export const RETENTION_FIRST_DELAY_MS = 30_000;
export const RETENTION_BATCH_SIZE = 1000;
export const RETENTION_BATCH_PAUSE_MS = 200;

/** The store's batch deletes; each returns how many rows it removed (fewer than `limit`: nothing older left). */
export interface RetentionStore {
  pruneEvents(olderThan: Date, limit: number): Promise<number>;
  pruneOperations(olderThan: Date, limit: number): Promise<number>;
}

export interface RetentionSettings {
  eventRetentionMs: number;
  oplogRetentionMs: number;
  intervalMs?: number;
  firstDelayMs?: number;
  batchSize?: number;
  batchPauseMs?: number;
}

export interface RetentionDeps {
  store: RetentionStore;
  settings: RetentionSettings;
  logger: Logger;
  /** Rows deleted by one batch (metrics). */
  onPruned?(table: RetentionTable, rows: number): void;
  now?: () => number;
}

export type RetentionResult = Record<RetentionTable, number>;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export class RetentionRunnable implements Runnable {
  readonly name = "retention";
  readonly needsLeadership = true;
  private timer: NodeJS.Timeout | null = null;
  private signal: AbortSignal | null = null;
  private pass: Promise<unknown> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly deps: RetentionDeps) {
    this.now = deps.now ?? Date.now;
  }

  start(ctx: RunnableContext): void {
    const { intervalMs = RETENTION_INTERVAL_MS, firstDelayMs = RETENTION_FIRST_DELAY_MS } = this.deps.settings;
    this.signal = ctx.signal;
    const schedule = (delay: number) => {
      this.timer = setTimeout(() => {
        this.pass = this.runNow(ctx.signal)
          .catch((err: unknown) => this.deps.logger.warn({ err }, "retention pass failed; trying again on the next interval"))
          .finally(() => {
            if (!ctx.signal.aborted) schedule(intervalMs);
          });
      }, delay);
    };
    schedule(firstDelayMs);
  }

  /** The signal was aborted before this is called: a pass in flight ends after its current batch. */
  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.pass;
  }

  /** One pass over both tables; stops between batches when `signal` aborts. */
  async runNow(signal: AbortSignal = this.signal ?? new AbortController().signal): Promise<RetentionResult> {
    const { store, settings } = this.deps;
    const now = this.now();
    const result: RetentionResult = { runtime_events: 0, operation_log: 0 };
    result.runtime_events = await this.drain("runtime_events", new Date(now - settings.eventRetentionMs), (t, n) => store.pruneEvents(t, n), signal);
    result.operation_log = await this.drain("operation_log", new Date(now - settings.oplogRetentionMs), (t, n) => store.pruneOperations(t, n), signal);
    if (result.runtime_events + result.operation_log > 0) this.deps.logger.info({ pruned: result }, "retention pruned old rows");
    return result;
  }

  private async drain(table: RetentionTable, olderThan: Date, batch: (olderThan: Date, limit: number) => Promise<number>, signal: AbortSignal): Promise<number> {
    const { batchSize = RETENTION_BATCH_SIZE, batchPauseMs = RETENTION_BATCH_PAUSE_MS } = this.deps.settings;
    let total = 0;
    while (!signal.aborted) {
      const rows = await batch(olderThan, batchSize);
      total += rows;
      if (rows > 0) this.deps.onPruned?.(table, rows);
      if (rows < batchSize) break;
      await pause(batchPauseMs, signal);
    }
    return total;
  }
}
