/**
 * Every path of docs/ext-openapi.yaml with every status it documents, from a
 * real app (PGlite, Docker, the loop), each JSON body checked against the
 * document's schemas. The last test fails if a documented (path, method,
 * status) was never produced, so the document cannot promise what the server
 * does not do; assertions fail on any status it does not document.
 */
import type { AddressInfo } from "node:net";
import type http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpServer } from "../../src/http/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { EXT_CONTRACT_PATH, OpenApiContract, jsonRequest, rawRequest, responseHead, type LiveResponse } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";

const ext = new OpenApiContract(EXT_CONTRACT_PATH, "ext");
const E = "/api/v1/ext";
const T = {
  version: `${E}/version`,
  list: `${E}/runtimes`,
  view: `${E}/runtimes/{game_id}`,
  operations: `${E}/runtimes/{game_id}/operations`,
  plan: `${E}/runtimes/{game_id}/plan`,
  logs: `${E}/runtimes/{game_id}/logs`,
  events: `${E}/events`,
  metrics: "/metrics",
} as const;
type Op = keyof typeof T;

let app: TestApp;
/** The same store behind a token, for the 401s. */
let guarded: http.Server;
let guardedUrl: string;
/** A game running on the test engine, started once. */
let running: string;

async function call(base: string, op: Op, gameId = "", query = "", headers: Record<string, string> = {}): Promise<LiveResponse> {
  const path = T[op].replace("{game_id}", encodeURIComponent(gameId)) + query;
  const res = op === "events" ? await responseHead(base, { method: "GET", path, headers }) : await rawRequest(base, { method: "GET", path, headers });
  ext.assert(T[op], "GET", res);
  expect(res.headers["x-op-id"], `${op} ${res.status}`).toBeTruthy();
  return res;
}

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp();
  running = uniqueGameId("extc");
  await app.client.start(running, TEST_IMAGES.v100);
  guarded = createHttpServer({ operations: app.app.operations, state: app.store, logger: app.app.logger, token: "ext-token", readiness: async () => null });
  await new Promise<void>((resolve) => guarded.listen(0, "127.0.0.1", resolve));
  guardedUrl = `http://127.0.0.1:${(guarded.address() as AddressInfo).port}`;
}, 240_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (guarded ? guarded.close(() => resolve()) : resolve()));
  await app?.close();
}, 120_000);

describe("docs/ext-openapi.yaml against a real server", () => {
  it("version: 200", async () => {
    expect((await call(app.baseUrl, "version")).status).toBe(200);
  });

  it("runtime list: 200 with the running game in it, 400 for a bad filter", async () => {
    const res = await call(app.baseUrl, "list", "", "?status=running");
    expect(res.status).toBe(200);
    expect((res.json as { items: { gameId: string }[] }).items.map((i) => i.gameId)).toContain(running);
    expect((await call(app.baseUrl, "list", "", "?status=nope")).status).toBe(400);
  });

  it("runtime view: 200 for a running game, 404 for an unknown or impossible id", async () => {
    const res = await call(app.baseUrl, "view", running);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ gameId: running, record: { status: "running" }, declaration: { desiredState: "running" } });
    expect((await call(app.baseUrl, "view", uniqueGameId("none"))).status).toBe(404);
    expect((await call(app.baseUrl, "view", "Not_A_Game")).status).toBe(404);
  });

  it("operations: 200 (an unknown game gives an empty list), 400 for a bad limit, 404 for an impossible id", async () => {
    const res = await call(app.baseUrl, "operations", running, "?limit=5");
    expect(res.status).toBe(200);
    expect((res.json as { items: unknown[] }).items.length).toBeGreaterThan(0);
    expect((await call(app.baseUrl, "operations", uniqueGameId("none"))).json).toEqual({ items: [] });
    expect((await call(app.baseUrl, "operations", running, "?limit=0")).status).toBe(400);
    expect((await call(app.baseUrl, "operations", "Not_A_Game")).status).toBe(404);
  });

  it("plan: 200, 404 for an impossible id", async () => {
    expect((await call(app.baseUrl, "plan", running)).status).toBe(200);
    expect((await call(app.baseUrl, "plan", "Not_A_Game")).status).toBe(404);
  });

  it("logs: 200 text, 400 for a bad tail, 404 for a game without a container", async () => {
    const res = await waitFor("the engine's first log line", async () => {
      const r = await call(app.baseUrl, "logs", running, "?tail=20");
      return r.text.includes("starting") ? r : undefined;
    }, 15_000, 100);
    expect(res.status).toBe(200);
    expect((await call(app.baseUrl, "logs", running, "?tail=abc")).status).toBe(400);
    expect((await call(app.baseUrl, "logs", uniqueGameId("none"))).status).toBe(404);
  });

  it("events: 200 event stream, 400 for a bad game_id", async () => {
    const res = await call(app.baseUrl, "events", "", `?game_id=${running}`);
    expect(res.status).toBe(200);
    expect((await call(app.baseUrl, "events", "", "?game_id=Not_A_Game")).status).toBe(400);
  });

  it("quarantines: 200 list; lift: 200 for a quarantined image (then gone from the list), 404 for one not quarantined, 400 for a bad body, 401 without the token, 405 to GET", async () => {
    const Q = `${E}/quarantines`;
    const LIFT = `${Q}/lift`;
    const lift = async (base: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = typeof body === "string" ? await rawRequest(base, { method: "POST", path: LIFT, headers: { "content-type": "application/json", ...headers }, body }) : await jsonRequest(base, "POST", LIFT, body, headers);
      ext.assert(LIFT, "POST", res);
      return res;
    };
    const list = async (base = app.baseUrl) => {
      const res = await rawRequest(base, { method: "GET", path: Q });
      ext.assert(Q, "GET", res);
      return res;
    };
    expect((await list()).json).toEqual({ items: [] });
    const image = "registry.test/galaxy/engine:1.4.3";
    await app.store.sql.query(
      "INSERT INTO image_quarantines (image_ref, quarantined_at, rollbacks, game_id, games) VALUES ($1, now(), 3, 'g-1', '[\"g-1\",\"g-2\"]'::jsonb)",
      [image],
    );
    const listed = await list();
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ items: [{ imageRef: image, rollbacks: 3, gameId: "g-1", games: ["g-1", "g-2"] }] });
    const lifted = await lift(app.baseUrl, { image_ref: image });
    expect(lifted.status).toBe(200);
    expect(lifted.json).toMatchObject({ imageRef: image, rollbacks: 3 });
    expect((await list()).json).toEqual({ items: [] });
    expect((await lift(app.baseUrl, { image_ref: image })).status).toBe(404);
    expect((await lift(app.baseUrl, { image_ref: "not a ref" })).status).toBe(400);
    expect((await lift(app.baseUrl, { image: image })).status).toBe(400);
    expect((await lift(app.baseUrl, "{")).status).toBe(400);
    expect((await lift(guardedUrl, { image_ref: image })).status).toBe(401);
    expect((await list(guardedUrl)).status).toBe(401);
    const get = await rawRequest(app.baseUrl, { method: "GET", path: LIFT });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe("POST");
  });

  it("metrics: 200 Prometheus text", async () => {
    const res = await call(app.baseUrl, "metrics");
    expect(res.status).toBe(200);
    expect(res.text).toContain("rtmanager_build_info");
  });

  it("every path: 401 without the configured token, 405 with Allow: GET to another method", async () => {
    for (const op of Object.keys(T) as Op[]) {
      const res = await call(guardedUrl, op, running);
      expect(res.status, op).toBe(401);
      const path = T[op].replace("{game_id}", running);
      const post = await rawRequest(app.baseUrl, { method: "POST", path });
      expect(post.status, `POST ${path}`).toBe(405);
      expect(post.headers.allow).toBe("GET");
      ext.assertSchema("ErrorResponse", post.json);
    }
  });

  it("every documented (path, method, status) was produced by a test above", () => {
    const missing = ext.operations().flatMap(({ template, method, statuses }) =>
      statuses.map((s) => `${method} ${template} ${s}`).filter((key) => !ext.observed.has(key)),
    );
    expect(missing).toEqual([]);
  });
});
