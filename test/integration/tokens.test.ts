/**
 * Bearer tokens (issue 21): an emptied or deleted token file revokes every
 * token (fail closed), short tokens and the example's placeholder are
 * refused, a metrics token can scrape and nothing else, and rtmctl reads its
 * token from a file. The app listens on loopback only.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run as rtmctl } from "../../src/cli/rtmctl.js";
import { loadConfig } from "../../src/config.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { createTestNetwork, removeTestNetwork, uniqueInstance } from "../helpers/docker.js";

const R = "/api/v1/internal/runtimes";
const TOKEN = `api-token-${"a".repeat(40)}`;
const SCRAPE = `scrape-token-${"m".repeat(40)}`;
let dir: string;
let network: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-tokens-"));
  network = `rtm-test-${uniqueInstance("tok")}`;
  await createTestNetwork(network);
}, 60_000);

afterAll(async () => {
  await removeTestNetwork(network).catch(() => undefined);
  await fs.rm(dir, { recursive: true, force: true });
}, 60_000);

async function tokenApp(files: { api: string; metrics?: string }, env: Record<string, string> = {}): Promise<TestApp> {
  return startTestApp({
    network,
    start: false,
    env: { RTMANAGER_INTERNAL_TOKEN_FILE: files.api, ...(files.metrics ? { RTMANAGER_METRICS_TOKEN_FILE: files.metrics } : {}), ...env },
  });
}

const get = (t: TestApp, pathname: string, token?: string) => fetch(`${t.baseUrl}${pathname}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

describe("token file", () => {
  for (const [what, revoke] of [
    ["emptied", (file: string) => fs.writeFile(file, "")],
    ["deleted", (file: string) => fs.rm(file)],
  ] as const) {
    it(`${what} while running: the old token is refused at once (fail closed), with a loud log line`, async () => {
      const file = path.join(dir, `token-${what}`);
      await fs.writeFile(file, `${TOKEN}\n`);
      const t = await tokenApp({ api: file });
      try {
        expect((await get(t, R, TOKEN)).status).toBe(200);
        await revoke(file);
        await expect.poll(async () => (await get(t, R, TOKEN)).status, { timeout: 8000, interval: 200 }).toBe(401);
        expect(t.logs.some((l) => l.level === 50 && String(l.msg).includes("NO token is valid now"))).toBe(true);
        // Probes stay open, so the pod is not restarted over a revocation.
        expect((await get(t, "/healthz")).status).toBe(200);
        // A new token in the file works again.
        await fs.writeFile(file, `${TOKEN}-new\n`);
        await expect.poll(async () => (await get(t, R, `${TOKEN}-new`)).status, { timeout: 8000, interval: 200 }).toBe(200);
        expect((await get(t, R, TOKEN)).status).toBe(401);
      } finally {
        await t.close();
      }
    }, 60_000);
  }
});

describe("token strength", () => {
  it("refuses tokens under 32 characters unless RTMANAGER_ALLOW_SHORT_TOKENS=true, and the example's placeholder always", async () => {
    expect(() => loadConfig({ RTMANAGER_INTERNAL_TOKEN: "x" })).toThrow(/RTMANAGER_INTERNAL_TOKEN is 1 characters; at least 32/);
    expect(() => loadConfig({ RTMANAGER_INTERNAL_TOKEN: "a".repeat(31) })).toThrow(/RTMANAGER_ALLOW_SHORT_TOKENS/);
    expect(loadConfig({ RTMANAGER_INTERNAL_TOKEN: "a".repeat(32) }).internalToken).toBe("a".repeat(32));
    expect(loadConfig({ RTMANAGER_INTERNAL_TOKEN: "x", RTMANAGER_ALLOW_SHORT_TOKENS: "true" }).internalToken).toBe("x");
    // deploy/kustomize/base/secrets.example.yaml's value, long enough, refused even with short tokens allowed.
    const example = await fs.readFile(path.resolve("deploy/kustomize/base/secrets.example.yaml"), "utf8");
    const placeholder = /^\s+token: (\S+)$/m.exec(example)![1]!;
    expect(placeholder.length).toBeGreaterThanOrEqual(20);
    expect(() => loadConfig({ RTMANAGER_INTERNAL_TOKEN: placeholder, RTMANAGER_ALLOW_SHORT_TOKENS: "true" })).toThrow(/placeholder/);

    // A file with a short or placeholder token stops start-up.
    const short = path.join(dir, "short");
    await fs.writeFile(short, "tiny\n");
    await expect(tokenApp({ api: short })).rejects.toThrow(/at least 32/);
    const fromExample = path.join(dir, "example");
    await fs.writeFile(fromExample, `${placeholder}\n`);
    await expect(tokenApp({ api: fromExample })).rejects.toThrow(/placeholder/);
  }, 60_000);
});

describe("metrics token", () => {
  it("RTMANAGER_METRICS_TOKEN_FILE's token scrapes /metrics and opens nothing else; the API token still does everything", async () => {
    const api = path.join(dir, "api");
    const metrics = path.join(dir, "metrics");
    await fs.writeFile(api, `${TOKEN}\n`);
    await fs.writeFile(metrics, `${SCRAPE}\n`);
    const t = await tokenApp({ api, metrics });
    try {
      const scrape = await get(t, "/metrics", SCRAPE);
      expect(scrape.status).toBe(200);
      expect(await scrape.text()).toContain("rtmanager_http_requests_total");
      for (const p of [R, `${R}/g1`, "/api/v1/ext/events", "/api/v1/ext/version", "/api/v1/ext/runtimes/g1/logs"]) {
        const res = await get(t, p, SCRAPE);
        expect(res.status, p).toBe(401);
        expect(((await res.json()) as { error: { message: string } }).error.message, p).toContain("only scrape");
      }
      const start = await fetch(`${t.baseUrl}${R}/g1/start`, {
        method: "POST",
        headers: { authorization: `Bearer ${SCRAPE}`, "content-type": "application/json" },
        body: JSON.stringify({ image_ref: "galaxy/test-engine:1.0.0" }),
      });
      expect(start.status).toBe(401);
      expect(await t.store.get("g1")).toBeNull();
      expect((await get(t, "/metrics", TOKEN)).status).toBe(200);
      expect((await get(t, R, TOKEN)).status).toBe(200);
      expect((await get(t, "/metrics")).status).toBe(401);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe("rtmctl token file", () => {
  it("--token-file and RTMCTL_TOKEN_FILE send the file's first line; an empty file is a usage error", async () => {
    const api = path.join(dir, "api-cli");
    await fs.writeFile(api, `${TOKEN}\n`);
    const t = await tokenApp({ api });
    const cliFile = path.join(dir, "cli-token");
    await fs.writeFile(cliFile, `${TOKEN}\nprevious-token-ignored\n`);
    const invoke = async (args: string[], env: Record<string, string> = {}) => {
      let err = "";
      const code = await rtmctl(["--server", t.baseUrl, ...args], {
        env: { ...env },
        io: { out: () => undefined, err: (text) => void (err += text), stderrIsTty: false, stdoutIsTty: false },
      });
      return { code, err };
    };
    try {
      expect((await invoke(["list"])).code).not.toBe(0);
      expect(await invoke(["--token-file", cliFile, "list"])).toMatchObject({ code: 0 });
      expect(await invoke(["list"], { RTMCTL_TOKEN_FILE: cliFile })).toMatchObject({ code: 0 });
      const empty = path.join(dir, "cli-empty");
      await fs.writeFile(empty, "\n");
      const refused = await invoke(["--token-file", empty, "list"]);
      expect(refused.err).toContain("holds no token");
      expect(refused.code).toBe(2);
      expect((await invoke(["--token-file", cliFile, "--token", TOKEN, "list"])).err).toContain("give one");
    } finally {
      await t.close();
    }
  }, 60_000);
});
