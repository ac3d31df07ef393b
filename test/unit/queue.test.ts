import { afterEach, describe, expect, it, vi } from "vitest";
import { backoffDelay } from "../../src/model/backoff.js";
import { mayRollOut, runWorkers, WorkQueue } from "../../src/controller/queue.js";

describe("work queue", () => {
  it("collapses duplicate adds of a waiting key", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
  });

  it("never hands a key being processed to a second worker; re-queues it on done", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    q.add("a");
    const k = await q.get();
    q.add("a");
    expect(q.depth).toBe(0);
    q.done(k!);
    expect(q.depth).toBe(1);
  });

  it("runs at most `concurrency` handlers and one per key", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    let active = 0;
    let peak = 0;
    const perKey = new Map<string, number>();
    let overlapping = false;
    let processed = 0;
    const done = runWorkers(q, 3, async (key) => {
      active++;
      peak = Math.max(peak, active);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      if (perKey.get(key)! > 1) overlapping = true;
      await new Promise((r) => setTimeout(r, 5));
      perKey.set(key, perKey.get(key)! - 1);
      active--;
      processed++;
      if (processed === 20) q.shutDown();
    });
    for (let i = 0; i < 20; i++) q.add(`k${i % 10}`);
    for (let i = 0; i < 10; i++) q.add(`k${i}`);
    await new Promise((r) => setTimeout(r, 30));
    for (let i = 10; i < 20; i++) q.add(`x${i}`);
    await done;
    expect(peak).toBe(3);
    expect(overlapping).toBe(false);
  });

  it("backs off exponentially per key and forgets on success", () => {
    const q = new WorkQueue({ baseMs: 100, maxMs: 1000 });
    expect(q.addRateLimited("a")).toBe(100);
    expect(q.addRateLimited("a")).toBe(200);
    expect(q.addRateLimited("a")).toBe(400);
    expect(q.addRateLimited("b")).toBe(100);
    expect(q.addRateLimited("a")).toBe(800);
    expect(q.addRateLimited("a")).toBe(1000);
    q.forget("a");
    expect(q.addRateLimited("a")).toBe(100);
    q.shutDown();
    expect(backoffDelay(2000, { baseMs: 5, maxMs: 7 })).toBe(7);
  });

  it("addAfter keeps the earliest pending time", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    q.addAfter("a", 10_000);
    q.addAfter("a", 5);
    await new Promise((r) => setTimeout(r, 30));
    expect(q.depth).toBe(1);
    q.shutDown();
  });
});

describe("work queue lanes", () => {
  it("hands out woken keys before resync keys, and a woken resync key jumps ahead", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    for (const k of ["r1", "r2", "r3"]) q.add(k, "low");
    q.add("fresh");
    q.add("r3");
    expect(q.depth).toBe(4);
    expect(await q.get()).toBe("fresh");
    expect(await q.get()).toBe("r3");
    expect(await q.get()).toBe("r1");
    expect(await q.get()).toBe("r2");
  });

  it("gate re-checks wait behind fresh keys and ahead of resync keys; a fresh change of a gated key takes it out of the gate lane", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    q.add("r1", "low");
    for (const k of ["g1", "g2", "g3"]) q.add(k, "gate");
    q.add("fresh");
    q.add("g3");
    // A gate key added again by a resync stays in the gate lane.
    q.add("g2", "low");
    expect(await q.get()).toBe("fresh");
    expect(await q.get()).toBe("g3");
    expect(await q.get()).toBe("g1");
    expect(await q.get()).toBe("g2");
    expect(await q.get()).toBe("r1");
  });
});

describe("work queue delayed lanes", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("addAfter puts the key in the lane it names once the delay has passed; a key re-added while processing keeps its lane", async () => {
    vi.useFakeTimers();
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    q.addAfter("gated", 250, "gate");
    q.add("r1", "low");
    expect(q.depth).toBe(1);
    vi.advanceTimersByTime(250);
    expect(q.depth).toBe(2);
    q.add("fresh");
    expect(await q.get()).toBe("fresh");
    expect(await q.get()).toBe("gated");
    // Re-added to the gate lane while it is processed: queued there again on done, still behind a fresh key.
    q.add("gated", "gate");
    q.add("fresh2");
    q.done("gated");
    expect(await q.get()).toBe("fresh2");
    expect(await q.get()).toBe("gated");
    expect(await q.get()).toBe("r1");
    q.shutDown();
  });
});

describe("work queue rollout lane", () => {
  it("hands rollout keys out behind fresh and gate keys, and ahead of resync keys", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 });
    q.add("r1", "low");
    for (const k of ["p1", "p2"]) q.add(k, "rollout");
    q.add("g1", "gate");
    q.add("fresh");
    expect(await q.get()).toBe("fresh");
    expect(await q.get()).toBe("g1");
    expect(await q.get()).toBe("p1");
    expect(await q.get()).toBe("p2");
    expect(await q.get()).toBe("r1");
  });

  it("processes at most rolloutSlots rollout keys at once; the others wait, resync keys do not, and a freed slot wakes a waiting worker", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 }, {}, Date.now, 2);
    for (const k of ["p1", "p2", "p3"]) q.add(k, "rollout");
    q.add("r1", "low");
    const a = await q.get();
    const b = await q.get();
    expect([a, b]).toEqual(["p1", "p2"]);
    expect([mayRollOut(q.laneOf("p1")), mayRollOut(q.laneOf("p2"))]).toEqual([true, true]);
    // Both slots taken: p3 waits, the resync key is next.
    expect(await q.get()).toBe("r1");
    expect(mayRollOut(q.laneOf("r1"))).toBe(false);
    let third: string | null | undefined;
    const pending = q.get().then((k) => (third = k));
    // The worker looked, found only a rollout key without a free slot, and waits.
    await new Promise((r) => setImmediate(r));
    expect(third).toBeUndefined();
    q.done("p1");
    await pending;
    expect(third).toBe("p3");
    q.shutDown();
  });

  it("a fresh add of a key waiting in a full rollout lane moves it up and wakes a waiting worker", async () => {
    const q = new WorkQueue({ baseMs: 1, maxMs: 10 }, {}, Date.now, 1);
    q.add("p1", "rollout");
    q.add("p2", "rollout");
    expect(await q.get()).toBe("p1");
    let next: string | null | undefined;
    const pending = q.get().then((k) => (next = k));
    await new Promise((r) => setImmediate(r));
    expect(next).toBeUndefined();
    q.add("p2");
    await pending;
    expect(next).toBe("p2");
    expect(mayRollOut(q.laneOf("p2"))).toBe(false);
    q.shutDown();
  });
});
