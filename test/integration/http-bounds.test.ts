/**
 * Each bounded resource of the HTTP surface pushed past its bound, over real
 * parts on loopback: event streams (and their one shared reader), mutations
 * in flight, and slow or silent sockets.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId } from "../helpers/docker.js";

const R = "/api/v1/internal/runtimes";

interface Opened {
  status: number;
  headers: http.IncomingHttpHeaders;
  res: http.IncomingMessage;
  req: http.ClientRequest;
  text: () => string;
}

/** Opens a request and resolves at its response head; the body keeps accumulating. */
function open(t: TestApp, method: string, path: string, body?: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) };
    const req = http.request({ host: "127.0.0.1", port: Number(new URL(t.baseUrl).port), method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("error", () => {});
      resolve({ status: res.statusCode ?? 0, headers: res.headers, res, req, text: () => text });
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function finished(o: Opened): Promise<string> {
  if (!o.res.complete) await new Promise((r) => o.res.once("end", r));
  return o.text();
}

const startBody = JSON.stringify({ image_ref: TEST_IMAGES.v100 });

describe("event streams", () => {
  let t: TestApp;
  const streams: Opened[] = [];

  beforeAll(async () => {
    await ensureTestImages();
    t = await startTestApp();
  }, 120_000);

  afterAll(async () => {
    for (const s of streams) s.req.destroy();
    await t?.close();
  });

  it("300 streams with a cap of 256: the rest get 503 + Retry-After; one reader feeds them all; the controller stays responsive", async () => {
    // Counts every read of the event log, the feed's and each stream's own backlog reads.
    let reads = 0;
    const eventsAfter = t.store.eventsAfter.bind(t.store);
    t.store.eventsAfter = (...args: Parameters<typeof eventsAfter>) => {
      reads++;
      return eventsAfter(...args);
    };
    const opened = await Promise.all(Array.from({ length: 300 }, () => open(t, "GET", "/api/v1/ext/events")));
    streams.push(...opened);
    const ok = opened.filter((o) => o.status === 200);
    const refused = opened.filter((o) => o.status === 503);
    expect(ok.length).toBe(256);
    expect(refused.length).toBe(44);
    for (const r of refused) {
      expect(r.headers["retry-after"]).toMatch(/^[0-9]+$/);
      expect(JSON.parse(await finished(r))).toMatchObject({ error: { code: "service_unavailable" } });
      expect(JSON.parse(r.text()).error.message).toContain("RTMANAGER_MAX_EVENT_STREAMS");
    }
    // Every stream has its snapshot, then the backlog reads are done.
    await expect.poll(() => ok.every((o) => o.text().includes("event: snapshot")), { timeout: 30_000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 500));

    // Below the bound the controller answers as usual.
    reads = 0;
    const g = uniqueGameId("sse");
    const started = await open(t, "POST", `${R}/${g}/start`, startBody);
    expect(started.status, await finished(started)).toBe(200);
    expect((await open(t, "GET", "/readyz")).status).toBe(200);
    // Every open stream gets the new game's events, from one shared reader.
    await expect.poll(() => ok.every((o) => o.text().includes(`"gameId":"${g}"`)), { timeout: 20_000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 3000));
    // One poller: a handful of reads over several seconds, not one per stream per second (256 × 3+).
    expect(reads).toBeLessThan(40);

    // A slot frees when a stream closes.
    ok[0]!.req.destroy();
    await expect.poll(async () => {
      const again = await open(t, "GET", "/api/v1/ext/events");
      streams.push(again);
      return again.status;
    }, { timeout: 5000 }).toBe(200);
  }, 120_000);
});

describe("mutations in flight", () => {
  let t: TestApp;

  beforeAll(async () => {
    await ensureTestImages();
    t = await startTestApp({ env: { RTMANAGER_MAX_CONCURRENT_MUTATIONS: "2" } });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it("past RTMANAGER_MAX_CONCURRENT_MUTATIONS a mutation gets 503 service_unavailable with Retry-After and writes nothing", async () => {
    const games = Array.from({ length: 6 }, () => uniqueGameId("cap"));
    const answers = await Promise.all(games.map((g) => open(t, "POST", `${R}/${g}/start`, startBody)));
    const bodies = await Promise.all(answers.map(finished));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200).length).toBe(2);
    expect(statuses.filter((s) => s === 503).length).toBe(4);
    answers.forEach((a, i) => {
      if (a.status !== 503) return;
      expect(a.headers["retry-after"]).toBe("1");
      expect(JSON.parse(bodies[i]!)).toMatchObject({ error: { code: "service_unavailable" } });
    });
    // Refused ones wrote nothing; once the first finished, slots are free again.
    const refusedGame = games[statuses.indexOf(503)]!;
    expect(await t.store.getRecord(refusedGame)).toBeNull();
    const retry = await open(t, "POST", `${R}/${refusedGame}/start`, startBody);
    expect(retry.status, await finished(retry)).toBe(200);
  }, 120_000);
});

describe("socket timeouts", () => {
  let t: TestApp;

  beforeAll(async () => {
    await ensureTestImages();
    t = await startTestApp({ env: { RTMANAGER_HTTP_REQUEST_TIMEOUT: "1s", RTMANAGER_HTTP_IDLE_TIMEOUT: "1s", RTMANAGER_START_WAIT_HEALTHY: "true", RTMANAGER_PATCH_MIN_HEALTHY: "2s" } });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it("a client that never finishes its request is cut off; a mutation waiting longer than the idle timeout still answers", async () => {
    const socket = net.connect(Number(new URL(t.baseUrl).port), "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const startedAt = Date.now();
    socket.write("POST /api/v1/internal/runtimes/x/start HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 100\r\n\r\n{");
    const closedAt = await new Promise<number>((resolve) => {
      socket.on("data", () => {});
      socket.once("close", () => resolve(Date.now()));
    });
    expect(closedAt - startedAt).toBeLessThan(6000);

    // Gated on 2 s of health, a start keeps its socket silent well past the 1 s idle timeout.
    const g = uniqueGameId("slow");
    const began = Date.now();
    const started = await open(t, "POST", `${R}/${g}/start`, startBody);
    expect(started.status, await finished(started)).toBe(200);
    expect(Date.now() - began).toBeGreaterThan(1500);
  }, 60_000);
});
