/**
 * A keyed work queue with client-go's workqueue semantics:
 * - a key waiting in the queue is stored once, however often it is added;
 * - a key being processed is never handed to a second worker; adding it
 *   meanwhile marks it dirty and it is queued again when `done` is called;
 * - failures back off per key exponentially (base * 2^n, capped) until
 *   `forget` resets the count;
 * - keys wait in four lanes, taken in order: `high` (a watch or a writer
 *   just woke the key: a fresh change), `gate` (the next check of an open
 *   health gate), `rollout` (a patch whose plan swaps a running engine),
 *   `low` (a periodic resync). So neither a full resync of a large fleet nor
 *   a fleet rollout's health gates or swaps ever delay a fresh change;
 * - at most `rolloutSlots` keys handed out of the rollout lane are processed
 *   at once, so with more workers than slots a worker is always free for a
 *   fresh change while a fleet rollout swaps engines. A swap holds its worker
 *   for seconds (stop, remove, create, start); a start behind forty of them
 *   waited for all of them (docs/BENCHMARKS.md, issue 18). client-go's
 *   workqueue has one FIFO; this is the priority-and-fairness idea of the
 *   API server (APF's priority levels with their own seats) on one queue.
 */

import { backoffDelay, type BackoffSettings } from "../model/backoff.js";

export interface QueueHooks {
  onAdd?(key: string): void;
  onRetry?(key: string, delayMs: number, failures: number): void;
  /** Seconds the key waited between being queued and handed to a worker. */
  onDequeue?(key: string, waitedSeconds: number): void;
  onDone?(key: string, workSeconds: number): void;
}

/**
 * "high": a watch or a writer woke the key. "gate": an open health gate's next
 * check; it waits behind every "high" key. "rollout": a patch the planner
 * would swap an engine for, deferred by its first reconcile; it waits behind
 * both, and only `rolloutSlots` of it run at once. "low": a periodic resync;
 * it waits behind all three.
 */
export type Lane = "high" | "gate" | "rollout" | "low";

/** A swap may run out of the rollout lane (it holds a slot), or when no queue handed the key out. */
export function mayRollOut(lane: Lane | undefined): boolean {
  return lane === undefined || lane === "rollout";
}
const LANES: readonly Lane[] = ["high", "gate", "rollout", "low"];

export class WorkQueue {
  private readonly lanes: Record<Lane, string[]> = { high: [], gate: [], rollout: [], low: [] };
  /** Keys added and not yet handed out (or added again while processing), with the lane they wait in. */
  private readonly dirty = new Map<string, Lane>();
  /** Keys handed to a worker: when, and out of which lane. */
  private readonly processing = new Map<string, { at: number; lane: Lane }>();
  /** How many of `processing` came out of the rollout lane. */
  private rollingOut = 0;
  private readonly queuedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: (() => void)[] = [];
  private shuttingDown = false;

  constructor(
    private readonly backoff: BackoffSettings,
    private readonly hooks: QueueHooks = {},
    private readonly now: () => number = Date.now,
    /** Keys of the rollout lane processed at once; the workers keep one more than this for everything else. */
    private readonly rolloutSlots = Infinity,
  ) {}

  add(key: string, lane: Lane = "high"): void {
    if (this.shuttingDown) return;
    const waiting = this.dirty.get(key);
    if (waiting !== undefined) {
      // Already waiting: a more urgent add moves it up (a fresh change out of the gate or resync lane).
      if (LANES.indexOf(lane) >= LANES.indexOf(waiting)) return;
      this.dirty.set(key, lane);
      if (this.processing.has(key)) return;
      const from = this.lanes[waiting];
      from.splice(from.indexOf(key), 1);
      this.lanes[lane].push(key);
      // Out of a full rollout lane, the key may be the only one a waiting worker can take.
      this.waiters.shift()?.();
      return;
    }
    this.hooks.onAdd?.(key);
    this.dirty.set(key, lane);
    this.queuedAt.set(key, this.now());
    if (this.processing.has(key)) return;
    this.lanes[lane].push(key);
    this.waiters.shift()?.();
  }

  /** Adds the key to `lane` after `delayMs`; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number, lane: Lane = "high"): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key, lane);
      return;
    }
    const at = this.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key, lane);
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
      const lane = this.nextLane();
      const key = lane && this.lanes[lane].shift();
      if (lane && key !== undefined) {
        this.dirty.delete(key);
        const now = this.now();
        this.processing.set(key, { at: now, lane });
        if (lane === "rollout") this.rollingOut++;
        this.hooks.onDequeue?.(key, (now - (this.queuedAt.get(key) ?? now)) / 1000);
        this.queuedAt.delete(key);
        return key;
      }
      if (this.shuttingDown) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** The lane a key waiting now is taken from; the rollout lane only while it has a free slot. */
  private nextLane(): Lane | undefined {
    return LANES.find((lane) => this.lanes[lane].length > 0 && (lane !== "rollout" || this.rollingOut < this.rolloutSlots));
  }

  /** The lane the key being processed was handed out of; undefined when this queue did not hand it out. */
  laneOf(key: string): Lane | undefined {
    return this.processing.get(key)?.lane;
  }

  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined) this.hooks.onDone?.(key, (this.now() - started.at) / 1000);
    const lane = this.dirty.get(key);
    if (lane !== undefined && !this.shuttingDown) {
      this.lanes[lane].push(key);
      this.waiters.shift()?.();
    }
    if (started?.lane === "rollout") {
      this.rollingOut--;
      // A slot came free: a worker that found only rollout keys waiting can take one now.
      if (this.lanes.rollout.length > 0) this.waiters.shift()?.();
    }
  }

  get depth(): number {
    return LANES.reduce((n, lane) => n + this.lanes[lane].length, 0);
  }

  get processingCount(): number {
    return this.processing.size;
  }

  /** Seconds of work in progress and the longest-running item (client-go's unfinished_work / longest_running). */
  inFlight(): { unfinishedSeconds: number; longestSeconds: number } {
    const now = this.now();
    let total = 0;
    let longest = 0;
    for (const { at } of this.processing.values()) {
      const s = (now - at) / 1000;
      total += s;
      longest = Math.max(longest, s);
    }
    return { unfinishedSeconds: total, longestSeconds: longest };
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const lane of LANES) this.lanes[lane].length = 0;
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
