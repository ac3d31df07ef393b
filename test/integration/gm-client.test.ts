/**
 * What Game Master's Go client (seeds/000-gamemaster-rtmclient.go.txt)
 * relies on: POST stop {reason} and POST patch {image_ref} under
 * url.PathEscape'd game ids, 2xx meaning success, and the error code decoded
 * from {error:{code}} otherwise. Exercised through RtmClient and through a
 * request shaped byte for byte like the Go client's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmApiError, RtmClient, RtmTransportError } from "../../src/client/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { rawRequest } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId } from "../helpers/docker.js";

let app: TestApp;
let gm: RtmClient;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp();
  gm = app.newClient({ caller: "gm", timeoutMs: 30_000 });
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

async function rejection(p: Promise<unknown>): Promise<RtmApiError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RtmApiError);
  return err as RtmApiError;
}

/** The Go client's request: Accept and Content-Type JSON, no caller header, body from json.Marshal. */
function goRequest(path: string, body: object) {
  const payload = JSON.stringify(body);
  return rawRequest(app.baseUrl, {
    method: "POST",
    path,
    headers: { accept: "application/json", "content-type": "application/json", "user-agent": "Go-http-client/1.1" },
    body: payload,
  });
}

/** decodeErrorCode from the Go client, transcribed. */
function decodeErrorCode(payload: string): string {
  if (payload.length === 0) return "";
  try {
    const envelope = JSON.parse(payload) as { error?: { code?: string } | null };
    return envelope.error?.code ?? "";
  } catch {
    return "";
  }
}

describe("Game Master's expectations", () => {
  it("patch within the line and stop succeed; cross-line patch is 409 semver_patch_only; unknown game is 404", async () => {
    const g = uniqueGameId("gm");
    await app.client.start(g, TEST_IMAGES.v100);

    const patched = await gm.patch(g, TEST_IMAGES.v101, { opId: "gm-patch-00000001" });
    expect(patched).toMatchObject({ game_id: g, status: "running", current_image_ref: TEST_IMAGES.v101 });
    const patchOp = (await app.store.listOperations(g)).find((o) => o.opId === "gm-patch-00000001");
    expect(patchOp).toMatchObject({ kind: "patch", opSource: "gm_rest" });

    const cross = await rejection(gm.patch(g, TEST_IMAGES.v110, { opId: "gm-patch-00000002" }));
    expect(cross).toMatchObject({ status: 409, code: "semver_patch_only", opId: "gm-patch-00000002" });
    expect(cross.message).toMatch(/1\.0/);
    // The refusal is in the operation log under the op id the client got back.
    expect((await app.store.listOperations(g)).find((o) => o.opId === cross.opId)).toMatchObject({ outcome: "failure", errorCode: "semver_patch_only" });
    expect((await gm.get(g)).current_image_ref).toBe(TEST_IMAGES.v101);

    const stopped = await gm.stop(g, "finished");
    expect(stopped).toMatchObject({ status: "stopped" });
    expect((await gm.stop(g, "finished")).status).toBe("stopped");

    const missing = uniqueGameId("gm-missing");
    expect(await rejection(gm.stop(missing, "cancelled"))).toMatchObject({ status: 404, code: "not_found" });
    expect(await rejection(gm.patch(missing, TEST_IMAGES.v101))).toMatchObject({ status: 404, code: "not_found" });
  }, 90_000);

  it("the Go client's exact requests: 2xx on success, the code it decodes on failure", async () => {
    const g = uniqueGameId("go");
    await app.client.start(g, TEST_IMAGES.v100);
    const path = (op: string, id = g) => `/api/v1/internal/runtimes/${encodeURIComponent(id)}/${op}`;

    const patch = await goRequest(path("patch"), { image_ref: TEST_IMAGES.v101 });
    expect(patch.status, patch.text).toBe(200);
    const cross = await goRequest(path("patch"), { image_ref: TEST_IMAGES.v200 });
    expect(cross.status).toBe(409);
    expect(decodeErrorCode(cross.text)).toBe("semver_patch_only");
    const stop = await goRequest(path("stop"), { reason: "admin_request" });
    expect(stop.status, stop.text).toBe(200);
    const unknown = await goRequest(path("stop", uniqueGameId("go-missing")), { reason: "admin_request" });
    expect(unknown.status).toBe(404);
    expect(decodeErrorCode(unknown.text)).toBe("not_found");

    // No X-Galaxy-Caller from the Go client: the contract's default.
    const ops = await app.store.listOperations(g);
    expect(ops.filter((o) => o.kind === "patch" || o.kind === "stop").every((o) => o.opSource === "admin_rest")).toBe(true);
  }, 90_000);

  it("RtmApiError code is 'unknown' when the body carries no envelope; transport failures are RtmTransportError", async () => {
    const client = new RtmClient({
      baseUrl: app.baseUrl,
      timeoutMs: 5000,
      fetch: async () => new Response("<html>bad gateway</html>", { status: 502, headers: { "x-op-id": "proxy-op-000001" } }),
    });
    const err = await rejection(client.list());
    expect(err).toMatchObject({ status: 502, code: "unknown", opId: "proxy-op-000001" });

    const dead = new RtmClient({ baseUrl: "http://127.0.0.1:1", timeoutMs: 2000 });
    await expect(dead.list()).rejects.toBeInstanceOf(RtmTransportError);
  });

  it("refuses a base URL that is not absolute, like the Go client", () => {
    expect(() => new RtmClient({ baseUrl: "", timeoutMs: 1000 })).toThrow(/empty/);
    expect(() => new RtmClient({ baseUrl: "rtmanager:8096", timeoutMs: 1000 })).toThrow(/absolute/);
    expect(() => new RtmClient({ baseUrl: "/api", timeoutMs: 1000 })).toThrow(/absolute/);
    expect(() => new RtmClient({ baseUrl: "http://rtmanager:8096/", timeoutMs: 0 })).toThrow(/timeout/);
    expect(() => new RtmClient({ baseUrl: "http://rtmanager:8096/", timeoutMs: 1000 })).not.toThrow();
  });
});
