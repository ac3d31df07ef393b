/** RuntimeTurns on its own: who is held, for how long, and what lets a held swap go. */
import { describe, expect, it } from "vitest";
import { MAX_HOLD_MS, RuntimeTurns } from "../../src/controller/runtimeTurns.js";
import { elapse, settle, useFakeTime } from "../helpers/fakeTime.js";

describe("RuntimeTurns", () => {
  useFakeTime();

  it("holds a rollout call only while a fresh change acts, until the last one leaves", async () => {
    const turns = new RuntimeTurns();
    await settle("nobody fresh: no hold", turns.beforeRolloutCall(new AbortController().signal), 0);
    const leaveA = turns.enterFresh();
    const leaveB = turns.enterFresh();
    let released = false;
    void turns.beforeRolloutCall(new AbortController().signal).then(() => (released = true));
    leaveA();
    leaveA(); // idempotent: one change leaves once
    await elapse(10);
    expect(released).toBe(false);
    expect(turns.freshActing).toBe(1);
    leaveB();
    await elapse(0);
    expect(released).toBe(true);
    expect(turns.freshActing).toBe(0);
  });

  it("lets a held call go after MAX_HOLD_MS, or at once with an error when its reconcile is aborted", async () => {
    const turns = new RuntimeTurns();
    turns.enterFresh();
    const { tookMs } = await settle("held to the bound", turns.beforeRolloutCall(new AbortController().signal), MAX_HOLD_MS + 100);
    expect(tookMs).toBeGreaterThanOrEqual(MAX_HOLD_MS);
    const abort = new AbortController();
    const held = turns.beforeRolloutCall(abort.signal);
    abort.abort(new Error("lost leadership"));
    await expect(held).rejects.toThrow("lost leadership");
  });

  it("keeps at most maxRolloutCalls swap calls in flight; a slot comes back when its call answered, and an aborted wait takes none", async () => {
    const turns = new RuntimeTurns(MAX_HOLD_MS, 2);
    const signal = new AbortController().signal;
    const first = await turns.rolloutTurn(signal);
    const second = await turns.rolloutTurn(signal);
    let third: (() => void) | null = null;
    void turns.rolloutTurn(signal).then((done) => (third = done));
    const aborting = new AbortController();
    const aborted = turns.rolloutTurn(aborting.signal);
    await elapse(60_000);
    expect(third).toBeNull();
    expect(turns.rolloutCallsInFlight).toBe(2);
    aborting.abort(new Error("shutdown"));
    await expect(aborted).rejects.toThrow("shutdown");
    first();
    first(); // given back once
    await elapse(0);
    expect(third).not.toBeNull();
    expect(turns.rolloutCallsInFlight).toBe(2);
    second();
    third!();
    expect(turns.rolloutCallsInFlight).toBe(0);
  });
});
