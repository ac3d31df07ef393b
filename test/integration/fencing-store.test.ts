/**
 * Fenced store writes on both backends: once a newer leader has advanced the
 * installation's epoch, every loop write carrying the old one is refused
 * (nothing written, a warn line logged), while writes without a fence (REST
 * on any replica) and writes of the current epoch go through. On PostgreSQL,
 * an epoch bump also waits for a fenced write already past its check.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import pg from "pg";
import { FencedWriteError, type Fence } from "../../src/model/fence.js";
import { openStore } from "../../src/store/open.js";
import type { StoreLogger } from "../../src/store/sqlClient.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

interface LogLine {
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function capturingLogger(): StoreLogger & { warnings: LogLine[] } {
  const warnings: LogLine[] = [];
  return {
    warnings,
    debug: () => undefined,
    info: () => undefined,
    warn: (obj, msg) => void warnings.push({ obj: obj as Record<string, unknown>, msg }),
    error: () => undefined,
  };
}

async function refusal(promise: Promise<unknown>): Promise<FencedWriteError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, "the stale write should have been refused").toBeInstanceOf(FencedWriteError);
  return err as FencedWriteError;
}

function describeFencing(name: string, open: (logger: StoreLogger) => Promise<SqlStore>): void {
  describe(`fenced writes: ${name}`, () => {
    const logger = capturingLogger();
    let store: SqlStore;
    let old: Fence;
    let current: Fence;

    beforeAll(async () => {
      store = await open(logger);
      const fencing = store.fencing("rtmanager/fence-test");
      old = await fencing.advance("replica-a");
      await store.putRecord(runtimeRecord({ gameId: "g1", observedGeneration: 1 }), old);
      current = await fencing.advance("replica-b");
      expect(current.epoch).toBe(old.epoch + 1);
      expect(await fencing.current()).toBe(current.epoch);
    }, 60_000);
    afterAll(() => store?.close());

    it("a record write with a stale epoch is refused, leaves the stored record as it was, and is logged", async () => {
      const before = logger.warnings.length;
      const err = await refusal(store.putRecord(runtimeRecord({ gameId: "g1", observedGeneration: 2, status: "stopped" }), old));
      expect(err.code).toBe("service_unavailable");
      expect(err.currentEpoch).toBe(current.epoch);
      expect(await store.getRecord("g1")).toMatchObject({ observedGeneration: 1, status: "running" });
      const line = logger.warnings.slice(before).find((l) => l.msg?.startsWith("fenced write refused"));
      expect(line?.obj).toMatchObject({ write: "record of g1", epoch: old.epoch, currentEpoch: current.epoch });
    });

    it("operation-log rows, their end, events and the interrupted-operations sweep are refused with a stale epoch", async () => {
      const opsBefore = await store.listOperations("g1");
      const bounds = await store.eventBounds();
      const op = { opId: "op-1", gameId: "g1", kind: "stop" as const, opSource: "reconcile" as const, imageRef: null, generation: 2, errorCode: null, message: null, stopReason: null, startedAt: new Date() };
      await refusal(store.startOperation(op, old));
      const id = await store.startOperation(op, current);
      await refusal(store.finishOperation(id, { outcome: "success", errorCode: null, message: "stopped", finishedAt: new Date() }, old));
      await refusal(store.appendEvent({ gameId: "g1", type: "container_stopped", opId: "op-1", data: {} }, old));
      await refusal(store.markInterruptedOperations(old));

      const ops = await store.listOperations("g1");
      expect(ops).toHaveLength(opsBefore.length + 1);
      expect(ops[0]).toMatchObject({ id, outcome: "running" });
      expect(await store.eventBounds()).toEqual(bounds);
    });

    it("writes of the current epoch, and unfenced writes (REST on any replica), are applied", async () => {
      await store.putRecord(runtimeRecord({ gameId: "g1", observedGeneration: 3 }), current);
      expect((await store.getRecord("g1"))?.observedGeneration).toBe(3);
      const ev = await store.appendEvent({ gameId: "g1", type: "container_started", opId: null, data: {} }, current);
      expect(ev.seq).toBeGreaterThan(0);
      await store.putRecord(runtimeRecord({ gameId: "g2" }));
      expect(await store.getRecord("g2")).not.toBeNull();
    });

    describe("one reconcile's writes in one transaction (commitReconcile)", () => {
      const opOf = (gameId: string) => ({
        opId: `op-${gameId}`,
        gameId,
        kind: "start" as const,
        opSource: "reconcile" as const,
        imageRef: null,
        generation: 1,
        errorCode: null,
        message: null,
        stopReason: null,
        startedAt: new Date(),
      });
      const finished = { outcome: "success" as const, errorCode: null, message: "started", imageRef: "galaxy/test-engine:1.0.1", finishedAt: new Date() };
      const eventsOf = (gameId: string) => [
        { gameId, type: "container_created" as const, opId: `op-${gameId}`, data: { n: 1 } },
        { gameId, type: "container_started" as const, opId: `op-${gameId}`, data: { n: 2 } },
      ];
      const eventsOfGame = async (gameId: string) => (await store.eventsAfter(0, { gameId })).map((e) => ({ type: e.type, data: e.data }));

      it("writes the events in order, the end of the operation-log row and the record together", async () => {
        const id = await store.startOperation(opOf("c1"), current);
        const stored = await store.commitReconcile(
          { events: eventsOf("c1"), finishOperation: { id, result: finished }, record: runtimeRecord({ gameId: "c1", observedGeneration: 1 }) },
          current,
        );
        expect(stored.map((e) => e.type)).toEqual(["container_created", "container_started"]);
        expect(stored[1]!.seq).toBeGreaterThan(stored[0]!.seq);
        expect(stored[0]!.at).toBeInstanceOf(Date);
        expect(await eventsOfGame("c1")).toEqual([
          { type: "container_created", data: { n: 1 } },
          { type: "container_started", data: { n: 2 } },
        ]);
        expect((await store.listOperations("c1"))[0]).toMatchObject({ id, outcome: "success", message: "started", imageRef: "galaxy/test-engine:1.0.1" });
        expect(await store.getRecord("c1")).toMatchObject({ gameId: "c1", observedGeneration: 1 });
      });

      it("a stale epoch writes none of the three and is refused", async () => {
        const id = await store.startOperation(opOf("c2"), current);
        const err = await refusal(
          store.commitReconcile({ events: eventsOf("c2"), finishOperation: { id, result: finished }, record: runtimeRecord({ gameId: "c2" }) }, old),
        );
        expect(err.currentEpoch).toBe(current.epoch);
        expect(await eventsOfGame("c2")).toEqual([]);
        expect((await store.listOperations("c2"))[0]).toMatchObject({ id, outcome: "running" });
        expect(await store.getRecord("c2")).toBeNull();
      });

      it("a failure in the middle (the operation-log row is gone) writes none of the three", async () => {
        const err = await store
          .commitReconcile({ events: eventsOf("c3"), finishOperation: { id: 987_654_321, result: finished }, record: runtimeRecord({ gameId: "c3" }) }, current)
          .then(() => null, (e: unknown) => e);
        expect(err).toMatchObject({ code: "not_found" });
        expect(err).not.toBeInstanceOf(FencedWriteError);
        expect(await eventsOfGame("c3")).toEqual([]);
        expect(await store.getRecord("c3")).toBeNull();
      });

      it("a record the table refuses rolls back the events and the end of the operation-log row", async () => {
        const id = await store.startOperation(opOf("c4"), current);
        const bad = { ...runtimeRecord({ gameId: "c4" }), status: "exploded" } as unknown as RuntimeRecord;
        await expect(store.commitReconcile({ events: eventsOf("c4"), finishOperation: { id, result: finished }, record: bad }, current)).rejects.toThrow();
        expect(await eventsOfGame("c4")).toEqual([]);
        expect((await store.listOperations("c4"))[0]).toMatchObject({ id, outcome: "running" });
        expect(await store.getRecord("c4")).toBeNull();
      });

      it("a record written by it is announced to record watchers; a refused one is not", async () => {
        const heard: string[] = [];
        const unwatch = await store.watchRecords({ onChange: (gameId) => void heard.push(gameId) });
        try {
          await refusal(store.commitReconcile({ events: [], record: runtimeRecord({ gameId: "c6-refused" }) }, old));
          await store.commitReconcile({ events: eventsOf("c6"), record: runtimeRecord({ gameId: "c6" }) }, current);
          await vi.waitFor(() => expect(heard).toContain("c6"), { timeout: 10_000 });
          expect(heard).not.toContain("c6-refused");
        } finally {
          await unwatch();
        }
      });

      it("without a fence (and with only some parts) it writes what it is given", async () => {
        await store.commitReconcile({ events: [], record: runtimeRecord({ gameId: "c5" }) });
        expect(await store.getRecord("c5")).not.toBeNull();
        const stored = await store.commitReconcile({ events: eventsOf("c5") });
        expect(stored).toHaveLength(2);
        expect(await eventsOfGame("c5")).toHaveLength(2);
      });
    });

    it("a fence naming no epoch row at all is refused", async () => {
      await refusal(store.putRecord(runtimeRecord({ gameId: "g3" }), { name: "rtmanager/nobody", epoch: 1 }));
      expect(await store.getRecord("g3")).toBeNull();
    });
  });
}

describeFencing("pglite", (logger) => openStore({ dataDir: "memory://", logger }));

describe("fenced writes: postgresql", () => {
  let server: PostgresServer;
  let url: string;
  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase();
  }, 120_000);
  afterAll(() => server?.stop());

  describeFencing("postgresql", (logger) => openStore({ databaseUrl: url, dataDir: "unused", logger }));

  it("a one-statement fenced write past its check holds the epoch row: a bump waits for its commit", async () => {
    const store = await openStore({ databaseUrl: url, dataDir: "unused" });
    const fencing = store.fencing("rtmanager/bump-waits-for-write");
    const fence = await fencing.advance("replica-a");
    await store.putRecord(runtimeRecord({ gameId: "stalled", observedGeneration: 1 }));
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    try {
      // The record's row lock stalls the fenced upsert after its epoch check (the check is its one-time filter).
      await raw.query("BEGIN");
      await raw.query("SELECT 1 FROM runtime_records WHERE game_id = 'stalled' FOR UPDATE");
      const write = store.putRecord(runtimeRecord({ gameId: "stalled", observedGeneration: 2 }), fence);
      await new Promise((r) => setTimeout(r, 300));
      let bumped = false;
      const bump = fencing.advance("replica-b").then((f) => ((bumped = true), f));
      await new Promise((r) => setTimeout(r, 300));
      expect(bumped).toBe(false);
      await raw.query("COMMIT");
      await write;
      expect((await bump).epoch).toBe(fence.epoch + 1);
      expect((await store.getRecord("stalled"))?.observedGeneration).toBe(2);
    } finally {
      await raw.end();
      await store.close();
    }
  });

  it("a fenced write that meets a bump in progress waits for it and is refused once it commits", async () => {
    const store = await openStore({ databaseUrl: url, dataDir: "unused" });
    const fencing = store.fencing("rtmanager/write-meets-bump");
    const fence = await fencing.advance("replica-a");
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    try {
      await raw.query("BEGIN");
      await raw.query("UPDATE leader_epochs SET epoch = epoch + 1 WHERE name = $1", [fence.name]);
      const write = store.commitReconcile({ events: [{ gameId: "racer", type: "container_started", opId: null, data: {} }], record: runtimeRecord({ gameId: "racer" }) }, fence);
      await new Promise((r) => setTimeout(r, 300));
      await raw.query("COMMIT");
      const err = await refusal(write);
      expect(err.currentEpoch).toBe(fence.epoch + 1);
      expect(await store.getRecord("racer")).toBeNull();
      expect(await store.eventsAfter(0, { gameId: "racer" })).toEqual([]);
    } finally {
      await raw.end();
      await store.close();
    }
  });

  it("an epoch bump waits for a fenced write already past its check, so no older write can land after it", async () => {
    const store = await openStore({ databaseUrl: url, dataDir: "unused" });
    const fencing = store.fencing("rtmanager/bump-order");
    const fence = await fencing.advance("replica-a");
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    try {
      // What a fenced write holds between its check and its commit.
      await raw.query("BEGIN");
      await raw.query("SELECT epoch FROM leader_epochs WHERE name = $1 FOR SHARE", [fence.name]);
      let bumped = false;
      const bump = fencing.advance("replica-b").then((f) => ((bumped = true), f));
      await new Promise((r) => setTimeout(r, 300));
      expect(bumped).toBe(false);
      await raw.query("COMMIT");
      expect((await bump).epoch).toBe(fence.epoch + 1);
      await refusal(store.putRecord(runtimeRecord({ gameId: "late" }), fence));
    } finally {
      await raw.end();
      await store.close();
    }
  });
});
