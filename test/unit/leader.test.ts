/**
 * LeaderElector against lease doubles: a lease that hangs and one that
 * refuses. A leader steps down (and stops acting) by its renew deadline
 * whatever the lease does, and each lease call is aborted at its bound.
 */
import { describe, expect, it } from "vitest";
import { LeaderElector } from "../../src/controller/leader.js";
import type { Lease } from "../../src/model/ports.js";
import { createLogger } from "../../src/log.js";
import { elapse as sleep, settle, until, useFakeTime } from "../helpers/fakeTime.js";

const logger = createLogger("silent", "test-leader");
const settings = { leaseDurationMs: 600, renewDeadlineMs: 300, retryPeriodMs: 50 };
useFakeTime();

/** A lease that grants while `mode` is "grant", refuses on "refuse", and never answers on "hang" (until aborted). */
class LeaseDouble implements Lease {
  mode: "grant" | "refuse" | "hang" = "grant";
  calls = 0;
  aborted = 0;
  pending = 0;
  released = 0;

  tryAcquire(_holder: string, _durationMs: number, signal?: AbortSignal): Promise<boolean> {
    this.calls++;
    if (this.mode === "grant") return Promise.resolve(true);
    if (this.mode === "refuse") return Promise.resolve(false);
    this.pending++;
    return new Promise<boolean>((_, reject) => {
      signal?.addEventListener("abort", () => {
        this.aborted++;
        this.pending--;
        reject(signal.reason as Error);
      });
    });
  }

  release(): Promise<void> {
    this.released++;
    return Promise.resolve();
  }
}

function elector(lease: Lease) {
  const transitions: string[] = [];
  const e = new LeaderElector(
    lease,
    "me",
    settings,
    {
      onStartedLeading: () => void transitions.push("started"),
      onStoppedLeading: () => void transitions.push("stopped"),
    },
    logger,
  );
  return { e, transitions };
}

describe("LeaderElector", () => {
  it("a renewal that hangs is aborted and the leader steps down by its renew deadline", async () => {
    const lease = new LeaseDouble();
    const { e, transitions } = elector(lease);
    e.start();
    await until("leading", () => e.isLeader);
    expect(e.mayAct()).toBe(true);

    lease.mode = "hang";
    const tookMs = await until("stepped down", () => !e.isLeader, 2000);
    // Down by the deadline counted from the last good renewal, which started no later than the hang.
    expect(tookMs).toBeLessThanOrEqual(settings.renewDeadlineMs);
    expect(e.mayAct()).toBe(false);
    expect(transitions).toEqual(["started", "stopped"]);
    // The hanging call was cancelled, not left dangling.
    await until("hung call aborted", () => lease.aborted >= 1 && lease.pending === 0, 1000);

    // Calls made as a candidate are bounded too, and the elector recovers when the lease answers again.
    await sleep(settings.renewDeadlineMs + 100);
    expect(lease.pending).toBeLessThanOrEqual(1);
    lease.mode = "grant";
    await until("leading again", () => e.isLeader, 2000);
    expect(transitions).toEqual(["started", "stopped", "started"]);
    await settle("stop", e.stop());
    expect(lease.released).toBe(1);
    expect(lease.pending).toBe(0);
  });

  it("mayAct turns false at the renew deadline even before the step-down runs", async () => {
    const lease = new LeaseDouble();
    const { e } = elector(lease);
    e.start();
    await until("leading", () => e.isLeader);
    lease.mode = "hang";
    await sleep(settings.renewDeadlineMs + 20);
    expect(e.mayAct()).toBe(false);
    await settle("stop", e.stop());
  });

  it("each term has a signal: renewals keep it, it fires at the renew deadline, on a step-down and on stop, and a new term gets a fresh one", async () => {
    const lease = new LeaseDouble();
    const { e } = elector(lease);
    expect(e.signal.aborted).toBe(true);
    e.start();
    await until("leading", () => e.isLeader);
    const first = e.signal;
    // Many renewals later (each moves the deadline on), the term goes on.
    const calls = lease.calls;
    await sleep(settings.renewDeadlineMs * 3);
    expect(lease.calls).toBeGreaterThan(calls + 3);
    expect(first.aborted).toBe(false);

    lease.mode = "hang";
    const hungAt = performance.now();
    let firedAt = 0;
    first.addEventListener("abort", () => (firedAt = performance.now()));
    await until("the term's signal fired", () => first.aborted, 2000);
    expect(firedAt - hungAt).toBeLessThanOrEqual(settings.renewDeadlineMs);
    expect(first.reason).toMatchObject({ name: "AbortError", message: expect.stringMatching(/lost leadership/) });

    lease.mode = "grant";
    await until("leading again", () => e.isLeader && !e.signal.aborted, 2000);
    const second = e.signal;
    expect(second).not.toBe(first);
    await settle("stop", e.stop());
    expect(second.aborted).toBe(true);
    expect(second.reason).toMatchObject({ message: expect.stringMatching(/shutting down/) });
  });

  it("a lease that refuses makes the leader step down at once; a candidate never leads", async () => {
    const lease = new LeaseDouble();
    const { e, transitions } = elector(lease);
    e.start();
    await until("leading", () => e.isLeader);
    lease.mode = "refuse";
    // At the next renewal, one retry period away at most.
    expect(await until("stepped down", () => !e.isLeader, 1000)).toBeLessThanOrEqual(settings.retryPeriodMs);
    expect(e.mayAct()).toBe(false);
    const calls = lease.calls;
    await sleep(200);
    expect(e.isLeader).toBe(false);
    expect(lease.calls).toBeGreaterThan(calls); // keeps trying every retry period
    expect(transitions).toEqual(["started", "stopped"]);
    await settle("stop", e.stop());
    expect(lease.released).toBe(0);
  });

  it("stop() returns promptly while a lease call hangs", async () => {
    const lease = new LeaseDouble();
    lease.mode = "hang";
    const { e } = elector(lease);
    e.start();
    await sleep(20);
    // The hanging attempt is aborted at its bound (the renew deadline from its start): stop waits no longer.
    const { tookMs } = await settle("stop", e.stop());
    expect(tookMs).toBeLessThanOrEqual(settings.renewDeadlineMs);
    expect(e.isLeader).toBe(false);
  });
});
