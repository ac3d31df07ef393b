/**
 * GET /api/v1/ext/runtimes/{game_id}/logs against real engines: a chatty
 * engine's output is capped by lines and bytes, streamed while the engine
 * runs, `follow` delivers output printed after the request started and ends
 * when the engine stops or the server's bound runs out, and the controller
 * keeps answering meanwhile. The chatter is printed into the engine's own
 * stdout (PID 1's fd 1) with docker exec, which is what Docker's log records.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { rawRequest } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";
import { slack } from "../helpers/slack.js";

const run = promisify(execFile);
const MAX_BYTES = 64 * 1024;
const FOLLOW_MAX_MS = 4000;

let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp({ env: { RTMANAGER_LOGS_MAX_BYTES: "64k", RTMANAGER_LOGS_FOLLOW_MAX: `${FOLLOW_MAX_MS}ms` } });
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

async function containerOf(gameId: string): Promise<string> {
  const record = await app.client.get(gameId);
  expect(record.current_container_id).toBeTruthy();
  return record.current_container_id!;
}

/** Runs `script` in the engine with its output going to the engine's stdout. */
async function printInEngine(containerId: string, script: string, detached = false): Promise<void> {
  await run("docker", ["exec", ...(detached ? ["-d"] : []), containerId, "sh", "-c", `(${script}) > /proc/1/fd/1`]);
}

/** Collects a stream into text; `onText` sees the text so far after every chunk. */
async function collect(stream: AsyncIterable<Uint8Array>, onText?: (text: string) => void): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    onText?.(text);
  }
  return text;
}

const path = (gameId: string, query: string) => `/api/v1/ext/runtimes/${gameId}/logs?${query}`;

describe("engine logs endpoint", () => {
  it("caps a chatty engine's output by lines and by bytes; the server's ceiling beats a larger limitBytes", async () => {
    const g = uniqueGameId("logs");
    await app.client.start(g, TEST_IMAGES.v100);
    const id = await containerOf(g);
    // 3000 lines of 100 bytes: 300 kB, far over the 64 KiB ceiling.
    await printInEngine(id, `i=0; while [ $i -lt 3000 ]; do printf 'chatty line %05d %081d\\n' $i 0; i=$((i+1)); done`);
    await waitFor("the last chatty line", async () => (await app.client.logs(g, 1)).startsWith("chatty line 02999") || undefined, 15_000, 100);

    const all = await app.client.logs(g, 10_000);
    expect(Buffer.byteLength(all)).toBe(MAX_BYTES);
    // Every stored line fits the tail, so the cap cuts the end, not the start.
    expect(all.startsWith("engine 1.0.0 starting")).toBe(true);

    const fifty = await app.client.logs(g, 50);
    const lines = fifty.split("\n").filter(Boolean);
    expect(lines).toHaveLength(50);
    expect(lines[0]).toMatch(/^chatty line 02950 /);
    expect(lines[49]).toMatch(/^chatty line 02999 /);

    const small = await rawRequest(app.baseUrl, { method: "GET", path: path(g, "tail=10000&limitBytes=1000") });
    expect(small.status).toBe(200);
    expect(small.headers["content-type"]).toMatch(/^text\/plain/);
    expect(Buffer.byteLength(small.text)).toBe(1000);
    const asksMore = await rawRequest(app.baseUrl, { method: "GET", path: path(g, "tail=10000&limitBytes=10000000") });
    expect(Buffer.byteLength(asksMore.text)).toBe(MAX_BYTES);

    for (const query of ["tail=0", "tail=10001", "limitBytes=0", "limitBytes=abc", "follow=maybe"]) {
      const bad = await rawRequest(app.baseUrl, { method: "GET", path: path(g, query) });
      expect(bad.status, query).toBe(400);
      expect(bad.json, query).toMatchObject({ error: { code: "invalid_request" } });
    }
    const none = await rawRequest(app.baseUrl, { method: "GET", path: path(uniqueGameId("none"), "tail=5") });
    expect(none.status).toBe(404);
  }, 90_000);

  it("streams while the engine runs, follows new output, ends when the engine stops, and the controller keeps answering", async () => {
    const g = uniqueGameId("logs");
    await app.client.start(g, TEST_IMAGES.v100);
    const id = await containerOf(g);
    await printInEngine(id, "i=0; while :; do echo \"chatter $i\"; i=$((i+1)); usleep 5000; done", true);

    const abort = new AbortController();
    const marker = `marker-${randomUUID()}`;
    let sawChatterAt = 0;
    let sawMarker = false;
    let runningWhenFirstBytes: string | null = null;
    const stream = collect(app.client.logStream(g, { follow: true, tail: 1, signal: abort.signal }), (text) => {
      if (!sawChatterAt && (text.match(/chatter \d+\n/g)?.length ?? 0) >= 3) sawChatterAt = Date.now();
      if (text.includes(marker)) sawMarker = true;
    });
    await waitFor("chatter through the followed stream", () => sawChatterAt > 0, 15_000);
    // The first bytes came while the engine still runs: nothing waited for it to finish.
    runningWhenFirstBytes = (await app.client.get(g)).status;
    expect(runningWhenFirstBytes).toBe("running");

    await printInEngine(id, `echo ${marker}`);
    await waitFor("the line printed after the request started", () => sawMarker, 10_000);

    // The controller is not held up by an open stream.
    const other = uniqueGameId("logs");
    const started = await app.client.start(other, TEST_IMAGES.v100);
    expect(started.status).toBe("running");

    await app.client.stop(g, "finished");
    const text = await Promise.race([stream, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("stream did not end with the engine")), 15_000))]);
    expect(text).toContain(marker);
    expect(abort.signal.aborted).toBe(false);
  }, 90_000);

  it("ends a followed stream at limitBytes, and at RTMANAGER_LOGS_FOLLOW_MAX on a quiet engine", async () => {
    const g = uniqueGameId("logs");
    await app.client.start(g, TEST_IMAGES.v100);
    const id = await containerOf(g);
    await printInEngine(id, "i=0; while [ $i -lt 2000 ]; do echo \"chatter $i\"; i=$((i+1)); usleep 2000; done", true);
    const capped = await collect(app.client.logStream(g, { follow: true, tail: 10, limitBytes: 500 }));
    expect(Buffer.byteLength(capped)).toBe(500);

    const quiet = uniqueGameId("logs");
    await app.client.start(quiet, TEST_IMAGES.v100);
    const opened = Date.now();
    const text = await collect(app.client.logStream(quiet, { follow: true, tail: 5 }));
    const tookMs = Date.now() - opened;
    expect(text).toContain("engine 1.0.0 starting");
    expect(tookMs).toBeGreaterThanOrEqual(FOLLOW_MAX_MS - 200);
    expect(tookMs).toBeLessThan(slack(FOLLOW_MAX_MS + 5000));
    expect((await app.client.get(quiet)).status).toBe("running");
  }, 90_000);
});
