/**
 * Retention on both backends (PGlite and a real PostgreSQL): the leader's
 * retention pass deletes events and finished operations past their
 * retention in small batches, keeps recent rows, running operations and the
 * newest event, and leaves the event stream's cursor semantics intact: a
 * cursor below the oldest kept event gets `cursor_expired` and the whole
 * remaining backlog. On PostgreSQL a statement past RTMANAGER_SQL_STATEMENT_TIMEOUT
 * fails with a clear service_unavailable instead of hanging.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RtmClient, type StreamedEvent } from "../../src/client/index.js";
import { RetentionRunnable, type RetentionTable } from "../../src/controller/runnables/retention.js";
import { EventStreams } from "../../src/http/events.js";
import { createLogger } from "../../src/log.js";
import { Metrics } from "../../src/metrics.js";
import { RtmError } from "../../src/model/errors.js";
import { openStore } from "../../src/store/open.js";
import { PgSqlClient } from "../../src/store/pgClient.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { slack } from "../helpers/slack.js";

const DAY = 86_400_000;
const logger = createLogger("silent");
let pg: PostgresServer;

beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);

afterAll(async () => {
  await pg?.stop();
}, 60_000);

const backends: { name: string; open: () => Promise<SqlStore> }[] = [
  { name: "PGlite", open: () => openStore({ dataDir: "memory://", logger }) },
  { name: "PostgreSQL", open: async () => openStore({ databaseUrl: await pg.createDatabase(), dataDir: "", logger, pg: { statementTimeoutMs: 5_000 } }) },
];

async function addOperation(store: SqlStore, gameId: string, startedAt: Date, outcome: "success" | "running") {
  return store.startOperation({
    opId: `op-${gameId}-${startedAt.getTime()}`,
    gameId,
    kind: "start",
    opSource: "admin_rest",
    imageRef: null,
    generation: 1,
    outcome,
    errorCode: null,
    message: null,
    stopReason: null,
    startedAt,
    finishedAt: outcome === "running" ? null : startedAt,
  });
}

/** Serves the real event stream over the store on a loopback port. */
async function serveEvents(store: SqlStore) {
  const streams = new EventStreams({ state: store, pollMs: 100, logger });
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    void streams.serve(req, res, url.searchParams, logger).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new RtmClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 5_000 });
  return {
    /** Frames until `count` events after the snapshot have arrived. */
    async read(cursor: number, count: number): Promise<StreamedEvent[]> {
      const controller = new AbortController();
      const frames: StreamedEvent[] = [];
      const timer = setTimeout(() => controller.abort(), 10_000);
      try {
        for await (const frame of client.events({ cursor, signal: controller.signal })) {
          frames.push(frame);
          if (frames.filter((f) => f.type !== "snapshot" && f.type !== "diagnostic").length >= count) break;
        }
      } finally {
        clearTimeout(timer);
        controller.abort();
      }
      return frames;
    },
    async close() {
      streams.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.each(backends)("retention on $name", ({ open }) => {
  let store: SqlStore;

  // A fresh log per test: retention deletes only a prefix of it.
  beforeEach(async () => {
    store = await open();
  }, 60_000);

  afterEach(async () => {
    await store?.close();
  });

  it("deletes old events and finished operations in batches, keeps recent rows and running operations, and counts them", async () => {
    const now = Date.now();
    const old = new Date(now - 40 * DAY);
    const recent = new Date(now - 1 * DAY);
    const oldEvents = [];
    for (let i = 0; i < 7; i++) oldEvents.push(await store.appendEvent({ gameId: "g-old", type: "container_started", opId: null, data: {}, at: old }));
    const recentEvents = [];
    for (let i = 0; i < 2; i++) recentEvents.push(await store.appendEvent({ gameId: "g-new", type: "container_started", opId: null, data: {}, at: recent }));
    for (let i = 0; i < 5; i++) await addOperation(store, "g-old", old, "success");
    const runningId = await addOperation(store, "g-old", old, "running");
    await addOperation(store, "g-new", recent, "success");

    const metrics = new Metrics({ defaultMetrics: false });
    const batches: { table: RetentionTable; rows: number }[] = [];
    const retention = new RetentionRunnable({
      store,
      settings: { eventRetentionMs: 30 * DAY, oplogRetentionMs: 30 * DAY, batchSize: 3, batchPauseMs: 10 },
      logger,
      onPruned: (table, rows) => {
        batches.push({ table, rows });
        metrics.onRetentionPruned(table, rows);
      },
    });
    const result = await retention.runNow();

    expect(result).toEqual({ runtime_events: 7, operation_log: 5 });
    // Batches of at most 3: a backlog is never one long statement.
    expect(batches.filter((b) => b.table === "runtime_events").map((b) => b.rows)).toEqual([3, 3, 1]);
    expect(batches.filter((b) => b.table === "operation_log").map((b) => b.rows)).toEqual([3, 2]);
    const text = await metrics.render();
    expect(text).toContain('rtmanager_retention_pruned_rows_total{table="runtime_events"} 7');
    expect(text).toContain('rtmanager_retention_pruned_rows_total{table="operation_log"} 5');

    const left = await store.eventsAfter(0);
    expect(left.map((e) => e.seq)).toEqual(recentEvents.map((e) => e.seq));
    const oldOps = await store.listOperations("g-old");
    expect(oldOps.map((o) => [o.id, o.outcome])).toEqual([[runningId, "running"]]);
    expect(await store.listOperations("g-new")).toHaveLength(1);

    // A second pass finds nothing.
    expect(await retention.runNow()).toEqual({ runtime_events: 0, operation_log: 0 });
  }, 60_000);

  it("prunes only a prefix of the event log and always keeps the newest event, so an expired cursor is reported as cursor_expired", async () => {
    const now = Date.now();
    const old = new Date(now - 40 * DAY);
    const recent = new Date(now - 1 * DAY);
    const before = (await store.eventBounds()).latest ?? 0;
    // An old event after a recent one (a writer's clock behind): deleting it would
    // leave a hole a resuming reader skips silently, so it stays with its successor.
    const e1 = await store.appendEvent({ gameId: "p", type: "container_started", opId: null, data: {}, at: old });
    const e2 = await store.appendEvent({ gameId: "p", type: "container_started", opId: null, data: {}, at: old });
    const e3 = await store.appendEvent({ gameId: "p", type: "probe_failed", opId: null, data: {}, at: recent });
    const e4 = await store.appendEvent({ gameId: "p", type: "probe_failed", opId: null, data: {}, at: old });
    const retention = new RetentionRunnable({ store, settings: { eventRetentionMs: 30 * DAY, oplogRetentionMs: 30 * DAY, batchSize: 2, batchPauseMs: 0 }, logger });
    await retention.runNow();
    const seqs = (await store.eventsAfter(before)).map((e) => e.seq);
    expect(seqs).toEqual([e3.seq, e4.seq]);
    expect((await store.eventBounds()).oldest).toBe(e3.seq);

    const events = await serveEvents(store);
    try {
      // A cursor from before the pruned events: told, then the whole remaining backlog.
      const frames = await events.read(e1.seq - 1, 2);
      expect(frames[0]).toMatchObject({ type: "diagnostic", data: { code: "cursor_expired", oldest: e3.seq, cursor: e3.seq - 1 } });
      expect(frames[1]!.type).toBe("snapshot");
      expect(frames.slice(2).map((f) => Number(f.id))).toEqual([e3.seq, e4.seq]);
      // oldest - 1 is still exact: nothing after it was lost, no diagnostic.
      const edge = await events.read(e2.seq, 2);
      expect(edge.map((f) => f.type)).toEqual(["snapshot", "probe_failed", "probe_failed"]);
    } finally {
      await events.close();
    }

    // Everything older than the retention: the newest event stays, so the bounds
    // still say what was pruned and a cursor below it is still reported.
    const all = new RetentionRunnable({ store, settings: { eventRetentionMs: 0, oplogRetentionMs: 30 * DAY, batchSize: 2, batchPauseMs: 0 }, logger, now: () => now + 60 * DAY });
    await all.runNow();
    expect((await store.eventsAfter(0)).map((e) => e.seq)).toEqual([e4.seq]);
    expect(await store.eventBounds()).toEqual({ oldest: e4.seq, latest: e4.seq });
    const again = await serveEvents(store);
    try {
      const frames = await again.read(e2.seq, 1);
      expect(frames[0]).toMatchObject({ type: "diagnostic", data: { code: "cursor_expired", oldest: e4.seq } });
    } finally {
      await again.close();
    }
  }, 60_000);

  it("stops between batches when its run is aborted (step-down)", async () => {
    const old = new Date(Date.now() - 40 * DAY);
    for (let i = 0; i < 6; i++) await store.appendEvent({ gameId: "s", type: "container_started", opId: null, data: {}, at: old });
    await store.appendEvent({ gameId: "s", type: "container_started", opId: null, data: {} });
    const controller = new AbortController();
    let batchesRun = 0;
    const counting = {
      pruneEvents: async (t: Date, n: number) => {
        batchesRun++;
        const rows = await store.pruneEvents(t, n);
        controller.abort();
        return rows;
      },
      pruneOperations: (t: Date, n: number) => store.pruneOperations(t, n),
    };
    const retention = new RetentionRunnable({ store: counting, settings: { eventRetentionMs: 30 * DAY, oplogRetentionMs: 30 * DAY, batchSize: 2, batchPauseMs: 5_000 }, logger });
    const started = performance.now();
    const result = await retention.runNow(controller.signal);
    expect(batchesRun).toBe(1);
    expect(result.runtime_events).toBe(2);
    // The pause between batches ends with the abort, not after 5 s.
    expect(performance.now() - started).toBeLessThan(slack(2_000));
  }, 30_000);
});

describe("SQL statement timeout on PostgreSQL", () => {
  it("a statement past RTMANAGER_SQL_STATEMENT_TIMEOUT fails with service_unavailable naming the setting, and the pool keeps working", async () => {
    const client = new PgSqlClient({ connectionString: await pg.createDatabase(), statementTimeoutMs: 300 });
    try {
      const started = performance.now();
      const err = await client.query("SELECT pg_sleep(10)").then(
        () => null,
        (e: unknown) => e,
      );
      expect(performance.now() - started).toBeLessThan(slack(3_000));
      expect(err).toBeInstanceOf(RtmError);
      expect((err as RtmError).code).toBe("service_unavailable");
      expect((err as RtmError).message).toMatch(/statement timed out \(RTMANAGER_SQL_STATEMENT_TIMEOUT=300 ms\): canceling statement due to statement timeout/);
      // Inside a transaction too, and the connection goes back usable.
      const txErr = await client.transaction((tx) => tx.query("SELECT pg_sleep(10)")).then(
        () => null,
        (e: unknown) => e,
      );
      expect((txErr as RtmError).code).toBe("service_unavailable");
      expect((await client.query<{ one: number }>("SELECT 1 AS one")).rows[0]!.one).toBe(1);
    } finally {
      await client.close();
    }
  }, 30_000);

  it("the store's pooled connections carry statement_timeout and idle_in_transaction_session_timeout", async () => {
    const url = await pg.createDatabase();
    const store = await openStore({ databaseUrl: url, dataDir: "", logger, pg: { statementTimeoutMs: 1_234, applicationName: "rtm-timeout-check" } });
    try {
      const { rows } = await store.sql.query<{ statement_timeout: string; idle: string }>(
        "SELECT current_setting('statement_timeout') AS statement_timeout, current_setting('idle_in_transaction_session_timeout') AS idle",
      );
      expect(rows[0]).toEqual({ statement_timeout: "1234ms", idle: "1234ms" });
    } finally {
      await store.close();
    }
  }, 30_000);
});
