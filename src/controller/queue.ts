/**
 * A keyed work queue with client-go's workqueue semantics:
 * - a key waiting in the queue is stored once, however often it is added;
 * - a key being processed is never handed to a second worker; adding it
 *   meanwhile marks it dirty and it is queued again when `done` is called;
 * - failures back off per key exponentially (base * 2^n, capped) until
 *   `forget` resets the count;
 * - keys added by a periodic resync wait in a second lane, behind keys a
 *   watch or a writer just woke, so a full resync of a large fleet never
 *   delays a fresh change.
 */

import { backoffDelay, type BackoffSettings } from "../model/backoff.js";

export interface QueueHooks {
  onAdd?(key: string): void;
  onRetry?(key: string, delayMs: number, failures: number): void;
  /** Seconds the key waited between being queued and handed to a worker. */
  onDequeue?(key: string, waitedSeconds: number): void;
  onDone?(key: string, workSeconds: number): void;
}

/** "high": a watch or a writer woke the key. "low": a periodic resync did; it waits behind every "high" key. */
export type Lane = "high" | "low";

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly lowQueue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>();
  private readonly queuedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly backoff: BackoffSettings,
    private readonly hooks: QueueHooks = {},
    private readonly now: () => number = Date.now,
  ) {}

  add(key: string, lane: Lane = "high"): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      // Already waiting: a fresh change moves it out of the resync lane.
      const i = lane === "high" ? this.lowQueue.indexOf(key) : -1;
      if (i >= 0) {
        this.lowQueue.splice(i, 1);
        this.queue.push(key);
      }
      return;
    }
    this.hooks.onAdd?.(key);
    this.dirty.add(key);
    this.queuedAt.set(key, this.now());
    if (this.processing.has(key)) return;
    (lane === "high" ? this.queue : this.lowQueue).push(key);
    this.waiters.shift()?.();
  }

  /** Adds the key after `delayMs`; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = this.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  /** Re-adds after the key's next backoff delay; returns that delay. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = backoffDelay(n, this.backoff);
    this.hooks.onRetry?.(key, delay, n + 1);
    this.addAfter(key, delay);
    return delay;
  }

  numFailures(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Waits for the next key; resolves null once the queue is shut down and drained. */
  async get(): Promise<string | null> {
    for (;;) {
      const key = this.queue.shift() ?? this.lowQueue.shift();
      if (key !== undefined) {
        this.dirty.delete(key);
        const now = this.now();
        this.processing.set(key, now);
        this.hooks.onDequeue?.(key, (now - (this.queuedAt.get(key) ?? now)) / 1000);
        this.queuedAt.delete(key);
        return key;
      }
      if (this.shuttingDown) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined) this.hooks.onDone?.(key, (this.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.push(key);
      this.waiters.shift()?.();
    }
  }

  get depth(): number {
    return this.queue.length + this.lowQueue.length;
  }

  get processingCount(): number {
    return this.processing.size;
  }

  /** Seconds of work in progress and the longest-running item (client-go's unfinished_work / longest_running). */
  inFlight(): { unfinishedSeconds: number; longestSeconds: number } {
    const now = this.now();
    let total = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      const s = (now - started) / 1000;
      total += s;
      longest = Math.max(longest, s);
    }
    return { unfinishedSeconds: total, longestSeconds: longest };
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.lowQueue.length = 0;
    this.dirty.clear();
    for (const wake of this.waiters.splice(0)) wake();
  }
}

/**
 * Runs `handler` on queued keys with at most `concurrency` at once. The
 * handler decides per key what follows (forget, rate-limit, addAfter).
 * Resolves when the queue is shut down and running handlers finished.
 */
export async function runWorkers(queue: WorkQueue, concurrency: number, handler: (key: string) => Promise<void>): Promise<void> {
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === null) return;
      try {
        await handler(key);
      } finally {
        queue.done(key);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
