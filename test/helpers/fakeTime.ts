/**
 * Unit tests on fake timers (vi.useFakeTimers fakes setTimeout, Date and
 * performance.now): time moves only when the test moves it, so a bound such
 * as "stepped down by the renew deadline" is checked exactly, however loaded
 * the machine is.
 */
import { afterEach, beforeEach, vi } from "vitest";

/** Fake timers for every test of the calling file. */
export function useFakeTime(): void {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
}

const STEP_MS = 5;

/** Moves fake time on by `ms`, running every timer (and the promises they settle) on the way. */
export async function elapse(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

/** Moves fake time on in small steps until `cond` holds; returns how much fake time that took. Throws past `maxMs`. */
export async function until(what: string, cond: () => boolean, maxMs = 3000): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > maxMs) throw new Error(`${what}: not within ${maxMs} ms of fake time`);
    await vi.advanceTimersByTimeAsync(STEP_MS);
  }
  return performance.now() - start;
}

/** Moves fake time on until `work` settles; returns its outcome and the fake time it took. */
export async function settle<T>(what: string, work: Promise<T>, maxMs = 3000): Promise<{ value: T; tookMs: number }> {
  let done = false;
  let value: T | undefined;
  let error: unknown;
  let failed = false;
  work.then(
    (v) => {
      done = true;
      value = v;
    },
    (err: unknown) => {
      done = true;
      failed = true;
      error = err;
    },
  );
  await Promise.resolve();
  const tookMs = await until(what, () => done, maxMs);
  if (failed) throw error;
  return { value: value as T, tookMs };
}
