/**
 * GET /api/v1/ext/runtimes and the traceparent round trip over HTTP, on both
 * stores (PGlite and a real PostgreSQL): what the list reads is the store's
 * records and declarations, what the trace writes is migration 7's column.
 * No loop runs here: records are written as the loop would, and the traced
 * operations are those the REST replica logs itself (a replay, a refusal).
 */
import { mkdtempSync, rmSync } from "node:fs";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmClient } from "../../src/client/index.js";
import { RuntimeOperations } from "../../src/controller/operations.js";
import { RecordWaiters } from "../../src/controller/waiters.js";
import { createHttpServer } from "../../src/http/index.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { openStore } from "../../src/store/open.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import { FakeRuntime } from "../helpers/fakeRuntime.js";
import { EXT_CONTRACT_PATH, OpenApiContract, rawRequest } from "../helpers/contract.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { runtimeRecord } from "../helpers/fixtures.js";

const ext = new OpenApiContract(EXT_CONTRACT_PATH, "ext-list");
const LIST = "/api/v1/ext/runtimes";
const T0 = new Date("2026-03-01T10:00:00Z");
const TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

function record(gameId: string, over: Partial<RuntimeRecord> = {}): RuntimeRecord {
  return runtimeRecord({ gameId, currentContainerId: `c-${gameId}`, lastProbeAt: T0, ...over }, T0);
}

interface Backend {
  store: SqlStore;
  baseUrl: string;
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The HTTP server over `store` as app.ts wires it, minus the loop; a runtime that only answers ping. */
async function serve(store: SqlStore): Promise<Omit<Backend, "store">> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level: "info" }, sink);
  const runtime = new FakeRuntime();
  const operations = new RuntimeOperations({ source: store, state: store, runtime, waiters: new RecordWaiters(), enqueue: () => undefined, opTimeoutMs: 5000, maxGames: 3 });
  const server: http.Server = createHttpServer({ operations, state: store, declarations: store, logger, readiness: async () => null });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    lines,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const backends: [string, () => Promise<Backend>][] = [];
let pgServer: PostgresServer | undefined;
const tmpDirs: string[] = [];

backends.push([
  "PGlite",
  async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "rtm-extlist-"));
    tmpDirs.push(dir);
    const store = await openStore({ dataDir: path.join(dir, "pglite") });
    const http = await serve(store);
    return { store, ...http, close: async () => (await http.close(), await store.close()) };
  },
]);
backends.push([
  "PostgreSQL",
  async () => {
    pgServer ??= await startPostgres();
    const store = await openStore({ databaseUrl: await pgServer.createDatabase(), dataDir: "" });
    const http = await serve(store);
    return { store, ...http, close: async () => (await http.close(), await store.close()) };
  },
]);

afterAll(async () => {
  await pgServer?.stop();
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe.each(backends)("ext list and traces on %s", (_name, open) => {
  let b: Backend;
  let client: RtmClient;
  const meta = { opId: "seed-op-0001", opSource: "admin_rest" as const };

  beforeAll(async () => {
    b = await open();
    client = new RtmClient({ baseUrl: b.baseUrl, timeoutMs: 10_000 });
    // a: fine; b: crash-looping and unhealthy; c: held after a rollback; d: declared, never reconciled;
    // e: on a lost node; f: stopped as declared.
    for (const id of ["a", "b", "c", "d", "e", "f"]) {
      await b.store.mutate(id, () => ({ gameId: id, imageRef: "galaxy/engine:1.0.0", desiredState: id === "f" ? "stopped" : "running", restartPolicy: "on-failure" }), meta);
    }
    await b.store.putRecord(record("a"));
    await b.store.putRecord(record("b", { restartCount: 5, health: "unhealthy", consecutiveProbeFailures: 4 }));
    await b.store.putRecord(record("c", { heldGeneration: 2, lastErrorCode: "container_start_failed", lastErrorMessage: "rolled back", lastErrorGeneration: 2 }));
    await b.store.putRecord(record("e", { lostNode: "node-7", lostNodeSince: T0 }));
    await b.store.putRecord(record("f", { status: "stopped", stoppedAt: T0, currentContainerId: null }));
  }, 120_000);

  afterAll(async () => b?.close(), 60_000);

  const list = async (query = "") => {
    const res = await rawRequest(b.baseUrl, { method: "GET", path: `${LIST}${query}` });
    ext.assert(LIST, "GET", res);
    return res;
  };

  it("lists every game with health, restarts, held generation and lost node, per the ext OpenAPI", async () => {
    const res = await list();
    expect(res.status).toBe(200);
    const items = (res.json as { items: { gameId: string; attention: string[] }[] }).items;
    expect(items.map((i) => i.gameId)).toEqual(["a", "b", "c", "d", "e", "f"]);
    const by = new Map(items.map((i) => [i.gameId, i]));
    expect(by.get("a")).toMatchObject({ status: "running", health: "healthy", attention: [] });
    expect(by.get("b")).toMatchObject({ restartCount: 5, health: "unhealthy", consecutiveProbeFailures: 4, attention: ["unhealthy", "crash_loop"] });
    expect(by.get("c")).toMatchObject({ heldGeneration: 2, lastErrorCode: "container_start_failed", attention: ["held", "error"] });
    expect(by.get("d")).toMatchObject({ status: null, desiredState: "running", generation: 1, attention: ["not_running"] });
    expect(by.get("e")).toMatchObject({ lostNode: "node-7", lostNodeSince: T0.toISOString(), attention: ["node_lost"] });
    expect(by.get("f")).toMatchObject({ status: "stopped", desiredState: "stopped", attention: [] });
  });

  it("filters on the server: status, unhealthy, both; a bad filter is 400 and the client sends them", async () => {
    const ids = async (q: string) => ((await list(q)).json as { items: { gameId: string }[] }).items.map((i) => i.gameId);
    expect(await ids("?status=stopped")).toEqual(["f"]);
    expect(await ids("?status=running&unhealthy=true")).toEqual(["b", "c", "e"]);
    expect((await client.runtimes({ unhealthy: true })).map((i) => i.gameId)).toEqual(expect.arrayContaining(["b", "c", "d", "e"]));
    expect((await client.runtimes({ statuses: ["stopped", "removed"] })).map((i) => i.gameId)).toEqual(["f"]);
    const bad = await list("?status=pending");
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: "invalid_request" } });
    expect((await list("?unhealthy=maybe")).status).toBe(400);
  });

  it("a valid traceparent is logged and stored with the operation-log row; rtmctl's client reads it back", async () => {
    // A stop of a game already stopped is a replay the REST replica logs itself.
    const res = await rawRequest(b.baseUrl, {
      method: "POST",
      path: "/api/v1/internal/runtimes/f/stop",
      headers: { "content-type": "application/json", "x-op-id": "traced-stop-0001", traceparent: TRACE },
      body: JSON.stringify({ reason: "admin_request" }),
    });
    expect(res.status).toBe(200);
    const [row] = await client.operations("f", 1);
    expect(row).toMatchObject({ opId: "traced-stop-0001", errorCode: "replay_no_op", traceParent: TRACE });
    ext.assertSchema("OperationEntry", row);
    const logged = b.lines.filter((l) => l.opId === "traced-stop-0001");
    expect(logged.length).toBeGreaterThan(0);
    for (const l of logged) expect(l).toMatchObject({ traceParent: TRACE, traceId: "4bf92f3577b34da6a3ce929d0e0e4736" });
  });

  it("a refusal carries the trace too; an invalid traceparent is ignored, not an error", async () => {
    // maxGames is 3 and more games exist: a start of a new game is refused (409) and logged.
    const refused = await rawRequest(b.baseUrl, {
      method: "POST",
      path: "/api/v1/internal/runtimes/zz-new/start",
      headers: { "content-type": "application/json", "x-op-id": "traced-start-0001", traceparent: TRACE },
      body: JSON.stringify({ image_ref: "galaxy/engine:1.0.0" }),
    });
    expect(refused.status).toBe(409);
    expect((await client.operations("zz-new", 1))[0]).toMatchObject({ opId: "traced-start-0001", outcome: "failure", traceParent: TRACE });

    const bad = await rawRequest(b.baseUrl, {
      method: "POST",
      path: "/api/v1/internal/runtimes/zz-other/start",
      headers: { "content-type": "application/json", "x-op-id": "untraced-start-01", traceparent: TRACE.toUpperCase() },
      body: JSON.stringify({ image_ref: "galaxy/engine:1.0.0" }),
    });
    expect(bad.status).toBe(409);
    const [row] = await client.operations("zz-other", 1);
    expect(row).toMatchObject({ opId: "untraced-start-01", traceParent: null });
    expect(b.lines.filter((l) => l.opId === "untraced-start-01" && "traceParent" in l)).toEqual([]);
  });
});
