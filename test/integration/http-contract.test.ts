/**
 * Every path of the internal contract with every status it documents, over
 * real Docker and a real store, each body checked against the contract's
 * schemas read from ../shared/contract at test time. The last test fails if
 * a documented (path, method, status) was never produced.
 */
import { randomBytes } from "node:crypto";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HTTP_STATUS_BY_CODE } from "../../src/model/errors.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { assertContract, assertSchema, contractOperations, jsonRequest, observed, rawRequest, type LiveResponse } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId } from "../helpers/docker.js";

const R = "/api/v1/internal/runtimes";
const T = {
  healthz: "/healthz",
  readyz: "/readyz",
  list: R,
  get: `${R}/{game_id}`,
  start: `${R}/{game_id}/start`,
  stop: `${R}/{game_id}/stop`,
  restart: `${R}/{game_id}/restart`,
  patch: `${R}/{game_id}/patch`,
  cleanup: `${R}/{game_id}/container`,
} as const;

/** Documented, but this implementation has no way to produce it. */
const UNREACHABLE = new Set([
  // Stop never conflicts: stopping a stopped or removed runtime is a replay (200).
  `POST ${T.stop} 409`,
]);

let app: TestApp;
/** Docker behind a socket nobody listens on. */
let deadDocker: TestApp;
/** Its SQL tables are sabotaged for 500s, then its store is closed for 503s. */
let sick: TestApp;

type Op = keyof typeof T;
const METHOD: Record<Op, string> = {
  healthz: "GET",
  readyz: "GET",
  list: "GET",
  get: "GET",
  start: "POST",
  stop: "POST",
  restart: "POST",
  patch: "POST",
  cleanup: "DELETE",
};

async function call(
  on: TestApp,
  op: Op,
  gameId = "",
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<LiveResponse> {
  const p = T[op].replace("{game_id}", encodeURIComponent(gameId));
  const res = await jsonRequest(on.baseUrl, METHOD[op], p, body, headers);
  assertContract(T[op], METHOD[op], res);
  expect(res.headers["x-op-id"]).toBeTruthy();
  return res;
}

function expectError(res: LiveResponse, status: number, code: string): void {
  expect({ status: res.status, body: res.json }).toMatchObject({ status, body: { error: { code } } });
  expect(HTTP_STATUS_BY_CODE[code as keyof typeof HTTP_STATUS_BY_CODE]).toBe(status);
}

interface Rec {
  game_id: string;
  status: string;
  current_container_id: string | null;
  current_image_ref: string | null;
}
const rec = (res: LiveResponse) => res.json as Rec;

async function startRunning(gameId: string, image: string = TEST_IMAGES.v100): Promise<Rec> {
  const res = await call(app, "start", gameId, { image_ref: image });
  expect(res.status, res.text).toBe(200);
  return rec(res);
}

beforeAll(async () => {
  await ensureTestImages();
  [app, deadDocker, sick] = await Promise.all([
    startTestApp(),
    startTestApp({ dockerode: new Dockerode({ socketPath: `/tmp/rtm-no-docker-${randomBytes(4).toString("hex")}.sock` }), start: false }),
    startTestApp({ start: false }),
  ]);
}, 240_000);

afterAll(async () => {
  await Promise.all([app?.close(), deadDocker?.close(), sick?.close()]);
}, 120_000);

describe("probes", () => {
  it("GET /healthz is 200 {status: ok}", async () => {
    const res = await call(app, "healthz");
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: "ok" });
    expect((await call(deadDocker, "healthz")).status).toBe(200);
  });

  it("GET /readyz is 200 when ready and 503 service_unavailable naming the reason when Docker is gone", async () => {
    const ok = await call(app, "readyz");
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ status: "ready" });
    const down = await call(deadDocker, "readyz");
    expectError(down, 503, "service_unavailable");
    expect((down.json as { error: { message: string } }).error.message).toMatch(/docker/i);

    // Docker answers, but the configured network is gone.
    const network = `rtm-missing-${randomBytes(4).toString("hex")}`;
    const noNetwork = await startTestApp({ network, start: false });
    try {
      const missing = await call(noNetwork, "readyz");
      expectError(missing, 503, "service_unavailable");
      expect((missing.json as { error: { message: string } }).error.message).toContain(`Docker network ${network} (RTMANAGER_DOCKER_NETWORK) does not exist`);
    } finally {
      await noNetwork.close();
    }
  }, 60_000);
});

describe("runtimes", () => {
  it("list: 200 with items, each a contract record", async () => {
    const g = uniqueGameId();
    await startRunning(g);
    const res = await call(app, "list");
    expect(res.status).toBe(200);
    const items = (res.json as { items: Rec[] }).items;
    expect(items.find((r) => r.game_id === g)).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v100 });
  });

  it("get: 200 for a known game, 404 not_found for an unknown or impossible one", async () => {
    const g = uniqueGameId();
    const started = await startRunning(g);
    const res = await call(app, "get", g);
    expect(res.status).toBe(200);
    expect(res.json).toEqual(started);
    expectError(await call(app, "get", uniqueGameId("nope")), 404, "not_found");
    expectError(await call(app, "get", "Not-A-Game"), 404, "not_found");
  });

  it("start: 200 running, 200 replay (replay_no_op logged), 400, 409 on another image, 500 image_pull_failed", async () => {
    const g = uniqueGameId();
    const first = await startRunning(g);
    expect(first.status).toBe("running");
    expect(first.current_container_id).toBeTruthy();
    const containers = await app.docker.listForGame(g);
    expect(containers.map((c) => c.id)).toEqual([first.current_container_id]);

    const replay = await call(app, "start", g, { image_ref: TEST_IMAGES.v100 }, { "x-op-id": "replay-op-0001" });
    expect(replay.status).toBe(200);
    expect(rec(replay).current_container_id).toBe(first.current_container_id);
    const ops = await app.store.listOperations(g);
    expect(ops.find((o) => o.opId === "replay-op-0001")).toMatchObject({ errorCode: "replay_no_op", outcome: "no_op" });

    expectError(await call(app, "start", g, { image_ref: 42 }), 400, "invalid_request");
    expectError(await call(app, "start", g, { image_ref: TEST_IMAGES.v101 }), 409, "conflict");

    const missing = uniqueGameId();
    const pull = await call(app, "start", missing, { image_ref: "galaxy/does-not-exist:1.0.0" });
    expectError(pull, 500, "image_pull_failed");
    expect(await app.docker.listForGame(missing)).toEqual([]);
  }, 60_000);

  it("start: 500 container_start_failed when the engine cannot start", async () => {
    const res = await call(app, "start", uniqueGameId(), { image_ref: TEST_IMAGES.brokenStart });
    expectError(res, 500, "container_start_failed");
  }, 60_000);

  it("stop: 200 stopped, 200 replay, 400 bad reason, 404 unknown", async () => {
    const g = uniqueGameId();
    await startRunning(g);
    const res = await call(app, "stop", g, { reason: "finished" });
    expect(res.status).toBe(200);
    expect(rec(res).status).toBe("stopped");
    const [c] = await app.docker.listForGame(g);
    expect(c?.phase).toBe("exited");

    const again = await call(app, "stop", g, { reason: "finished" });
    expect(again.status).toBe(200);
    expect(rec(again).status).toBe("stopped");

    expectError(await call(app, "stop", g, { reason: "bored" }), 400, "invalid_request");
    expectError(await call(app, "stop", uniqueGameId("nope"), { reason: "cancelled" }), 404, "not_found");
  }, 60_000);

  it("restart: 200 with a new container id and the same endpoint, 404 unknown, 409 when removed", async () => {
    const g = uniqueGameId();
    const first = await startRunning(g);
    const res = await call(app, "restart", g);
    expect(res.status, res.text).toBe(200);
    const after = res.json as Rec & { engine_endpoint: string };
    expect(after.status).toBe("running");
    expect(after.current_container_id).not.toBe(first.current_container_id);
    expect(after.engine_endpoint).toBe((first as Rec & { engine_endpoint: string }).engine_endpoint);
    expect((await app.docker.listForGame(g)).map((c) => c.id)).toEqual([after.current_container_id]);

    // An empty JSON object is accepted as "no body".
    const withEmptyObject = await call(app, "restart", g, {});
    expect(withEmptyObject.status, withEmptyObject.text).toBe(200);

    expectError(await call(app, "restart", uniqueGameId("nope")), 404, "not_found");

    await call(app, "stop", g, { reason: "admin_request" });
    expect((await call(app, "cleanup", g)).status).toBe(200);
    expectError(await call(app, "restart", g), 409, "conflict");
  }, 90_000);

  it("restart: 500 when the recreated engine cannot start", async () => {
    const g = uniqueGameId();
    expectError(await call(app, "start", g, { image_ref: TEST_IMAGES.brokenStart }), 500, "container_start_failed");
    expectError(await call(app, "restart", g), 500, "container_start_failed");
  }, 60_000);

  it("patch: 200 within the line, 400 image_ref_not_semver, 404, 409 semver_patch_only and conflict, 500 on a broken engine", async () => {
    const g = uniqueGameId();
    const first = await startRunning(g, TEST_IMAGES.v100);
    const res = await call(app, "patch", g, { image_ref: TEST_IMAGES.v101 });
    expect(res.status, res.text).toBe(200);
    expect(rec(res)).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101 });
    expect(rec(res).current_container_id).not.toBe(first.current_container_id);

    expectError(await call(app, "patch", g, { image_ref: "galaxy/test-engine:latest" }), 400, "image_ref_not_semver");
    expectError(await call(app, "patch", g, { image_ref: TEST_IMAGES.v110 }), 409, "semver_patch_only");
    expectError(await call(app, "patch", uniqueGameId("nope"), { image_ref: TEST_IMAGES.v101 }), 404, "not_found");

    const broken = await call(app, "patch", g, { image_ref: TEST_IMAGES.brokenStart });
    expectError(broken, 500, "container_start_failed");

    const s = uniqueGameId();
    await startRunning(s);
    await call(app, "stop", s, { reason: "finished" });
    expectError(await call(app, "patch", s, { image_ref: TEST_IMAGES.v101 }), 409, "conflict");
  }, 120_000);

  it("cleanup: 200 removed after a stop, 404 unknown, 409 while running", async () => {
    const g = uniqueGameId();
    await startRunning(g);
    expectError(await call(app, "cleanup", g), 409, "conflict");
    await call(app, "stop", g, { reason: "cancelled" });
    const res = await call(app, "cleanup", g);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: "removed", current_container_id: null, current_image_ref: null, engine_endpoint: null });
    expect(await app.docker.listForGame(g)).toEqual([]);
    expectError(await call(app, "cleanup", uniqueGameId("nope")), 404, "not_found");

    // The declaration deleted by hand: GET still shows the removed record, so
    // stop and cleanup of it are replays, not 404s.
    await app.store.sql.query("DELETE FROM declarations WHERE game_id = $1", [g]);
    expect((await call(app, "get", g)).status).toBe(200);
    for (const [op, body] of [["stop", { reason: "finished" }], ["cleanup", undefined]] as const) {
      const replay = await call(app, op, g, body, { "x-op-id": `replay-${op}-0001` });
      expect(replay.status, replay.text).toBe(200);
      expect(replay.json).toMatchObject({ status: "removed" });
      const ops = await app.store.listOperations(g, 10);
      expect(ops.find((o) => o.opId === `replay-${op}-0001`)).toMatchObject({ kind: op, outcome: "no_op", errorCode: "replay_no_op" });
    }
  }, 60_000);

  it("mutations answer 503 docker_unavailable when Docker is gone, and write nothing", async () => {
    const g = uniqueGameId();
    expectError(await call(deadDocker, "start", g, { image_ref: TEST_IMAGES.v100 }), 503, "docker_unavailable");
    expectError(await call(deadDocker, "stop", g, { reason: "finished" }), 503, "docker_unavailable");
    expectError(await call(deadDocker, "restart", g), 503, "docker_unavailable");
    expectError(await call(deadDocker, "patch", g, { image_ref: TEST_IMAGES.v101 }), 503, "docker_unavailable");
    expectError(await call(deadDocker, "cleanup", g), 503, "docker_unavailable");
    expect(await deadDocker.store.get(g)).toBeNull();
    expect(await deadDocker.store.getRecord(g)).toBeNull();
  }, 60_000);

  it("every path answers 500 internal_error on a store fault, without leaking the SQL error", async () => {
    await sick.store.sql.query("ALTER TABLE runtime_records RENAME TO runtime_records_sabotaged");
    const g = uniqueGameId();
    const answers = [
      await call(sick, "list"),
      await call(sick, "get", g),
      await call(sick, "start", g, { image_ref: TEST_IMAGES.v100 }),
      await call(sick, "stop", g, { reason: "finished" }),
      await call(sick, "restart", g),
      await call(sick, "patch", g, { image_ref: TEST_IMAGES.v101 }),
      await call(sick, "cleanup", g),
    ];
    for (const res of answers) {
      expectError(res, 500, "internal_error");
      expect(res.text).not.toMatch(/runtime_records|relation|stack|at /);
    }
    const errors = sick.logs.filter((l) => l.msg === "unexpected error");
    expect(errors.length).toBeGreaterThanOrEqual(answers.length);
    // The log keeps the detail and the op id the client got.
    const opId = answers[0]!.headers["x-op-id"];
    expect(errors.find((l) => l.opId === opId)).toBeTruthy();
    await sick.store.sql.query("ALTER TABLE runtime_records_sabotaged RENAME TO runtime_records");
  });

  it("every path answers 503 service_unavailable when the store is gone", async () => {
    await sick.store.close();
    const g = uniqueGameId();
    expectError(await call(sick, "list"), 503, "service_unavailable");
    expectError(await call(sick, "get", g), 503, "service_unavailable");
    expectError(await call(sick, "start", g, { image_ref: TEST_IMAGES.v100 }), 503, "service_unavailable");
    expectError(await call(sick, "stop", g, { reason: "finished" }), 503, "service_unavailable");
    expectError(await call(sick, "restart", g), 503, "service_unavailable");
    expectError(await call(sick, "patch", g, { image_ref: TEST_IMAGES.v101 }), 503, "service_unavailable");
    expectError(await call(sick, "cleanup", g), 503, "service_unavailable");
    expectError(await call(sick, "readyz"), 503, "service_unavailable");
  });
});

describe("transport", () => {
  it("adopts a well-formed X-Op-Id, mints one otherwise, and the operation log rows carry it", async () => {
    const g = uniqueGameId();
    const adopted = await call(app, "start", g, { image_ref: TEST_IMAGES.v100 }, { "x-op-id": "gm-req-2024-0001" });
    expect(adopted.status).toBe(200);
    expect(adopted.headers["x-op-id"]).toBe("gm-req-2024-0001");
    const start = (await app.store.listOperations(g)).filter((o) => o.kind === "start");
    expect(start.length).toBeGreaterThan(0);
    expect(start.every((o) => o.opId === "gm-req-2024-0001")).toBe(true);

    const minted = await call(app, "stop", g, { reason: "finished" }, { "x-op-id": "bad id!" });
    const mintedId = String(minted.headers["x-op-id"]);
    expect(mintedId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await app.store.listOperations(g)).find((o) => o.kind === "stop")?.opId).toBe(mintedId);

    // Every log line of that request names it.
    const lines = app.logs.filter((l) => l.opId === "gm-req-2024-0001" && l.route === T.start);
    expect(lines.length).toBeGreaterThan(0);

    // Errors carry it too.
    const err = await call(app, "get", uniqueGameId("nope"), undefined, { "x-op-id": "lookup-op-0042" });
    expect(err.headers["x-op-id"]).toBe("lookup-op-0042");
  }, 60_000);

  it("X-Galaxy-Caller gm -> op_source gm_rest; missing or unknown -> admin_rest", async () => {
    const cases: [Record<string, string>, string][] = [
      [{ "x-galaxy-caller": "gm" }, "gm_rest"],
      [{ "x-galaxy-caller": "admin" }, "admin_rest"],
      [{}, "admin_rest"],
      [{ "x-galaxy-caller": "lobby" }, "admin_rest"],
    ];
    for (const [headers, source] of cases) {
      const g = uniqueGameId();
      const opId = `caller-${randomBytes(6).toString("hex")}`;
      const res = await call(app, "start", g, { image_ref: TEST_IMAGES.v100 }, { ...headers, "x-op-id": opId });
      expect(res.status).toBe(200);
      const op = (await app.store.listOperations(g)).find((o) => o.opId === opId && o.kind === "start");
      expect(op?.opSource, JSON.stringify(headers)).toBe(source);
      await call(app, "stop", g, { reason: "finished" });
    }
  }, 90_000);

  it("unknown path: 404 not_found; wrong method: 405 with Allow and the envelope", async () => {
    const missing = await rawRequest(app.baseUrl, { method: "GET", path: "/api/v1/internal/nothing" });
    expect(missing.status).toBe(404);
    assertSchema("ErrorResponse", missing.json);
    expect(missing.json).toMatchObject({ error: { code: "not_found" } });

    const wrong = await rawRequest(app.baseUrl, { method: "PUT", path: `${R}/some-game/start` });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe("POST");
    assertSchema("ErrorResponse", wrong.json);
    expect(wrong.json).toMatchObject({ error: { code: "invalid_request" } });
    expect(wrong.headers["x-op-id"]).toBeTruthy();

    const del = await rawRequest(app.baseUrl, { method: "POST", path: R });
    expect(del.status).toBe(405);
    expect(del.headers.allow).toBe("GET");
  });

  it("bearer token: probes stay open; everything else needs it (401 envelope); no token configured means no auth", async () => {
    const secured = await startTestApp({ token: "s3cret-token-value-0123456789abcdef", start: false, network: app.network });
    try {
      expect((await call(secured, "healthz")).status).toBe(200);
      expect((await call(secured, "readyz")).status).toBe(200);

      const none = await rawRequest(secured.baseUrl, { method: "GET", path: R });
      expect(none.status).toBe(401);
      assertSchema("ErrorResponse", none.json);
      expect(none.json).toMatchObject({ error: { code: "invalid_request", message: expect.stringMatching(/missing/) } });
      expect(none.headers["x-op-id"]).toBeTruthy();

      const wrong = await rawRequest(secured.baseUrl, { method: "GET", path: R, headers: { authorization: "Bearer nope" } });
      expect(wrong.status).toBe(401);
      expect(wrong.json).toMatchObject({ error: { code: "invalid_request", message: expect.stringMatching(/wrong/) } });

      const unknownPath = await rawRequest(secured.baseUrl, { method: "GET", path: "/nothing" });
      expect(unknownPath.status).toBe(401);

      const ok = await call(secured, "list", "", undefined, { authorization: "Bearer s3cret-token-value-0123456789abcdef" });
      expect(ok.status).toBe(200);
      expect(await secured.client.list()).toEqual([]);
      const events = await rawRequest(secured.baseUrl, { method: "GET", path: "/api/v1/ext/events" });
      expect(events.status).toBe(401);
    } finally {
      await secured.close();
    }
    // The main app has no token: plain requests work.
    expect((await rawRequest(app.baseUrl, { method: "GET", path: R })).status).toBe(200);
  }, 60_000);

  it("answers every documented status of every contract operation", () => {
    const missing: string[] = [];
    for (const { template, method, statuses } of contractOperations()) {
      for (const status of statuses) {
        const key = `${method} ${template} ${status}`;
        if (!observed.has(key) && !UNREACHABLE.has(key)) missing.push(key);
      }
    }
    expect(missing).toEqual([]);
  });
});
