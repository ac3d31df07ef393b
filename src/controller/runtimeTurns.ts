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
 *
 * On a runtime whose calls do the work before they answer (containers on one
 * engine: not declarative), at most ROLLOUT_CALLS_AT_ONCE swap calls are in
 * flight, whatever the number of swaps: those in flight when a fresh change
 * arrives are what it still waits behind. Measured, two runs each of N=40:
 * a start during the fleet at 1.87x and 2.25x its idle time with every swap's
 * call in flight, 1.04x and 1.21x with three, the fleet at 1.20-1.36x its
 * floor either way (the engine, not the number of calls, sets its pace).
 */
import { raceAbort } from "../model/abort.js";

/** How long a rollout swap holds one call for fresh changes, at most. */
export const MAX_HOLD_MS = 2_000;

/** Swap calls in flight at once on a runtime that is not declarative. */
export const ROLLOUT_CALLS_AT_ONCE = 3;

export class RuntimeTurns {
  private acting = 0;
  private readonly held = new Set<() => void>();
  private callsOut = 0;
  private readonly callWaiters = new Set<() => void>();

  constructor(
    private readonly maxHoldMs = MAX_HOLD_MS,
    private readonly maxRolloutCalls = Infinity,
  ) {}

  /**
   * A rollout swap's acting call: after fresh changes (beforeRolloutCall), in
   * one of the call slots. Resolves to the function that gives the slot back
   * once the call answered; rejects, holding no slot, when `signal` fires.
   */
  async rolloutTurn(signal: AbortSignal): Promise<() => void> {
    await this.beforeRolloutCall(signal);
    while (this.callsOut >= this.maxRolloutCalls) {
      let wake!: () => void;
      const freed = new Promise<void>((resolve) => (wake = resolve));
      this.callWaiters.add(wake);
      try {
        await raceAbort(freed, signal);
      } finally {
        this.callWaiters.delete(wake);
      }
    }
    this.callsOut++;
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.callsOut--;
      // Every waiter looks again: one woken but aborted meanwhile must not strand the others.
      for (const wake of this.callWaiters) wake();
    };
  }

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

  /** Swap calls in flight now. */
  get rolloutCallsInFlight(): number {
    return this.callsOut;
  }

  /** Fresh changes acting now (a gauge for tests and metrics). */
  get freshActing(): number {
    return this.acting;
  }
}
