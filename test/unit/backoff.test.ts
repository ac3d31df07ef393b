import { describe, expect, it } from "vitest";
import { Backoff, backoffDelay, jitteredBackoff } from "../../src/model/backoff.js";

const settings = { baseMs: 100, maxMs: 5_000 };

describe("backoffDelay", () => {
  it("doubles from the base and stops at the cap", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, settings))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
  });

  it("stays at the cap where 2^n overflows to Infinity", () => {
    expect(2 ** 2000).toBe(Number.POSITIVE_INFINITY);
    expect(backoffDelay(2000, settings)).toBe(5000);
    expect(backoffDelay(Number.MAX_SAFE_INTEGER, settings)).toBe(5000);
  });

  it("treats a negative failure count as none", () => {
    expect(backoffDelay(-3, settings)).toBe(100);
  });
});

describe("jitteredBackoff", () => {
  it("lies in the upper half of the step: random 0 gives half, random just under 1 almost all of it", () => {
    expect(jitteredBackoff(1, settings, () => 0)).toBe(50);
    expect(jitteredBackoff(1, settings, () => 0.5)).toBe(75);
    expect(jitteredBackoff(3, settings, () => 0)).toBe(200);
    const high = jitteredBackoff(3, settings, () => 0.999_999);
    expect(high).toBeGreaterThan(399.9);
    expect(high).toBeLessThan(400);
  });

  it("never passes the cap, however many failures", () => {
    for (const failures of [7, 50, 5000]) {
      expect(jitteredBackoff(failures, settings, () => 0)).toBe(2500);
      expect(jitteredBackoff(failures, settings, () => 0.999_999)).toBeLessThan(5000);
    }
  });
});

describe("Backoff", () => {
  it("steps deterministically without jitter, counts attempts, and starts over after reset", () => {
    const b = new Backoff({ baseMs: 500, maxMs: 10_000 }, false);
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(b.attempts).toBe(7);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(500);
  });

  it("jitters each step with the injected random, within [step/2, step)", () => {
    const draws = [0, 0.999_999, 0.5, 0];
    const b = new Backoff(settings, true, () => draws.shift() ?? 0);
    const [first, second, third, fourth] = [b.next(), b.next(), b.next(), b.next()];
    expect(first).toBe(50);
    expect(second).toBeGreaterThan(199.9);
    expect(second).toBeLessThan(200);
    expect(third).toBe(300);
    expect(fourth).toBe(400);
    b.reset();
    expect(b.next()).toBe(50);
  });
});
