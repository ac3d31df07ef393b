/**
 * The control plane's clock, injected so tests can run its minutes-long
 * timers (the 300 s of DefaultTolerationSeconds) in a second or two. A scaled
 * clock runs `scale` times faster than the wall clock from its creation on:
 * `now()` advances `scale` ms per real ms and `setTimeout(fn, ms)` fires after
 * `ms / scale` real ms. Scale 1 is the real clock.
 */
export interface Clock {
  /** Milliseconds since the epoch, in this clock's time. */
  now(): number;
  /** Runs `fn` once `ms` of this clock's time have passed; returns the canceller. */
  setTimeout(fn: () => void, ms: number): () => void;
}

export function scaledClock(scale = 1): Clock {
  if (!(scale > 0)) throw new Error(`clock scale must be > 0, got ${scale}`);
  const origin = Date.now();
  return {
    now: () => origin + (Date.now() - origin) * scale,
    setTimeout(fn, ms) {
      const timer = setTimeout(fn, Math.max(0, ms / scale));
      timer.unref?.();
      return () => clearTimeout(timer);
    },
  };
}
