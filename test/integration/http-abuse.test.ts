/**
 * What an unauthenticated or careless client must not be able to leak or
 * amplify (issue 21): an event stream whose client leaves during its first
 * query, /readyz floods, and log follows past their caps. A whole app on real
 * PostgreSQL and Docker, loopback only; leaks are read from /metrics.
 */
import http from "node:http";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

let pgServer: PostgresServer;
let databaseUrl: string;
let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  pgServer = await startPostgres();
  databaseUrl = await pgServer.createDatabase();
  app = await startTestApp({ env: { DATABASE_URL: databaseUrl, RTMANAGER_MAX_LOG_FOLLOWS: "20", RTMANAGER_MAX_LOG_FOLLOWS_PER_GAME: "8" } });
}, 300_000);

afterAll(async () => {
  await app?.close();
  await pgServer?.stop();
}, 120_000);

/** One sample of a metric from /metrics, 0 when absent. */
async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? "").split(",");
    if (want.every((w) => have.includes(w))) total += Number(m[3]);
  }
  return total;
}

const port = () => Number(new URL(app.baseUrl).port);

describe("event stream subscribers", () => {
  it("a client that disconnects during the slow first query leaves no subscriber and no open stream behind", async () => {
    const database = new URL(databaseUrl).pathname.slice(1);
    const locker = new pg.Client({ connectionString: databaseUrl });
    await locker.connect();
    const N = 5;
    const eventsRoute = { route: "/api/v1/ext/events" };
    const closedBefore = await metric("rtmanager_http_requests_total", eventsRoute);
    const leftBefore = app.logs.filter((l) => l.msg === "event stream client left before its stream started").length;
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE runtime_events IN ACCESS EXCLUSIVE MODE");
      const requests = Array.from({ length: N }, () => {
        const req = http.request({ host: "127.0.0.1", port: port(), path: "/api/v1/ext/events", agent: false });
        req.on("error", () => undefined);
        req.end();
        return req;
      });
      // Each stream's first query (the event log's bounds) now waits on the lock.
      await waitFor(
        "the streams' first queries blocked on the lock",
        async () => {
          const [row] = await pgServer.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            [database],
          );
          return (row?.n ?? 0) >= N;
        },
        30_000,
      );
      for (const req of requests) req.destroy();
      // The server saw every client go (a request is counted when its response closes).
      await waitFor("the server saw the clients leave", async () => (await metric("rtmanager_http_requests_total", eventsRoute)) >= closedBefore + N, 30_000);
    } finally {
      await locker.query("ROLLBACK").catch(() => undefined);
      await locker.end();
    }
    // Either the server notices the clients left (fixed) or the streams go on and join the feed (the leak).
    await waitFor(
      "each request to finish after the lock was released",
      async () =>
        app.logs.filter((l) => l.msg === "event stream client left before its stream started").length >= leftBefore + N ||
        (await metric("rtmanager_http_open_streams", { kind: "event_subscribers" })) >= N,
      30_000,
    );
    expect(await metric("rtmanager_http_open_streams", { kind: "event_subscribers" })).toBe(0);
    expect(await metric("rtmanager_http_open_streams", { kind: "events" })).toBe(0);
  }, 120_000);
});

describe("/readyz", () => {
  it("a flood of 10,000 /readyz runs no more dependency checks than one a second (from the metrics)", async () => {
    const checksBefore = await metric("rtmanager_readiness_checks_total");
    const pingsBefore = await metric("rtmanager_docker_calls_total", { operation: "ping" });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const get = () =>
      new Promise<number>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port: port(), path: "/readyz", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
      });
    const started = performance.now();
    const statuses = new Map<number, number>();
    try {
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < 10_000) {
            next++;
            const status = await get();
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
          }
        }),
      );
    } finally {
      agent.destroy();
    }
    const seconds = (performance.now() - started) / 1000;
    expect(statuses.get(200)).toBe(10_000);
    const checks = (await metric("rtmanager_readiness_checks_total")) - checksBefore;
    const pings = (await metric("rtmanager_docker_calls_total", { operation: "ping" })) - pingsBefore;
    // One check per second of flood, plus the one running when it began.
    const allowed = Math.ceil(seconds) + 1;
    expect(checks, `${checks} checks in ${seconds.toFixed(1)} s`).toBeGreaterThanOrEqual(1);
    expect(checks, `${checks} checks in ${seconds.toFixed(1)} s`).toBeLessThanOrEqual(allowed);
    // The real dependency calls agree with the counter (the loop pings Docker on its own only on reconnects).
    expect(pings, `${pings} Docker pings in ${seconds.toFixed(1)} s`).toBeLessThanOrEqual(allowed);
  }, 300_000);
});

describe("log follows", () => {
  it("300 follows against caps of 20 per process and 8 per game: the rest get 503 with Retry-After, and every slot comes back", async () => {
    const games = [uniqueGameId("follow"), uniqueGameId("follow"), uniqueGameId("follow")];
    for (const g of games) await app.client.start(g, TEST_IMAGES.v100);
    type Answer = { status: number; retryAfter: string | undefined; code?: string; game: string; req: http.ClientRequest };
    const follow = (game: string) =>
      new Promise<Answer>((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port: port(), path: `/api/v1/ext/runtimes/${game}/logs?follow=true&tail=1`, agent: false }, (res) => {
          const answer: Answer = { status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined, game, req };
          if (answer.status === 200) return resolve(answer); // a follow: the body never ends on its own
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ ...answer, code: (JSON.parse(body) as { error?: { code: string } }).error?.code }));
        });
        req.on("error", reject);
      });
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => follow(games[i % 3]!)));
    try {
      const held = answers.filter((a) => a.status === 200);
      const refused = answers.filter((a) => a.status !== 200);
      expect(held).toHaveLength(20);
      for (const g of games) expect(held.filter((a) => a.game === g).length).toBeLessThanOrEqual(8);
      expect(refused).toHaveLength(280);
      for (const a of refused) expect([a.status, a.code, a.retryAfter]).toEqual([503, "service_unavailable", "5"]);
      expect(await metric("rtmanager_http_open_streams", { kind: "log_follows" })).toBe(20);
    } finally {
      for (const a of answers) a.req.destroy();
    }
    await waitFor("every follow slot released", async () => (await metric("rtmanager_http_open_streams", { kind: "log_follows" })) === 0, 30_000);
    // Freed slots are usable again, up to the per-game cap.
    const again = await Promise.all(Array.from({ length: 9 }, () => follow(games[0]!)));
    try {
      expect(again.filter((a) => a.status === 200)).toHaveLength(8);
      expect(again.filter((a) => a.status === 503)).toHaveLength(1);
    } finally {
      for (const a of again) a.req.destroy();
    }
  }, 180_000);
});
