/**
 * RecordWaiters: what wakes a REST call waiting for its record. Notifications
 * wake it at once, and the poll is only a backstop that backs off, so a
 * thousand waiting calls do not read the store thousands of times a second.
 */
import { describe, expect, it } from "vitest";
import { FIRST_POLL_MS, MAX_POLL_MS, RecordWaiters } from "../../src/controller/waiters.js";
import { elapse, useFakeTime } from "../helpers/fakeTime.js";

describe("RecordWaiters", () => {
  useFakeTime();

  it("without notifications, reads again after 250 ms, backing off to 4 s", async () => {
    const w = new RecordWaiters();
    const readsAt: number[] = [];
    const t0 = Date.now();
    void w.waitFor("g1", async () => void readsAt.push(Date.now() - t0), 60_000);
    await elapse(20_000);
    expect(readsAt.slice(0, 6)).toEqual([0, FIRST_POLL_MS, 750, 1750, 3750, 7750]);
    expect(readsAt[readsAt.length - 1]! - readsAt[readsAt.length - 2]!).toBe(MAX_POLL_MS);
    // A flat 250 ms poll would have read 81 times in these 20 s.
    expect(readsAt.length).toBe(9);
  });

  it("a notification wakes only that game's waiter, at once; notifyAll wakes every waiter", async () => {
    const w = new RecordWaiters();
    const reads = { g1: 0, g2: 0 };
    void w.waitFor("g1", async () => void reads.g1++, 60_000);
    void w.waitFor("g2", async () => void reads.g2++, 60_000);
    await elapse(4_000); // both backed off: the next polls are seconds away
    const before = { ...reads };
    w.notify("g1");
    await elapse(1);
    expect(reads).toEqual({ g1: before.g1 + 1, g2: before.g2 });
    w.notifyAll();
    await elapse(1);
    expect(reads).toEqual({ g1: before.g1 + 2, g2: before.g2 + 1 });
  });

  it("a notification that arrives while the record is being read is not lost: the next read follows at once", async () => {
    const w = new RecordWaiters();
    const readsAt: number[] = [];
    const t0 = Date.now();
    let answer: string | undefined;
    const result = w.waitFor(
      "g1",
      async () => {
        readsAt.push(Date.now() - t0);
        const seen = answer;
        // The loop writes the record (and notifies) while this read is in flight.
        if (readsAt.length === 3) {
          answer = "running";
          w.notify("g1");
        }
        await new Promise((r) => setTimeout(r, 10));
        return seen;
      },
      60_000,
    );
    await elapse(5_000);
    await expect(result).resolves.toBe("running");
    // The third read ended at 780 ms and saw the old record; the fourth came right after it, not at the next poll (1 s later).
    expect(readsAt).toEqual([0, 260, 770, 780]);
  });
});
