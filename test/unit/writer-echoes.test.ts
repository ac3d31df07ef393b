/**
 * A REST patch queues its game in the rollout lane; the declaration watch's
 * report of the same write must not move it up to the high lane (where a
 * fleet's patch keys would wait in front of fresh starts), and must never be
 * dropped: a report that was someone else's change is still queued.
 */
import { describe, expect, it } from "vitest";
import { WorkQueue } from "../../src/controller/queue.js";
import { ECHO_WINDOW_MS, WriterEchoes } from "../../src/controller/writerEchoes.js";

describe("WriterEchoes", () => {
  it("the watch's report of a patch written here waits in the rollout lane, once, within the window", () => {
    let now = 0;
    const echoes = new WriterEchoes(() => now);
    expect(echoes.laneFor("g1")).toBe("high");
    echoes.expect("g1", "rollout");
    expect(echoes.laneFor("g1")).toBe("rollout");
    // A second report is another change: fresh.
    expect(echoes.laneFor("g1")).toBe("high");
    echoes.expect("g2", "rollout");
    now += ECHO_WINDOW_MS + 1;
    expect(echoes.laneFor("g2")).toBe("high");
  });

  it("with the queue: a patch key stays behind a start sent after it, and the watch's report of the patch does not move it up", async () => {
    const echoes = new WriterEchoes();
    const q = new WorkQueue({ baseMs: 100, maxMs: 1000 });
    // 1,000 patches: each expected before its write, queued in the rollout lane after it; the NOTIFY of some arrives first.
    for (let i = 0; i < 1000; i++) echoes.expect(`p${i}`, "rollout");
    for (let i = 0; i < 500; i++) q.add(`p${i}`, echoes.laneFor(`p${i}`));
    for (let i = 0; i < 1000; i++) q.add(`p${i}`, "rollout");
    for (let i = 500; i < 1000; i++) q.add(`p${i}`, echoes.laneFor(`p${i}`));
    q.add("start", "high");
    expect(await q.get()).toBe("start");
    expect(q.laneOf("start")).toBe("high");
  });
});
