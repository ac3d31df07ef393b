/**
 * /metrics over a real app (createApp: PGlite, the Docker adapter on the test
 * engine, the loop, the HTTP server): a known sequence of operations must
 * move each counter by exactly the amount it implies, and no label may carry
 * a game id.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import {
  ensureTestImages,
  TEST_IMAGES,
  testDocker,
  uniqueGameId,
  uniqueInstance,
  waitFor,
} from "../helpers/docker.js";

const instance = uniqueInstance("metrics");
let testApp: TestApp;
let app: App;
let baseUrl: string;

/** A port nothing listens on: the pull fails at once, without touching the internet. */
const UNPULLABLE = "127.0.0.1:1/galaxy/engine:9.9.9";
const START = "/api/v1/internal/runtimes/{game_id}/start";
const STOP = "/api/v1/internal/runtimes/{game_id}/stop";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format, enough of it for prom-client's output. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

class Scrape {
  constructor(readonly samples: Sample[]) {}

  /** Sum over the samples of `name` whose labels include `match`; 0 when none. */
  value(name: string, match: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }
}

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${baseUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return new Scrape(parseExposition(await res.text()));
}

async function post(pathname: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${baseUrl}${pathname}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  await ensureTestImages();
  testApp = await startTestApp({
    instance,
    env: { RTMANAGER_RESYNC_INTERVAL: "2s", RTMANAGER_RETRY_BACKOFF_BASE: "100ms", RTMANAGER_LOG_LEVEL: "silent" },
  });
  app = testApp.app;
  baseUrl = testApp.baseUrl;
});

afterAll(async () => {
  await testApp?.close();
});

describe("/metrics", () => {
  it("moves each counter by what a known sequence of operations implies", async () => {
    const [a, b, broken] = [uniqueGameId("ma"), uniqueGameId("mb"), uniqueGameId("mx")];

    // Leadership comes from the store's lease; wait for it so the loop runs.
    await waitFor("leadership", async () => (await scrape()).value("rtmanager_leader") === 1, 15_000);
    const before = await scrape();

    expect((await post(`/api/v1/internal/runtimes/${a}/start`, { image_ref: TEST_IMAGES.v100 })).status).toBe(200);
    expect((await post(`/api/v1/internal/runtimes/${b}/start`, { image_ref: TEST_IMAGES.v100 })).status).toBe(200);
    expect((await post(`/api/v1/internal/runtimes/${a}/stop`, { reason: "admin_request" })).status).toBe(200);
    const failed = await post(`/api/v1/internal/runtimes/${broken}/start`, { image_ref: UNPULLABLE });
    expect(failed.status).toBe(500);
    expect((failed.json.error as { code: string }).code).toBe("image_pull_failed");

    // Convergence is observed asynchronously (the declaration's updated_at is read back), and the fleet gauges are cached.
    const after = await waitFor(
      "convergence and fleet gauges",
      async () => {
        const s = await scrape();
        const converged = s.value("rtmanager_convergence_seconds_count") - before.value("rtmanager_convergence_seconds_count");
        return converged >= 3 && s.value("rtmanager_runtimes", { status: "running" }) === 1 ? s : undefined;
      },
      20_000,
      250,
    );
    const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);

    // HTTP: by route template, method and status.
    expect(delta("rtmanager_http_requests_total", { route: START, method: "POST", status: "200" })).toBe(2);
    expect(delta("rtmanager_http_requests_total", { route: START, method: "POST", status: "500" })).toBe(1);
    expect(delta("rtmanager_http_requests_total", { route: STOP, method: "POST", status: "200" })).toBe(1);
    expect(delta("rtmanager_http_request_duration_seconds_count", { route: START, method: "POST" })).toBe(3);

    // Docker: two engines created and started, one stopped, none removed; the bad image never reached create.
    expect(delta("rtmanager_docker_api_calls_total", { operation: "create", outcome: "ok" })).toBe(2);
    expect(delta("rtmanager_docker_api_calls_total", { operation: "create", outcome: "error" })).toBe(0);
    expect(delta("rtmanager_docker_api_calls_total", { operation: "start", outcome: "ok" })).toBe(2);
    expect(delta("rtmanager_docker_api_calls_total", { operation: "stop", outcome: "ok" })).toBe(1);
    expect(delta("rtmanager_docker_api_calls_total", { operation: "remove" })).toBe(0);
    expect(delta("rtmanager_docker_api_calls_total", { operation: "pull", outcome: "error" })).toBeGreaterThanOrEqual(1);
    expect(delta("rtmanager_docker_api_duration_seconds_count", { operation: "create" })).toBe(2);

    // The loop: the failing pull is an error with its code (retried with backoff, so at least once).
    expect(delta("rtmanager_reconcile_errors_total", { code: "image_pull_failed" })).toBeGreaterThanOrEqual(1);
    expect(delta("rtmanager_reconcile_total", { result: "error" })).toBeGreaterThanOrEqual(1);
    expect(delta("rtmanager_reconcile_total", { result: "success" })).toBeGreaterThanOrEqual(3);
    expect(delta("rtmanager_reconcile_time_seconds_count")).toBe(delta("rtmanager_reconcile_total"));
    expect(delta("rtmanager_workqueue_adds_total", { name: "runtimes" })).toBeGreaterThanOrEqual(4);
    expect(delta("rtmanager_workqueue_retries_total", { name: "runtimes" })).toBeGreaterThanOrEqual(1);
    expect(delta("rtmanager_workqueue_work_duration_seconds_count", { name: "runtimes" })).toBeGreaterThanOrEqual(4);

    // Nothing crashed: no restarts, no crash loops.
    expect(delta("rtmanager_restarts_total")).toBe(0);
    expect(after.value("rtmanager_runtimes_crashlooping")).toBe(0);

    // Fleet: one engine runs, one is stopped as declared; the broken one is drift (declared running, never reached).
    expect(after.value("rtmanager_runtimes", { status: "running" })).toBe(1);
    expect(after.value("rtmanager_runtimes", { status: "stopped" })).toBeGreaterThanOrEqual(1);
    expect(after.value("rtmanager_runtimes_drift")).toBe(1);
    // a start, b start, a stop: three generations reached; the broken start never converges.
    expect(delta("rtmanager_convergence_seconds_count")).toBe(3);

    expect(after.value("rtmanager_leader")).toBe(1);
    expect(after.value("rtmanager_store_query_errors_total")).toBe(0);
    // Node process defaults are there, unprefixed.
    expect(after.samples.some((s) => s.name === "process_cpu_user_seconds_total")).toBe(true);
    expect(after.samples.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);

    // Bounded cardinality: no label value names a game.
    for (const s of after.samples) {
      for (const v of Object.values(s.labels)) {
        for (const g of [a, b, broken]) expect(v, `${s.name}${JSON.stringify(s.labels)}`).not.toContain(g);
      }
    }
  });

  it("counts restarts by cause: an exit and failed probes", async () => {
    const [exits, sick] = [uniqueGameId("mexit"), uniqueGameId("msick")];
    const before = await scrape();
    expect((await post(`/api/v1/internal/runtimes/${exits}/start`, { image_ref: TEST_IMAGES.v100 })).status).toBe(200);
    const record = await app.store.getRecord(exits);
    // SIGKILL: exit code 137 without the OOM flag, so the restart policy's "exit" restart.
    await testDocker().getContainer(record!.currentContainerId!).kill();
    await waitFor("exit restart", async () => (await scrape()).value("rtmanager_restarts_total", { reason: "exit" }) > before.value("rtmanager_restarts_total", { reason: "exit" }), 20_000, 250);

    // This image never answers /healthz: after three failed probes the loop replaces it.
    expect((await post(`/api/v1/internal/runtimes/${sick}/start`, { image_ref: TEST_IMAGES.unhealthy })).status).toBe(200);
    const after = await waitFor(
      "unhealthy restart",
      async () => {
        const s = await scrape();
        return s.value("rtmanager_restarts_total", { reason: "unhealthy" }) > before.value("rtmanager_restarts_total", { reason: "unhealthy" }) ? s : undefined;
      },
      30_000,
      250,
    );
    expect(after.value("rtmanager_restarts_total", { reason: "exit" }) - before.value("rtmanager_restarts_total", { reason: "exit" })).toBe(1);
    expect(after.value("rtmanager_restarts_total", { reason: "oom" }) - before.value("rtmanager_restarts_total", { reason: "oom" })).toBe(0);
    expect(after.value("rtmanager_probe_total", { result: "failure" })).toBeGreaterThan(before.value("rtmanager_probe_total", { result: "failure" }));
  });

  it("counts a runtime left degraded: a failed patch whose rollback target image is gone", async () => {
    const g = uniqueGameId("mdeg");
    const docker = testDocker();
    const repo = `galaxy/test-engine-gone-${instance}`;
    await docker.getImage(TEST_IMAGES.v100).tag({ repo, tag: "1.0.0" });
    await docker.getImage(TEST_IMAGES.brokenStart).tag({ repo, tag: "1.0.4" });
    try {
      const before = await scrape();
      expect(before.value("rtmanager_runtimes_degraded")).toBe(0);
      expect((await post(`/api/v1/internal/runtimes/${g}/start`, { image_ref: `${repo}:1.0.0` })).status).toBe(200);
      await docker.getImage(`${repo}:1.0.0`).remove();
      const patched = await post(`/api/v1/internal/runtimes/${g}/patch`, { image_ref: `${repo}:1.0.4` });
      expect((patched.json.error as { code: string }).code).toBe("container_start_failed");
      expect((patched.json.error as { message: string }).message).toMatch(/degraded/);
      await waitFor("degraded gauge", async () => ((await scrape()).value("rtmanager_runtimes_degraded") === 1 ? true : undefined), 20_000, 250);
    } finally {
      for (const tag of ["1.0.0", "1.0.4"]) await docker.getImage(`${repo}:${tag}`).remove().catch(() => undefined);
    }
  });

  it("labels an unknown path as unmatched, never by its raw path", async () => {
    const game = uniqueGameId("nope");
    const before = await scrape();
    expect((await fetch(`${baseUrl}/no/such/${game}`)).status).toBe(404);
    expect((await fetch(`${baseUrl}/api/v1/internal/runtimes/${game}`)).status).toBe(404);
    const after = await scrape();
    const delta = (labels: Record<string, string>) =>
      after.value("rtmanager_http_requests_total", labels) - before.value("rtmanager_http_requests_total", labels);
    expect(delta({ route: "unmatched", method: "GET", status: "404" })).toBe(1);
    expect(delta({ route: "/api/v1/internal/runtimes/{game_id}", method: "GET", status: "404" })).toBe(1);
    expect(after.samples.some((s) => Object.values(s.labels).some((v) => v.includes(game)))).toBe(false);
  });
});
