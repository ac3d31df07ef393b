/**
 * The extension endpoints (docs/http-extensions.md): the full record with
 * its declaration, the operation log, the plan preview, engine logs and
 * /metrics, including who may see them when a token is set, and which
 * build answers (GET /api/v1/ext/version, the build_info gauge, the
 * start-up log line).
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import type http from "node:http";
import { Counter, Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmApiError, RtmClient } from "../../src/client/index.js";
import { createHttpServer } from "../../src/http/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { rawRequest } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";

let app: TestApp;

/** What the build info must say, worked out here without src/buildInfo.ts. */
function expectedBuild(): { version: string; commit: string; node: string } {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  const commit =
    process.env.RTMANAGER_COMMIT?.trim() ||
    (() => {
      try {
        return execFileSync("git", ["rev-parse", "HEAD"], { cwd: new URL("../..", import.meta.url), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
      } catch {
        return "unknown";
      }
    })();
  return { version: pkg.version, commit, node: process.version };
}

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp();
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

describe("extension endpoints", () => {
  it("ext record: every internal field, camelCase, with the declaration; 404 when nothing is known", async () => {
    const g = uniqueGameId("ext");
    await app.client.start(g, TEST_IMAGES.v100);
    const view = await app.client.extRecord(g);
    const stored = await app.store.getRecord(g);
    expect(view.gameId).toBe(g);
    expect(Object.keys(view.record!).sort()).toEqual(Object.keys(stored!).sort());
    expect(view.record).toMatchObject({ status: "running", observedGeneration: 1, restartCount: 0, lastErrorCode: null });
    expect(typeof view.record!.createdAt).toBe("string");
    expect(view.declaration).toMatchObject({ gameId: g, imageRef: TEST_IMAGES.v100, desiredState: "running", generation: 1 });
    expect(view.declarationError).toBeNull();

    const missing = await app.client.extRecord(uniqueGameId("none")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(RtmApiError);
    expect(missing).toMatchObject({ status: 404, code: "not_found" });
  }, 60_000);

  it("operations: newest first, limited, with op ids and sources; bad limit is 400", async () => {
    const g = uniqueGameId("ext");
    await app.client.start(g, TEST_IMAGES.v100, { opId: "ext-start-000001" });
    await app.client.stop(g, "finished", { opId: "ext-stop-0000001" });
    const ops = await app.client.operations(g);
    expect(ops[0]).toMatchObject({ opId: "ext-stop-0000001", kind: "stop", opSource: "admin_rest", stopReason: "finished", outcome: "success" });
    expect(ops.find((o) => o.opId === "ext-start-000001")).toMatchObject({ kind: "start" });
    expect(await app.client.operations(g, 1)).toHaveLength(1);
    for (const limit of ["0", "abc", "1001", "-1", "1.5"]) {
      const res = await rawRequest(app.baseUrl, { method: "GET", path: `/api/v1/ext/runtimes/${g}/operations?limit=${limit}` });
      expect(res.status, limit).toBe(400);
      expect(res.json).toMatchObject({ error: { code: "invalid_request" } });
    }
  }, 60_000);

  it("traceparent: the loop's own operation-log rows of a traced start carry the caller's trace", async () => {
    const g = uniqueGameId("trace");
    const trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const res = await rawRequest(app.baseUrl, {
      method: "POST",
      path: `/api/v1/internal/runtimes/${g}/start`,
      headers: { "content-type": "application/json", "x-op-id": "traced-loop-start-1", traceparent: trace },
      body: JSON.stringify({ image_ref: TEST_IMAGES.v100 }),
    });
    expect(res.status).toBe(200);
    const rows = (await app.client.operations(g)).filter((o) => o.opId === "traced-loop-start-1");
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.find((o) => o.kind === "start")).toMatchObject({ outcome: "success", traceParent: trace });
    for (const row of rows) expect(row.traceParent).toBe(trace);
    // A later untraced operation on the same game is not stamped with it.
    await app.client.stop(g, "finished", { opId: "untraced-stop-0001" });
    expect((await app.client.operations(g, 1))[0]).toMatchObject({ opId: "untraced-stop-0001", traceParent: null });
  }, 60_000);

  it("plan: what the loop would do now", async () => {
    const g = uniqueGameId("ext");
    await app.client.start(g, TEST_IMAGES.v100);
    const plan = await app.client.plan(g);
    expect(plan.actions).toEqual([]);
    expect(typeof plan.reason).toBe("string");
    const bad = await rawRequest(app.baseUrl, { method: "GET", path: "/api/v1/ext/runtimes/BAD/plan" });
    expect(bad.status).toBe(404);
  }, 60_000);

  it("logs: the engine's output as text; bad tail is 400", async () => {
    const g = uniqueGameId("ext");
    await app.client.start(g, TEST_IMAGES.v100);
    // The start answers once the container runs; its first line may come a moment later.
    const text = await waitFor("the engine's first log line", async () => {
      const t = await app.client.logs(g, 50);
      return t.includes("engine 1.0.0 starting") ? t : undefined;
    }, 15_000, 100);
    expect(text).toContain("engine 1.0.0 starting");
    const res = await rawRequest(app.baseUrl, { method: "GET", path: `/api/v1/ext/runtimes/${g}/logs?tail=0` });
    expect(res.status).toBe(400);
  }, 60_000);

  it("version: the same build in GET /api/v1/ext/version, rtmanager_build_info and the start-up log line", async () => {
    const want = expectedBuild();
    expect(want.version).toMatch(/^\d+\.\d+\.\d+/);
    const res = await rawRequest(app.baseUrl, { method: "GET", path: "/api/v1/ext/version" });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.json).toEqual(want);
    expect(await app.client.version()).toEqual(want);

    const metrics = await rawRequest(app.baseUrl, { method: "GET", path: "/metrics" });
    expect(metrics.text).toContain(`rtmanager_build_info{version="${want.version}",commit="${want.commit}",node="${want.node}"} 1`);

    const started = app.logs.find((l) => l.msg === "rtmanager started");
    expect(started).toMatchObject(want);

    const post = await rawRequest(app.baseUrl, { method: "POST", path: "/api/v1/ext/version" });
    expect(post.status).toBe(405);
  });

  it("/metrics renders deps.metrics, observes every request by route template, and sits behind the token", async () => {
    const registry = new Registry();
    const requests = new Counter({ name: "test_requests_total", help: "x", labelNames: ["route", "method", "status"], registers: [registry] });
    const server: http.Server = createHttpServer({
      operations: app.app.operations,
      state: app.store,
      logger: app.app.logger,
      token: "metrics-token",
      readiness: async () => null,
      metrics: {
        contentType: registry.contentType,
        render: () => registry.metrics(),
        observeRequest: (route, method, status) => requests.inc({ route, method, status: String(status) }),
      },
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await rawRequest(base, { method: "GET", path: "/metrics" })).status).toBe(401);
      const client = new RtmClient({ baseUrl: base, timeoutMs: 10_000, token: "metrics-token" });
      await client.get(uniqueGameId("none")).catch(() => undefined);
      await rawRequest(base, { method: "GET", path: "/no/such/path", headers: { authorization: "Bearer metrics-token" } });
      const res = await rawRequest(base, { method: "GET", path: "/metrics", headers: { authorization: "Bearer metrics-token" } });
      expect(res.status).toBe(200);
      expect(res.headers["content-type"]).toBe(registry.contentType);
      expect(res.text).toContain('route="/api/v1/internal/runtimes/{game_id}",method="GET",status="404"');
      expect(res.text).toContain('route="unmatched"');
      expect(res.text).not.toMatch(/route="\/no\/such/);
      // Routes whose dependency is absent do not exist.
      const plan = await rawRequest(base, { method: "GET", path: "/api/v1/ext/runtimes/abc/plan", headers: { authorization: "Bearer metrics-token" } });
      expect(plan.status).toBe(404);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
