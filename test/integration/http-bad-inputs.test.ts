/**
 * Bad input never changes anything: each row is answered with its code, and
 * the declarations, records and containers are exactly as before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../../src/http/index.js";
import { toContractRecord } from "../../src/model/record.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { assertContract, assertSchema, rawRequest, type LiveResponse } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId } from "../helpers/docker.js";

const R = "/api/v1/internal/runtimes";
const JSON_CT = { "content-type": "application/json" };

let app: TestApp;
/** Running on 1.0.0. */
let running: string;
/** Stopped on 1.0.0. */
let stopped: string;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp();
  running = uniqueGameId("run");
  stopped = uniqueGameId("stop");
  await app.client.start(running, TEST_IMAGES.v100);
  await app.client.start(stopped, TEST_IMAGES.v100);
  await app.client.stop(stopped, "finished");
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

/** What must not move: the declarations (generation included), the records, the containers. */
async function snapshot(): Promise<unknown> {
  const { rows } = await app.store.sql.query<Record<string, unknown>>(
    "SELECT game_id, generation, image_ref, desired_state, stop_reason, restart_token FROM declarations ORDER BY game_id",
  );
  const records = (await app.store.listRecords()).map((r) => ({ ...toContractRecord(r), observedGeneration: r.observedGeneration }));
  const containers = (await app.docker.listManaged()).map((c) => ({ id: c.id, gameId: c.gameId, state: c.phase, image: c.imageRef })).sort((a, b) => a.id.localeCompare(b.id));
  return { declarations: rows, records, containers };
}

interface Case {
  name: string;
  method: string;
  /** A function so it can name the games made in beforeAll. */
  path: () => string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  status: number;
  code: string;
  message?: RegExp;
  /** Contract template to validate against; omitted for answers outside it. */
  template?: string;
}

const startOf = (id: string) => `${R}/${id}/start`;
const json = (v: unknown) => JSON.stringify(v);
const ok100 = json({ image_ref: TEST_IMAGES.v100 });

const T_START = `${R}/{game_id}/start`;
const T_STOP = `${R}/{game_id}/stop`;
const T_PATCH = `${R}/{game_id}/patch`;
const T_RESTART = `${R}/{game_id}/restart`;
const T_CLEANUP = `${R}/{game_id}/container`;
const T_GET = `${R}/{game_id}`;

const BAD_GAME_IDS: [string, string][] = [
  ["dot-dot slash", "..%2Fx"],
  ["encoded slash", "a%2Fb"],
  ["300 characters", "a".repeat(300)],
  ["control character", "%01"],
  ["uppercase", "ABC"],
  ["broken escape", "%zz"],
  ["leading dash", "-abc"],
  ["dot", "a.b"],
  ["space", "a%20b"],
  ["NUL", "a%00b"],
];

const cases: Case[] = [
  // Bodies
  { name: "malformed JSON", method: "POST", path: () => startOf(running), headers: JSON_CT, body: '{"image_ref":', status: 400, code: "invalid_request", message: /not valid JSON/, template: T_START },
  { name: "unknown field", method: "POST", path: () => startOf(running), headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v100, force: true }), status: 400, code: "invalid_request", message: /force/, template: T_START },
  { name: "wrong type", method: "POST", path: () => startOf(running), headers: JSON_CT, body: json({ image_ref: 100 }), status: 400, code: "invalid_request", message: /image_ref: must be a string/, template: T_START },
  { name: "missing field", method: "POST", path: () => startOf(running), headers: JSON_CT, body: "{}", status: 400, code: "invalid_request", message: /image_ref: is required/, template: T_START },
  { name: "missing body", method: "POST", path: () => startOf(running), headers: JSON_CT, status: 400, code: "invalid_request", message: /body is required/, template: T_START },
  { name: "array body", method: "POST", path: () => startOf(running), headers: JSON_CT, body: "[]", status: 400, code: "invalid_request", message: /JSON object/, template: T_START },
  { name: "null body", method: "POST", path: () => startOf(running), headers: JSON_CT, body: "null", status: 400, code: "invalid_request", message: /JSON object/, template: T_START },
  { name: "string body", method: "POST", path: () => startOf(running), headers: JSON_CT, body: '"galaxy/test-engine:1.0.0"', status: 400, code: "invalid_request", template: T_START },
  { name: "wrong content type", method: "POST", path: () => startOf(running), headers: { "content-type": "text/plain" }, body: ok100, status: 400, code: "invalid_request", message: /Content-Type/, template: T_START },
  { name: "form content type", method: "POST", path: () => startOf(running), headers: { "content-type": "application/x-www-form-urlencoded" }, body: "image_ref=x", status: 400, code: "invalid_request", message: /Content-Type/, template: T_START },
  { name: "no content type", method: "POST", path: () => startOf(running), body: ok100, status: 400, code: "invalid_request", message: /Content-Type/, template: T_START },
  { name: "json-ish content type", method: "POST", path: () => startOf(running), headers: { "content-type": "application/jsonp" }, body: ok100, status: 400, code: "invalid_request", template: T_START },
  {
    name: "oversized body",
    method: "POST",
    path: () => startOf(uniqueGameId()),
    headers: JSON_CT,
    body: json({ image_ref: TEST_IMAGES.v100, pad: "x".repeat(MAX_BODY_BYTES) }),
    status: 400,
    code: "invalid_request",
    message: /exceeds 65536 bytes/,
    template: T_START,
  },
  { name: "invalid UTF-8", method: "POST", path: () => startOf(running), headers: JSON_CT, body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), status: 400, code: "invalid_request", template: T_START },
  { name: "duplicate unknown key __proto__", method: "POST", path: () => startOf(running), headers: JSON_CT, body: '{"image_ref":"galaxy/test-engine:1.0.0","__proto__":{"x":1}}', status: 400, code: "invalid_request", template: T_START },

  // Image refs
  ...(
    [
      ["empty", ""],
      ["uppercase repository", "Galaxy/Engine:1.0.0"],
      ["whitespace", "galaxy/test-engine:1.0.0 "],
      ["shell metacharacters", "galaxy/test-engine:1.0.0;rm -rf /"],
      ["300 characters", `galaxy/${"e".repeat(300)}:1.0.0`],
      ["newline", "galaxy/test-engine\n:1.0.0"],
      ["bad digest", "galaxy/test-engine@sha256:xyz"],
    ] as const
  ).map(([what, ref]): Case => ({
    name: `image_ref ${what}`,
    method: "POST",
    path: () => startOf(uniqueGameId()),
    headers: JSON_CT,
    body: json({ image_ref: ref }),
    status: 400,
    code: "invalid_request",
    message: /image_ref/,
    template: T_START,
  })),

  // Stop reasons
  { name: "unknown stop reason", method: "POST", path: () => `${R}/${running}/stop`, headers: JSON_CT, body: json({ reason: "bored" }), status: 400, code: "invalid_request", message: /reason: must be one of/, template: T_STOP },
  { name: "stop reason wrong case", method: "POST", path: () => `${R}/${running}/stop`, headers: JSON_CT, body: json({ reason: "FINISHED" }), status: 400, code: "invalid_request", template: T_STOP },
  { name: "stop reason number", method: "POST", path: () => `${R}/${running}/stop`, headers: JSON_CT, body: json({ reason: 1 }), status: 400, code: "invalid_request", template: T_STOP },
  { name: "stop without reason", method: "POST", path: () => `${R}/${running}/stop`, headers: JSON_CT, body: "{}", status: 400, code: "invalid_request", message: /reason: is required/, template: T_STOP },
  { name: "stop with extra field", method: "POST", path: () => `${R}/${running}/stop`, headers: JSON_CT, body: json({ reason: "finished", now: true }), status: 400, code: "invalid_request", template: T_STOP },
  { name: "stop without body", method: "POST", path: () => `${R}/${running}/stop`, status: 400, code: "invalid_request", template: T_STOP },

  // Patches
  { name: "non-semver patch", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: "galaxy/test-engine:latest" }), status: 400, code: "image_ref_not_semver", template: T_PATCH },
  { name: "untagged patch", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: "galaxy/test-engine" }), status: 400, code: "image_ref_not_semver", template: T_PATCH },
  { name: "cross-minor patch", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v110 }), status: 409, code: "semver_patch_only", template: T_PATCH },
  { name: "cross-major patch", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v200 }), status: 409, code: "semver_patch_only", template: T_PATCH },
  { name: "other-repository patch", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: "galaxy/other-engine:1.0.1" }), status: 409, code: "semver_patch_only", template: T_PATCH },
  { name: "patch of a stopped runtime", method: "POST", path: () => `${R}/${stopped}/patch`, headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v101 }), status: 409, code: "conflict", template: T_PATCH },
  { name: "patch with wrong type", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: ["galaxy/test-engine:1.0.1"] }), status: 400, code: "invalid_request", template: T_PATCH },
  { name: "patch with extra field", method: "POST", path: () => `${R}/${running}/patch`, headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v101, image: TEST_IMAGES.v101 }), status: 400, code: "invalid_request", template: T_PATCH },

  // Wrong state
  { name: "start another image on a running runtime", method: "POST", path: () => startOf(running), headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v101 }), status: 409, code: "conflict", template: T_START },
  { name: "cleanup of a running runtime", method: "DELETE", path: () => `${R}/${running}/container`, status: 409, code: "conflict", template: T_CLEANUP },

  // Bodies where none is expected are ignored, never refused (test/integration/http-safety.test.ts).

  // Game ids: 400 where the operation documents it, 404 where it does not.
  ...BAD_GAME_IDS.flatMap(([what, id]): Case[] => [
    { name: `start, game id ${what}`, method: "POST", path: () => startOf(id), headers: JSON_CT, body: ok100, status: 400, code: "invalid_request", message: /game_id/, template: T_START },
    { name: `stop, game id ${what}`, method: "POST", path: () => `${R}/${id}/stop`, headers: JSON_CT, body: json({ reason: "finished" }), status: 400, code: "invalid_request", template: T_STOP },
    { name: `patch, game id ${what}`, method: "POST", path: () => `${R}/${id}/patch`, headers: JSON_CT, body: json({ image_ref: TEST_IMAGES.v101 }), status: 400, code: "invalid_request", template: T_PATCH },
    { name: `restart, game id ${what}`, method: "POST", path: () => `${R}/${id}/restart`, status: 404, code: "not_found", template: T_RESTART },
    { name: `cleanup, game id ${what}`, method: "DELETE", path: () => `${R}/${id}/container`, status: 404, code: "not_found", template: T_CLEANUP },
    { name: `get, game id ${what}`, method: "GET", path: () => `${R}/${id}`, status: 404, code: "not_found", template: T_GET },
  ]),
  { name: "empty game id segment", method: "POST", path: () => `${R}//start`, headers: JSON_CT, body: ok100, status: 404, code: "not_found" },
  { name: "dot-dot segment", method: "POST", path: () => `${R}/../start`, headers: JSON_CT, body: ok100, status: 400, code: "invalid_request", template: T_START },
];

describe("bad inputs change nothing", () => {
  it.each(cases)("$name -> $status $code", async (c) => {
    const before = await snapshot();
    const res: LiveResponse = await rawRequest(app.baseUrl, { method: c.method, path: c.path(), headers: c.headers, body: c.body });
    expect({ status: res.status, body: res.json }, res.text).toMatchObject({ status: c.status, body: { error: { code: c.code } } });
    assertSchema("ErrorResponse", res.json);
    if (c.template) assertContract(c.template, c.method, res);
    if (c.message) expect((res.json as { error: { message: string } }).error.message).toMatch(c.message);
    expect(res.headers["x-op-id"]).toBeTruthy();
    expect(await snapshot()).toEqual(before);
  });

  it("the same request done right is accepted (a replay here, so still no change)", async () => {
    const before = await snapshot();
    const res = await rawRequest(app.baseUrl, {
      method: "POST",
      path: startOf(running),
      headers: { "content-type": "Application/JSON; charset=utf-8" },
      body: ok100,
    });
    expect(res.status, res.text).toBe(200);
    assertContract(T_START, "POST", res);
    expect(await snapshot()).toEqual(before);
  });
});
