/**
 * The workers and the work queue they drain, for one term of leadership: a
 * new term gets a fresh queue (no backoff carried over from a term that may
 * have ended minutes ago). On start, operations a stopped or crashed process
 * left `running` are marked interrupted and their games queued first.
 */
import type { Logger } from "../../log.js";
import type { StateStore } from "../../model/ports.js";
import { runWorkers, WorkQueue, type Lane, type QueueHooks } from "../queue.js";
import type { ReconcileOutcome } from "../reconciler.js";
import type { Runnable } from "./runnable.js";

/** Failures in a row after which a key's failures are logged at error level. */
const KEEPS_FAILING = 5;

/** Swaps of a fleet rollout at once: all workers but one, which stays free for fresh changes (one worker: that one). */
export function rolloutSlots(concurrency: number): number {
  return Math.max(1, concurrency - 1);
}

export interface WorkersSettings {
  concurrency: number;
  retryBackoffBaseMs: number;
  retryBackoffMaxMs: number;
  /** Requeues further out than this are left to the periodic resync. */
  resyncIntervalMs: number;
}

export interface QueueStats {
  depth: number;
  processing: number;
  unfinishedSeconds: number;
  longestSeconds: number;
}

export interface WorkersDeps {
  /** Never throws: every failure is an outcome (see Reconciler.reconcile). */
  reconcile(gameId: string): Promise<{ outcome: ReconcileOutcome }>;
  state: Pick<StateStore, "markInterruptedOperations">;
  settings: WorkersSettings;
  logger: Logger;
  hooks?: QueueHooks;
}

export class Workers implements Runnable {
  readonly name = "workers";
  readonly needsLeadership = true;
  private queue: WorkQueue | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly deps: WorkersDeps) {}

  /** Queues a game for a reconcile; a no-op while not running. */
  add(gameId: string, lane: Lane = "high"): void {
    this.queue?.add(gameId, lane);
  }

  /** Whether the workers take games (this replica leads). */
  get taking(): boolean {
    return this.queue !== null;
  }

  /** The lane the game's reconcile in progress was handed out of (see WorkQueue.laneOf). */
  laneOf(gameId: string): Lane | undefined {
    return this.queue?.laneOf(gameId);
  }

  stats(): QueueStats {
    const q = this.queue;
    if (!q) return { depth: 0, processing: 0, unfinishedSeconds: 0, longestSeconds: 0 };
    return { depth: q.depth, processing: q.processingCount, ...q.inFlight() };
  }

  async start(): Promise<void> {
    const { settings, hooks } = this.deps;
    const queue = new WorkQueue({ baseMs: settings.retryBackoffBaseMs, maxMs: settings.retryBackoffMaxMs }, hooks, Date.now, rolloutSlots(settings.concurrency));
    this.queue = queue;
    await this.requeueInterrupted(queue);
    this.running = runWorkers(queue, settings.concurrency, (key) => this.handle(queue, key));
  }

  /** Shuts the queue down and waits for the reconciles in progress. */
  async stop(): Promise<void> {
    this.queue?.shutDown();
    this.queue = null;
    const running = this.running;
    this.running = null;
    await running;
  }

  private async requeueInterrupted(queue: WorkQueue): Promise<void> {
    const { state, logger } = this.deps;
    try {
      for (const op of await state.markInterruptedOperations()) {
        logger.warn({ gameId: op.gameId, opId: op.opId, kind: op.kind }, "operation was interrupted by a controller stop; reconciling again");
        queue.add(op.gameId);
      }
    } catch (err) {
      logger.warn({ err }, "could not mark interrupted operations");
    }
  }

  /** What the queue does after a reconcile: forget, requeue after a delay, or back off. */
  private async handle(queue: WorkQueue, key: string): Promise<void> {
    const { logger, settings } = this.deps;
    const { outcome } = await this.deps.reconcile(key);
    switch (outcome.type) {
      case "error": {
        if (outcome.terminal) {
          queue.forget(key);
          return;
        }
        const failures = queue.numFailures(key) + 1;
        const delay = queue.addRateLimited(key);
        const line = { gameId: key, code: outcome.error.code, failures, retryInMs: delay };
        if (failures >= KEEPS_FAILING) logger.error(line, "reconcile keeps failing");
        return;
      }
      case "requeue":
        // A swap deferred to the rollout lane has not run: a failing patch keeps its backoff.
        if (outcome.lane !== "rollout") queue.forget(key);
        // Long waits (retention) are left to the periodic resync; timers that long are not worth holding.
        if (outcome.afterMs <= settings.resyncIntervalMs) queue.addAfter(key, outcome.afterMs, outcome.lane);
        return;
      case "done":
        queue.forget(key);
        return;
    }
  }
}
