import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CachedCheck } from "../../src/http/readiness.js";

describe("CachedCheck (/readyz)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const deferredCheck = () => {
    let runs = 0;
    let release: (value: string) => void = () => undefined;
    const cache = new CachedCheck<string>({
      check: () => {
        runs++;
        return new Promise<string>((resolve) => {
          release = resolve;
        });
      },
      ttlMs: 1000,
      now: () => Date.now(),
    });
    return { cache, runs: () => runs, release: (v: string) => release(v) };
  };

  it("10,000 callers at once share one check", async () => {
    const c = deferredCheck();
    const answers = Array.from({ length: 10_000 }, () => c.cache.get());
    expect(c.runs()).toBe(1);
    c.release("ready");
    expect(new Set(await Promise.all(answers))).toEqual(new Set(["ready"]));
    expect(c.runs()).toBe(1);
  });

  it("serves the answer for a second after it arrived, then checks again, once", async () => {
    const c = deferredCheck();
    const first = c.cache.get();
    await vi.advanceTimersByTimeAsync(300); // a slow check: the second counts from its answer
    c.release("db down");
    expect(await first).toBe("db down");
    await vi.advanceTimersByTimeAsync(999);
    for (let i = 0; i < 1000; i++) expect(await c.cache.get()).toBe("db down");
    expect(c.runs()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    const again = [c.cache.get(), c.cache.get()];
    expect(c.runs()).toBe(2);
    c.release("ready");
    expect(await Promise.all(again)).toEqual(["ready", "ready"]);
  });
});
