import { describe, expect, it } from "vitest";
import { RecordCache } from "../../src/controller/recordCache.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { runtimeRecord } from "../helpers/fixtures.js";

/** A store double that counts reads and can hold a read open. */
function fakeStore(initial: RuntimeRecord[]) {
  const rows = new Map(initial.map((r) => [r.gameId, r]));
  const counts = { get: 0, list: 0 };
  let gate: Promise<void> | null = null;
  return {
    rows,
    counts,
    hold(): () => void {
      let release!: () => void;
      gate = new Promise((r) => (release = r));
      return () => {
        gate = null;
        release();
      };
    },
    async getRecord(id: string) {
      counts.get++;
      const value = rows.get(id) ?? null;
      if (gate) await gate;
      return value;
    },
    async listRecords() {
      counts.list++;
      const value = [...rows.values()];
      if (gate) await gate;
      return value;
    },
  };
}

function live(cache: RecordCache): RecordCache {
  cache.setLive(true);
  return cache;
}

describe("record cache", () => {
  it("reads through to the store until notifications flow, and again once they stop", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "a" })]);
    const cache = new RecordCache(store);
    await cache.list();
    await cache.get("a");
    expect(store.counts).toEqual({ get: 1, list: 1 });
    cache.setLive(true);
    await cache.list();
    await cache.get("a");
    expect(store.counts).toEqual({ get: 1, list: 2 });
    cache.setLive(false);
    store.rows.set("a", runtimeRecord({ gameId: "a", status: "stopped" }));
    expect((await cache.get("a"))?.status).toBe("stopped");
    expect((await cache.list()).map((r) => r.status)).toEqual(["stopped"]);
    expect(store.counts).toEqual({ get: 2, list: 3 });
  });

  it("serves repeated reads from memory and sees this process's writes at once", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "b" }), runtimeRecord({ gameId: "a" })]);
    const cache = live(new RecordCache(store));
    expect((await cache.list()).map((r) => r.gameId)).toEqual(["a", "b"]);
    await cache.list();
    await cache.get("a");
    expect(store.counts).toEqual({ get: 0, list: 1 });
    cache.put(runtimeRecord({ gameId: "a", status: "stopped" }));
    expect((await cache.get("a"))?.status).toBe("stopped");
  });

  it("re-reads a game another writer touched, and everything after a notification gap", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "a" })]);
    const cache = live(new RecordCache(store));
    await cache.list();
    store.rows.set("a", runtimeRecord({ gameId: "a", status: "removed" }));
    store.rows.set("c", runtimeRecord({ gameId: "c" }));
    cache.invalidate("a");
    cache.invalidate("c");
    const listed = await cache.list();
    expect(listed.map((r) => [r.gameId, r.status])).toEqual([
      ["a", "removed"],
      ["c", "running"],
    ]);
    store.rows.delete("c");
    cache.invalidateAll();
    expect((await cache.list()).map((r) => r.gameId)).toEqual(["a"]);
  });

  it("does not keep what a read returned if an invalidation raced it", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "a", status: "running" })]);
    const cache = live(new RecordCache(store));
    const release = store.hold();
    const reading = cache.get("a");
    store.rows.set("a", runtimeRecord({ gameId: "a", status: "stopped" }));
    cache.invalidate("a");
    release();
    expect((await reading)?.status).toBe("running");
    expect((await cache.get("a"))?.status).toBe("stopped");
  });

  it("keeps the newer record when a waiter hands in an older read, and one list object until a change", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "a" })]);
    const cache = live(new RecordCache(store));
    const first = await cache.list();
    expect(await cache.list()).toBe(first);
    const newer = runtimeRecord({ gameId: "a", status: "stopped", updatedAt: new Date(Date.now() + 2000) });
    cache.put(newer);
    cache.put(runtimeRecord({ gameId: "a", status: "running", updatedAt: new Date(Date.now() + 1000) }));
    const second = await cache.list();
    expect(second).not.toBe(first);
    expect(second.map((r) => r.status)).toEqual(["stopped"]);
  });

  it("does not let a read that started before this process's write overwrite it", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "a", status: "running" })]);
    const cache = live(new RecordCache(store));
    const release = store.hold();
    const reading = cache.get("a");
    cache.put(runtimeRecord({ gameId: "a", status: "stopped" }));
    release();
    await reading;
    expect((await cache.get("a"))?.status).toBe("stopped");
    expect(store.counts.get).toBe(1);
  });

  it("answers peeks only from memory it can trust, and never reads the store for them", async () => {
    const store = fakeStore([runtimeRecord({ gameId: "a" }), runtimeRecord({ gameId: "b" })]);
    const cache = new RecordCache(store);
    await cache.list();
    // Not live: memory may be stale, so a peek defers to the store path.
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peekList()).toBeUndefined();
    cache.setLive(true);
    // Live but nothing loaded yet.
    expect(cache.peekList()).toBeUndefined();
    expect(cache.peek("a")).toBeUndefined();
    const listed = await cache.list();
    expect(cache.peekList()).toBe(listed);
    expect(cache.peek("b")?.gameId).toBe("b");
    expect(cache.peek("zzz")).toBeUndefined();
    // Changed elsewhere: the game and the list must be read again.
    cache.invalidate("a");
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peekList()).toBeUndefined();
    store.rows.set("a", runtimeRecord({ gameId: "a", status: "stopped" }));
    expect((await cache.list()).map((r) => r.status)).toEqual(["stopped", "running"]);
    expect(cache.peek("a")?.status).toBe("stopped");
    cache.put(runtimeRecord({ gameId: "c", updatedAt: new Date(Date.now() + 1000) }));
    expect(cache.peekList()?.map((r) => r.gameId)).toEqual(["a", "b", "c"]);
    const reads = { ...store.counts };
    cache.peek("a");
    cache.peekList();
    expect(store.counts).toEqual(reads);
    cache.setLive(false);
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peekList()).toBeUndefined();
  });
});
