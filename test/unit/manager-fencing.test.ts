/**
 * The Manager's part of fencing: it advances the leader epoch when leading
 * starts, before any leader runnable (so before the loop can write), and the
 * state its loop writes through carries that epoch; a refused write is counted
 * and rejects, so nothing after it (the record observer) runs.
 */
import { describe, expect, it } from "vitest";
import { Manager, type Runnable } from "../../src/controller/manager.js";
import { createLogger } from "../../src/log.js";
import { FencedWriteError, type Fence, type LeaderFencing } from "../../src/model/fence.js";
import type { DeclarationSource, HealthProber, StateStore } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { fastSettings } from "../helpers/controller.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";

const logger = createLogger("silent", "test-manager-fencing");

function setup() {
  const log: string[] = [];
  const written: { record: RuntimeRecord; fence: Fence | undefined }[] = [];
  let refuse = false;
  let epoch = 0;
  const fencing: LeaderFencing = {
    advance: async (holder) => {
      log.push(`advance epoch for ${holder}`);
      return { name: "rtmanager/test", epoch: ++epoch };
    },
  };
  const state = {
    markInterruptedOperations: async () => [],
    listRecords: async () => [],
    putRecord: async (record: RuntimeRecord, fence?: Fence) => {
      if (refuse && fence) throw new FencedWriteError(`record of ${record.gameId}`, fence, fence.epoch + 1);
      written.push({ record, fence });
    },
  } as Partial<StateStore> as StateStore;
  const source = { listGameIds: async () => [], watch: async () => async () => undefined } as Partial<DeclarationSource> as DeclarationSource;
  const runtime = fakeRuntime();
  const prober: HealthProber = { probe: () => Promise.reject(new Error("no engines in this test")) };
  const mirror: Runnable = { name: "mirror", needsLeadership: true, start: () => void log.push("start mirror"), stop: async () => undefined };
  let fenced = 0;
  const settings = fastSettings({ instanceId: "host-test", engineNetwork: "none", stateRoot: "/nonexistent" });
  const manager = new Manager({
    source,
    state,
    runtime,
    prober,
    fencing,
    identity: "me",
    settings,
    logger,
    runnables: [mirror],
    hooks: { onFencedWrite: () => void fenced++ },
  });
  return { manager, log, written, refuseFromNowOn: () => (refuse = true), fenced: () => fenced };
}

describe("Manager fencing", () => {
  it("advances the epoch before any leader runnable starts, and its loop's writes carry it", async () => {
    const w = setup();
    await w.manager.start();
    try {
      expect(w.log.slice(0, 2)).toEqual(["advance epoch for me", "start mirror"]);
      await w.manager.loopState.putRecord(runtimeRecord({ gameId: "g1" }));
      expect(w.written.map((x) => x.fence)).toEqual([{ name: "rtmanager/test", epoch: 1 }]);
    } finally {
      await w.manager.stop();
    }
  });

  it("a write refused for a stale epoch is counted and rejects", async () => {
    const w = setup();
    await w.manager.start();
    try {
      w.refuseFromNowOn();
      await expect(w.manager.loopState.putRecord(runtimeRecord({ gameId: "g1" }))).rejects.toBeInstanceOf(FencedWriteError);
      expect(w.fenced()).toBe(1);
      expect(w.written).toEqual([]);
    } finally {
      await w.manager.stop();
    }
  });
});
