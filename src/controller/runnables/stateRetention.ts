/**
 * The leader deletes the state of games removed longer ago than the
 * runtime's state retention (RTMANAGER_POD_CLAIM_RETENTION: a Pod's claim).
 * A pass runs every half retention, at most every 10 minutes and at least
 * every second, so a claim outlives its release by at most 1.5 retentions.
 */
import type { Logger } from "../../log.js";
import type { Runnable, RunnableContext } from "./runnable.js";

export interface StateRetentionDeps {
  retentionMs: number;
  /** The runtime's prune: deletes what was released before `olderThan`, returns the games. */
  prune(olderThan: Date): Promise<string[]>;
  logger: Logger;
  now?: () => number;
}

const MAX_INTERVAL_MS = 10 * 60_000;
const MIN_INTERVAL_MS = 1_000;

export class StateRetentionRunnable implements Runnable {
  readonly name = "state retention";
  readonly needsLeadership = true;
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: StateRetentionDeps) {}

  start(ctx: RunnableContext): void {
    const interval = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, this.deps.retentionMs / 2));
    const schedule = () => {
      this.timer = setTimeout(() => {
        this.pass = this.runNow()
          .catch((err: unknown) => this.deps.logger.warn({ err }, "state retention pass failed; trying again on the next interval"))
          .finally(() => {
            if (!ctx.signal.aborted) schedule();
          });
      }, interval);
    };
    schedule();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.pass;
  }

  async runNow(): Promise<string[]> {
    const now = this.deps.now?.() ?? Date.now();
    const games = await this.deps.prune(new Date(now - this.deps.retentionMs));
    if (games.length > 0) this.deps.logger.info({ games, retentionMs: this.deps.retentionMs }, "deleted the state of games removed longer than the retention ago");
    return games;
  }
}
