/**
 * Safe by default and bounded (issue 13): browser guards, bodies that are
 * ignored, token-file rotation, the refusal to listen beyond loopback
 * without a token, the Unix socket, the image allow-list and resource
 * ceilings, and each bounded resource pushed past its bound. Real parts,
 * loopback only.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, testDocker, uniqueGameId } from "../helpers/docker.js";

const R = "/api/v1/internal/runtimes";

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): { error?: { code: string; message: string } } & Record<string, unknown>;
}

function request(
  target: { baseUrl: string } | { socketPath: string },
  method: string,
  pathname: string,
  opts: { headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const where = "socketPath" in target ? { socketPath: target.socketPath } : { host: "127.0.0.1", port: Number(new URL(target.baseUrl).port) };
    const length = opts.body === undefined ? {} : { "content-length": String(Buffer.byteLength(opts.body)) };
    const req = http.request({ ...where, method, path: pathname, headers: { ...length, ...opts.headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) as ReturnType<Reply["json"]> });
      });
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

const JSON_CT = { "content-type": "application/json" };
const start = (t: TestApp, gameId: string, image: string = TEST_IMAGES.v100) =>
  request(t, "POST", `${R}/${gameId}/start`, { headers: JSON_CT, body: JSON.stringify({ image_ref: image }) });

async function containersOf(t: TestApp, gameId: string): Promise<number> {
  const list = await testDocker().listContainers({ all: true, filters: { label: [`com.galaxy.rtmanager.instance=${t.instance}`, `com.galaxy.rtmanager.game-id=${gameId}`] } });
  return list.length;
}

let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp({ env: { RTMANAGER_ALLOWED_HOSTS: "rtmanager.galaxy.svc", RTMANAGER_ALLOWED_ORIGINS: "https://ops.example.com" } });
}, 120_000);

afterAll(async () => {
  await app?.close();
});

describe("browsers cannot drive the API", () => {
  it("an Origin not allowed, or Sec-Fetch-Site: cross-site, gets 403 in the contract's envelope; nothing is written", async () => {
    const g = uniqueGameId("orig");
    const evil = await request(app, "POST", `${R}/${g}/start`, { headers: { ...JSON_CT, origin: "https://evil.example" }, body: JSON.stringify({ image_ref: TEST_IMAGES.v100 }) });
    expect(evil.status).toBe(403);
    expect(evil.json().error?.code).toBe("invalid_request");
    expect(evil.json().error?.message).toContain("RTMANAGER_ALLOWED_ORIGINS");
    const crossSite = await request(app, "POST", `${R}/${g}/restart`, { headers: { "sec-fetch-site": "cross-site" } });
    expect(crossSite.status).toBe(403);
    expect(crossSite.json().error?.code).toBe("invalid_request");
    expect(await app.store.getRecord(g)).toBeNull();
    // An allowed origin reads as any client does.
    expect((await request(app, "GET", R, { headers: { origin: "https://ops.example.com" } })).status).toBe(200);
  });

  it("a Host that is not an allowed name gets 403 (DNS rebinding); IPs, localhost and configured names pass; probes are exempt", async () => {
    const rebound = await request(app, "GET", R, { headers: { host: "attacker.example:8096" } });
    expect(rebound.status).toBe(403);
    expect(rebound.json().error?.message).toContain("RTMANAGER_ALLOWED_HOSTS");
    for (const host of ["127.0.0.1:8096", "localhost:8096", "rtmanager.galaxy.svc:8096", `${os.hostname()}:8096`, "[::1]:8096"]) {
      expect((await request(app, "GET", R, { headers: { host } })).status, host).toBe(200);
    }
    expect((await request(app, "GET", "/healthz", { headers: { host: "attacker.example" } })).status).toBe(200);
    expect((await request(app, "GET", "/readyz", { headers: { host: "attacker.example" } })).status).toBe(200);
  });
});

describe("bodies where none is taken", () => {
  it("restart with a garbage body answers 200 and restarts, as without one", async () => {
    const g = uniqueGameId("body");
    expect((await start(app, g)).status).toBe(200);
    const before = (await app.store.getRecord(g))!.currentContainerId;
    const res = await request(app, "POST", `${R}/${g}/restart`, { headers: { "content-type": "text/plain" }, body: "now please {" });
    expect(res.status, res.body).toBe(200);
    expect(res.json().current_container_id).not.toBe(before);
    // Game Master's restart: no body, no headers.
    expect((await request(app, "POST", `${R}/${g}/restart`)).status).toBe(200);
    const cleanup = await request(app, "DELETE", `${R}/${g}/container`, { headers: JSON_CT, body: JSON.stringify({ force: true }) });
    expect(cleanup.status, cleanup.body).toBe(409); // still running: the contract's conflict, not a 400 about the body
  }, 90_000);
});

describe("what runs", () => {
  it("an image outside RTMANAGER_IMAGE_ALLOWLIST is refused at the edge with start_config_invalid and nothing is created", async () => {
    const t = await startTestApp({ network: app.network, env: { RTMANAGER_IMAGE_ALLOWLIST: "galaxy/test-eng" } });
    try {
      const g = uniqueGameId("allow");
      const res = await start(t, g);
      expect(res.status).toBe(500);
      expect(res.json().error?.code).toBe("start_config_invalid");
      expect(res.json().error?.message).toContain("RTMANAGER_IMAGE_ALLOWLIST");
      expect(await t.store.getRecord(g)).toBeNull();
      expect(await containersOf(t, g)).toBe(0);
    } finally {
      await t.close();
    }
  }, 60_000);

  it("a label-bomb image (com.galaxy.memory=512g) is start_config_invalid, no container, and not retried", async () => {
    const tag = "galaxy/test-engine-bomb:1.0.0";
    await promisify(execFile)("sh", ["-c", `printf 'FROM ${TEST_IMAGES.v100}\\nLABEL com.galaxy.memory=512g\\n' | docker build -q -t ${tag} -`], { timeout: 120_000 });
    const g = uniqueGameId("bomb");
    const res = await start(app, g, tag);
    expect(res.status).toBe(500);
    expect(res.json().error?.code).toBe("start_config_invalid");
    expect(res.json().error?.message).toContain("RTMANAGER_MAX_MEMORY");
    expect(await containersOf(app, g)).toBe(0);
    const record = await app.store.getRecord(g);
    expect(record?.lastErrorCode).toBe("start_config_invalid");
    // Permanent: the planner holds the generation instead of retrying it.
    expect((await app.manager.reconciler.preview(g)) as { hold?: { code: string } }).toMatchObject({ hold: { code: "start_config_invalid" } });
  }, 120_000);
});

describe("tokens", () => {
  it("a token file holds two valid tokens during a rotation and is re-read when it changes", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-token-"));
    const file = path.join(dir, "token");
    const OLD = `old-token-${"a".repeat(32)}`;
    const NEW = `new-token-${"b".repeat(32)}`;
    await fs.writeFile(file, `${OLD}\n`);
    const t = await startTestApp({ network: app.network, start: false, env: { RTMANAGER_INTERNAL_TOKEN_FILE: file } });
    const auth = (token: string) => request(t, "GET", R, { headers: { authorization: `Bearer ${token}` } });
    try {
      expect((await auth(OLD)).status).toBe(200);
      expect((await auth(NEW)).status).toBe(401);
      expect((await request(t, "GET", "/healthz")).status).toBe(200);
      await fs.writeFile(file, `${NEW}\n${OLD}\n`);
      await expect.poll(async () => (await auth(NEW)).status, { timeout: 6000, interval: 200 }).toBe(200);
      expect((await auth(OLD)).status).toBe(200);
      // Rotation finished: the old token stops working.
      await fs.writeFile(file, `${NEW}\n`);
      await expect.poll(async () => (await auth(OLD)).status, { timeout: 6000, interval: 200 }).toBe(401);
      expect((await auth(NEW)).status).toBe(200);
    } finally {
      await t.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("refuses to listen on 0.0.0.0 without a token, naming the variables; allowed explicitly or with a token", () => {
    expect(() => loadConfig({ RTMANAGER_INTERNAL_HTTP_ADDR: "0.0.0.0:8096" })).toThrow(/RTMANAGER_INTERNAL_TOKEN.*RTMANAGER_INTERNAL_TOKEN_FILE.*RTMANAGER_ALLOW_UNAUTHENTICATED=true/);
    expect(() => loadConfig({ RTMANAGER_INTERNAL_HTTP_ADDR: ":8096" })).toThrow(/RTMANAGER_ALLOW_UNAUTHENTICATED/);
    expect(loadConfig({}).httpHost).toBe("127.0.0.1");
    expect(loadConfig({ RTMANAGER_INTERNAL_HTTP_ADDR: "0.0.0.0:8096", RTMANAGER_ALLOW_UNAUTHENTICATED: "true" }).allowUnauthenticated).toBe(true);
    expect(loadConfig({ RTMANAGER_INTERNAL_HTTP_ADDR: "0.0.0.0:8096", RTMANAGER_INTERNAL_TOKEN: "x".repeat(32) }).httpHost).toBe("0.0.0.0");
    expect(loadConfig({ RTMANAGER_INTERNAL_HTTP_ADDR: "unix:/run/rtm.sock" }).httpSocketPath).toBe("/run/rtm.sock");
  });

  it("the process itself refuses to start on 0.0.0.0 without a token (exit 2, message on stderr)", async () => {
    const tsx = path.resolve("node_modules/.bin/tsx");
    const run = promisify(execFile)(tsx, ["src/main.ts"], { env: { ...process.env, RTMANAGER_INTERNAL_HTTP_ADDR: "0.0.0.0:8096", RTMANAGER_INTERNAL_TOKEN: "" }, timeout: 30_000 });
    const failed = (await run.then(() => null, (err: unknown) => err)) as { code?: number; stderr?: string } | null;
    expect(failed?.code).toBe(2);
    expect(failed?.stderr).toContain("RTMANAGER_ALLOW_UNAUTHENTICATED");
  }, 40_000);
});

describe("a Unix socket", () => {
  it("serves the API on unix:/path with mode 0660, whatever Host the client sends", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-sock-"));
    const socketPath = path.join(dir, "http.sock");
    const t = await startTestApp({ network: app.network, env: { RTMANAGER_INTERNAL_HTTP_ADDR: `unix:${socketPath}` } });
    try {
      expect((await fs.stat(socketPath)).mode & 0o777).toBe(0o660);
      const res = await request({ socketPath }, "GET", R, { headers: { host: "unix" } });
      expect(res.status).toBe(200);
      expect(res.json()).toHaveProperty("items");
    } finally {
      await t.close();
      await fs.rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
