/**
 * Capped exponential backoff, the one copy every retry loop uses: the work
 * queue, watch reconnects, status writes, the LISTEN connection and the CLI.
 */
export interface BackoffSettings {
  baseMs: number;
  maxMs: number;
}

/** base * 2^failures, capped; no jitter (the queue and the crash-loop backoff are deterministic). */
export function backoffDelay(failures: number, { baseMs, maxMs }: BackoffSettings): number {
  // 2^n overflows to Infinity long after it passes any sane cap; Math.min handles that.
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failures));
}

/**
 * The same step with jitter on its upper half, for reconnects: many clients
 * that lost one server spread their retries without any retrying sooner than
 * half the step. `failures` counts from 1 (the first retry waits about base).
 */
export function jitteredBackoff(failures: number, settings: BackoffSettings, random: () => number = Math.random): number {
  const step = backoffDelay(failures - 1, settings);
  return step / 2 + random() * (step / 2);
}

/**
 * Stateful form for a loop that retries one thing: `next()` gives the delay
 * before the next attempt, `reset()` after a success.
 */
export class Backoff {
  private failures = 0;
  constructor(
    private readonly settings: BackoffSettings,
    private readonly jitter = true,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    this.failures += 1;
    return this.jitter ? jitteredBackoff(this.failures, this.settings, this.random) : backoffDelay(this.failures - 1, this.settings);
  }

  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}
