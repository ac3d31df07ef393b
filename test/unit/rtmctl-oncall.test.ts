/**
 * rtmctl for the on-call (issue 22 part 7): `list -o wide`, the --status and
 * --unhealthy filters, --no-headers, `get` with every field, and the TRACE
 * column of `ops`. run() is driven in-process against a loopback stub that
 * answers as the server does, and records what it was asked.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/cli/rtmctl.js";
import { EXIT_OK, EXIT_USAGE } from "../../src/cli/exitCodes.js";
import type { ExtRuntimeSummary, ExtRuntimeView } from "../../src/client/index.js";

const NOW = new Date().toISOString();
const TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

function summary(gameId: string, over: Partial<ExtRuntimeSummary> = {}): ExtRuntimeSummary {
  return {
    gameId,
    status: "running",
    desiredState: "running",
    imageRef: "galaxy/engine:1.0.0",
    declaredImageRef: "galaxy/engine:1.0.0",
    generation: 2,
    observedGeneration: 2,
    heldGeneration: null,
    health: "healthy",
    consecutiveProbeFailures: 0,
    restartCount: 0,
    degraded: false,
    lostNode: null,
    lostNodeSince: null,
    rolloutStartedAt: null,
    containerId: "0123456789abcdef0123",
    startedAt: NOW,
    lastOpAt: NOW,
    lastErrorCode: null,
    lastErrorMessage: null,
    declarationError: null,
    attention: [],
    ...over,
  };
}

const FLEET = [
  summary("g-ok"),
  summary("g-loop", { health: "unhealthy", restartCount: 4, consecutiveProbeFailures: 3, attention: ["unhealthy", "crash_loop"] }),
  summary("g-held", { heldGeneration: 3, generation: 3, lastErrorCode: "container_start_failed", attention: ["held", "error"] }),
  summary("g-lost", { lostNode: "node-7", lostNodeSince: NOW, attention: ["node_lost"] }),
  summary("g-bad", { degraded: true, attention: ["degraded"] }),
];

const VIEW: ExtRuntimeView = {
  gameId: "g-held",
  record: {
    gameId: "g-held",
    status: "running",
    currentContainerId: "c1",
    currentImageRef: "galaxy/engine:1.0.0",
    engineEndpoint: "http://galaxy-game-g-held:8080",
    statePath: "/state/g-held",
    dockerNetwork: "galaxy-net",
    startedAt: NOW,
    stoppedAt: null,
    removedAt: null,
    lastOpAt: NOW,
    createdAt: NOW,
    observedGeneration: 2,
    restartCount: 1,
    lastExitCode: 137,
    lastErrorCode: "container_start_failed",
    lastErrorMessage: "rolled back to galaxy/engine:1.0.0",
    lastErrorGeneration: 3,
    health: "healthy",
    consecutiveProbeFailures: 0,
    lastProbeAt: NOW,
    previousImageRef: "galaxy/engine:0.9.9",
    rolloutStartedAt: null,
    degraded: false,
    heldGeneration: 3,
    lostNode: "node-7",
    lostNodeSince: NOW,
    updatedAt: NOW,
  },
  declaration: {
    gameId: "g-held",
    imageRef: "galaxy/engine:1.0.1",
    desiredState: "running",
    restartPolicy: "always",
    resources: { cpus: 0.5 },
    env: { MODE: "ranked" },
    generation: 3,
    opId: "op-patch-0001",
    opSource: "gm_rest",
    createdAt: NOW,
    updatedAt: NOW,
  },
  declarationError: null,
};

let server: http.Server;
let base: string;
const asked: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    asked.push(req.url ?? "");
    const url = new URL(req.url ?? "/", "http://x");
    const send = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/api/v1/ext/runtimes") {
      const statuses = (url.searchParams.get("status") ?? "").split(",").filter(Boolean);
      const unhealthy = url.searchParams.get("unhealthy") === "true";
      return send({ items: FLEET.filter((s) => (!statuses.length || statuses.includes(s.status!)) && (!unhealthy || s.attention.length > 0)) });
    }
    if (url.pathname === "/api/v1/internal/runtimes") return send({ items: [] });
    if (url.pathname === "/api/v1/ext/runtimes/g-held") return send(VIEW);
    if (url.pathname === "/api/v1/ext/runtimes/g-held/operations") {
      return send({ items: [{ id: 1, opId: "op-patch-0001", gameId: "g-held", kind: "patch", opSource: "gm_rest", imageRef: "galaxy/engine:1.0.1", generation: 3, outcome: "failure", errorCode: "container_start_failed", message: "rolled back", stopReason: null, startedAt: NOW, finishedAt: NOW, traceParent: TRACE }] });
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "not_found", message: "no" } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

async function rtmctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(argv, { env: { RTMCTL_SERVER: base }, io: { out: (t) => void (out += t), err: (t) => void (err += t), stderrIsTty: false } });
  return { code, out, err };
}

const rows = (out: string) => out.trimEnd().split("\n").map((l) => l.split(/\s{3,}/));

describe("rtmctl list for the on-call", () => {
  it("-o wide shows health, restarts, generation, held, degraded, lost node and the attention reasons", async () => {
    const { code, out } = await rtmctl("list", "-o", "wide");
    expect(code).toBe(EXIT_OK);
    const [head, ...body] = rows(out);
    expect(head).toEqual(["GAME", "STATUS", "DESIRED", "HEALTH", "RESTARTS", "GEN", "HELD", "DEGRADED", "LOST NODE", "IMAGE", "STARTED", "ERROR", "ATTENTION"]);
    const by = new Map(body.map((r) => [r[0], r]));
    expect(by.get("g-loop")!.slice(3, 5)).toEqual(["unhealthy", "4"]);
    expect(by.get("g-loop")!.at(-1)).toBe("unhealthy,crash_loop");
    expect(by.get("g-held")!.slice(5, 7)).toEqual(["2/3", "3"]);
    expect(by.get("g-held")).toContain("container_start_failed");
    expect(by.get("g-bad")![7]).toBe("yes");
    expect(by.get("g-lost")![8]).toMatch(/^node-7 \(\d+s\)$/);
    expect(by.get("g-ok")!.at(-1)).toBe("-");
  });

  it("--unhealthy and --status are sent to the server and only the matching games print", async () => {
    asked.length = 0;
    const { out } = await rtmctl("list", "--unhealthy", "--status", "running", "-o", "wide");
    expect(asked).toEqual(["/api/v1/ext/runtimes?status=running&unhealthy=true"]);
    expect(rows(out).slice(1).map((r) => r[0])).toEqual(["g-loop", "g-held", "g-lost", "g-bad"]);
  });

  it("--no-headers prints rows only, in the same columns", async () => {
    const withHeaders = await rtmctl("list", "--status", "running");
    const without = await rtmctl("list", "--status", "running", "--no-headers");
    expect(without.out).toBe(withHeaders.out.split("\n").slice(1).join("\n"));
    expect(without.out.split("\n")[0]).toMatch(/^g-ok\s/);
  });

  it("-o json with a filter prints the extension items, for jq", async () => {
    const { out } = await rtmctl("list", "--unhealthy", "-o", "json");
    const items = JSON.parse(out) as ExtRuntimeSummary[];
    expect(items.map((i) => [i.gameId, i.attention])).toContainEqual(["g-lost", ["node_lost"]]);
  });

  it("a plain list still asks the contract's endpoint (scripts parse its records)", async () => {
    asked.length = 0;
    const { code, err } = await rtmctl("list");
    expect(code).toBe(EXIT_OK);
    expect(asked).toEqual(["/api/v1/internal/runtimes"]);
    expect(err).toBe("no runtimes\n");
  });

  it("refuses a bad status and -o wide on another verb before sending anything", async () => {
    asked.length = 0;
    expect((await rtmctl("list", "--status", "pending")).code).toBe(EXIT_USAGE);
    const wide = await rtmctl("get", "g-held", "-o", "wide");
    expect(wide.code).toBe(EXIT_USAGE);
    expect(wide.err).toContain("-o wide is for list only");
    expect(asked).toEqual([]);
  });
});

describe("rtmctl get and ops", () => {
  it("get shows every field the old table hid: held generation, previous image, lost node, exit code, policy, env", async () => {
    const { code, out } = await rtmctl("get", "g-held");
    expect(code).toBe(EXIT_OK);
    const field = (k: string) => out.split("\n").find((l) => l.startsWith(`${k}:`))?.slice(k.length + 1).trim();
    expect(field("held generation")).toMatch(/^3 \(its patch rolled back/);
    expect(field("previous image")).toBe("galaxy/engine:0.9.9");
    expect(field("lost node")).toMatch(/^node-7 \(since /);
    expect(field("last exit code")).toBe("137");
    expect(field("last error generation")).toBe("3");
    expect(field("restart policy")).toBe("always");
    expect(field("env")).toBe('{"MODE":"ranked"}');
    expect(field("resources")).toBe('{"cpus":0.5}');
    expect(field("declared by op")).toBe("op-patch-0001 (gm_rest)");
    expect(field("network")).toBe("galaxy-net");
    expect(field("degraded")).toBe("no");
  });

  it("ops shows the traceparent of the call behind each row", async () => {
    const { out } = await rtmctl("ops", "g-held");
    const [head, row] = rows(out);
    expect(row![head!.indexOf("TRACE")]).toBe(TRACE);
  });
});

describe("rtmctl inside rtmanager's container (kubectl exec, no flags)", () => {
  it("derives the server from RTMANAGER_INTERNAL_HTTP_ADDR as the kubelet expanded it", async () => {
    const { serverFromListenAddress } = await import("../../src/cli/server.js");
    expect(serverFromListenAddress("10.244.1.7:8096")).toBe("http://10.244.1.7:8096");
    expect(serverFromListenAddress(":8096")).toBe("http://127.0.0.1:8096");
    expect(serverFromListenAddress("0.0.0.0:9000")).toBe("http://127.0.0.1:9000");
    expect(serverFromListenAddress("[::]:8096")).toBe("http://[::1]:8096");
    expect(serverFromListenAddress("[fd00::7]:8096")).toBe("http://[fd00::7]:8096");
    expect(serverFromListenAddress("unix:/run/rtmanager/http.sock")).toBeNull();
  });

  it("reaches the listen address with the token from RTMANAGER_INTERNAL_TOKEN_FILE, the Deployment's own env", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const os = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(os.tmpdir(), "rtmctl-exec-"));
    const tokenFile = path.join(dir, "token");
    // A rotation in progress: the new token first, the old one second.
    writeFileSync(tokenFile, "new-token-0123456789abcdef0123456789\nold-token-0123456789abcdef0123456789\n");
    const seen: (string | undefined)[] = [];
    const guarded = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ items: [] }));
    });
    await new Promise<void>((resolve) => guarded.listen(0, "127.0.0.1", resolve));
    const port = (guarded.address() as AddressInfo).port;
    try {
      let err = "";
      const env = { RTMANAGER_INTERNAL_HTTP_ADDR: `127.0.0.1:${port}`, RTMANAGER_INTERNAL_TOKEN_FILE: tokenFile };
      const code = await run(["list"], { env, io: { out: () => undefined, err: (t) => void (err += t), stderrIsTty: false } });
      expect(code).toBe(EXIT_OK);
      expect(err).toBe("no runtimes\n");
      expect(seen).toEqual(["Bearer new-token-0123456789abcdef0123456789"]);
    } finally {
      await new Promise<void>((resolve) => guarded.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a Unix-socket listen address with a usage error naming it", async () => {
    let err = "";
    const code = await run(["list"], { env: { RTMANAGER_INTERNAL_HTTP_ADDR: "unix:/run/rtm.sock" }, io: { out: () => undefined, err: (t) => void (err += t), stderrIsTty: false } });
    expect(code).toBe(EXIT_USAGE);
    expect(err).toContain("/run/rtm.sock");
  });
});
