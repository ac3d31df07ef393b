/**
 * The store's side of a reconcile's AbortSignal (issue 18 part 3), on both
 * backends: a write whose signal has fired sends nothing; a statement in
 * flight (here stalled on a row lock another connection holds) is given up
 * at once when the signal fires, and its result ignored.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AbortedError } from "../../src/model/abort.js";
import { openStore } from "../../src/store/open.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

function aborted(why: string): AbortSignal {
  const c = new AbortController();
  c.abort(new AbortedError(why));
  return c.signal;
}

function sendsNothingOnceFired(open: () => Promise<SqlStore>): void {
  it("a write or read whose signal has fired sends nothing and rejects with the abort reason", async () => {
    const store = await open();
    try {
      const signal = aborted("this replica lost leadership");
      await expect(store.putRecord(runtimeRecord({ gameId: "never" }), undefined, { signal })).rejects.toMatchObject({ name: "AbortError", message: "this replica lost leadership" });
      await expect(store.commitReconcile({ events: [{ gameId: "never", type: "container_started", opId: "op", data: {} }], record: runtimeRecord({ gameId: "never" }) }, undefined, { signal })).rejects.toBeInstanceOf(AbortedError);
      await expect(store.startOperation({ opId: "op", gameId: "never", kind: "start", opSource: "reconcile", imageRef: null, generation: 1, errorCode: null, message: null, stopReason: null, startedAt: new Date() }, undefined, { signal })).rejects.toBeInstanceOf(AbortedError);
      await expect(store.getRecord("never", { signal })).rejects.toBeInstanceOf(AbortedError);
      // Without a signal the same store reads and writes as ever: nothing of the above landed.
      expect(await store.getRecord("never")).toBeNull();
      expect(await store.eventsAfter(0, { gameId: "never" })).toEqual([]);
      expect(await store.listOperations("never")).toEqual([]);
    } finally {
      await store.close();
    }
  });
}

describe("store calls under a signal: pglite", () => {
  sendsNothingOnceFired(() => openStore({ dataDir: "memory://" }));
});

describe("store calls under a signal: postgresql", () => {
  let server: PostgresServer;
  let url: string;
  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase();
  }, 120_000);
  afterAll(() => server?.stop());

  sendsNothingOnceFired(() => openStore({ databaseUrl: url, dataDir: "unused" }));

  it("a write stalled in the database is given up when the signal fires; the statement itself finishes unobserved", async () => {
    const store = await openStore({ databaseUrl: url, dataDir: "unused" });
    await store.putRecord(runtimeRecord({ gameId: "stalled", observedGeneration: 1 }));
    const raw = new pg.Client({ connectionString: url });
    await raw.connect();
    try {
      await raw.query("BEGIN");
      await raw.query("SELECT 1 FROM runtime_records WHERE game_id = 'stalled' FOR UPDATE");
      const controller = new AbortController();
      let settled: unknown = "pending";
      const write = store.putRecord(runtimeRecord({ gameId: "stalled", observedGeneration: 2 }), undefined, { signal: controller.signal }).then(
        () => (settled = "written"),
        (err: unknown) => (settled = err),
      );
      // The statement is provably waiting on the lock: the server shows it blocked.
      await expect
        .poll(async () => (await raw.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).rows[0].n, { timeout: 10_000 })
        .toBe(1);
      expect(settled).toBe("pending");
      controller.abort(new AbortedError("shutting down"));
      await write;
      expect(settled).toMatchObject({ name: "AbortError", message: "shutting down" });
      await raw.query("ROLLBACK");
      // The statement was sent before the signal fired: it finishes on its own (fenced by the epoch when the loop writes).
      await expect.poll(async () => (await store.getRecord("stalled"))?.observedGeneration, { timeout: 10_000 }).toBe(2);
    } finally {
      await raw.end();
      await store.close();
    }
  });
});
