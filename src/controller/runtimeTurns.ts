/**
 * Fresh changes go first at the runtime, not only in the queue. The rollout
 * lane (queue.ts) keeps a worker free for a start or stop during a fleet
 * rollout, but that start's calls still meet the swaps' calls at the engine:
 * measured with 40 swaps on one container engine, a new start took 2.6x its
 * idle time with two swaps running and 4.6x with seven, all of it in its
 * create and start calls (docs/BENCHMARKS.md). So while a fresh change (anything not handed
 * out of the rollout lane) is acting on the runtime, a rollout swap holds its
 * next acting call; the calls already sent finish. The hold is bounded
 * (`maxHoldMs` a call), so a steady stream of fresh changes slows a rollout
 * but never stops it. Image pulls are outside the turns (reconcileScope.ts):
 * they wait on a registry, and a fresh start pulling a large image would
 * otherwise slow every swap for as long as its pull.
 */
import { raceAbort } from "../model/abort.js";

/** How long a rollout swap holds one call for fresh changes, at most. */
export const MAX_HOLD_MS = 2_000;

export class RuntimeTurns {
  private acting = 0;
  private readonly held = new Set<() => void>();

  constructor(private readonly maxHoldMs = MAX_HOLD_MS) {}

  /** A fresh change began acting on the runtime; the returned function ends it (idempotent). */
  enterFresh(): () => void {
    this.acting++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      if (--this.acting > 0) return;
      for (const release of this.held) release();
      this.held.clear();
    };
  }

  /** Before a rollout swap's acting call: waits while a fresh change acts, at most maxHoldMs or until `signal`. */
  async beforeRolloutCall(signal: AbortSignal): Promise<void> {
    if (this.acting === 0) return;
    let release!: () => void;
    const freed = new Promise<void>((resolve) => (release = resolve));
    this.held.add(release);
    const timer = setTimeout(release, this.maxHoldMs);
    try {
      await raceAbort(freed, signal);
    } finally {
      clearTimeout(timer);
      this.held.delete(release);
    }
  }

  /** Fresh changes acting now (a gauge for tests and metrics). */
  get freshActing(): number {
    return this.acting;
  }
}
