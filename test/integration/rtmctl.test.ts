/**
 * rtmctl as an operator runs it: a subprocess (src/cli/rtmctl.ts, bundled once
 * by test/helpers/rtmctl.ts; one test runs the documented tsx entry) against
 * a real app (createApp: PGlite, the Docker adapter, the loop, HTTP), checking
 * what it prints and the exit codes scripts branch on.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { VERBS } from "../../src/cli/args.js";
import { EXIT_BY_CODE, EXIT_UNREACHABLE, EXIT_USAGE } from "../../src/cli/exitCodes.js";
import { ERROR_CODES } from "../../src/model/errors.js";
import { prepareRtmctl, repoRoot, rtmctl as runRtmctl, rtmctlEnv, RTMCTL_SOURCE, spawnRtmctl, TSX } from "../helpers/rtmctl.js";
import { ensureTestImages, TEST_IMAGES, uniqueGameId, uniqueInstance, waitFor } from "../helpers/docker.js";

const instance = uniqueInstance("rtmctl");
let testApp: TestApp;
let baseUrl: string;

const rtmctl = (args: string[], env: Record<string, string> = {}) => runRtmctl(baseUrl, args, env);

beforeAll(async () => {
  await Promise.all([ensureTestImages(), prepareRtmctl()]);
  testApp = await startTestApp({
    instance,
    env: { RTMANAGER_RESYNC_INTERVAL: "2s", RTMANAGER_RETRY_BACKOFF_BASE: "100ms", RTMANAGER_LOG_LEVEL: "silent" },
  });
  baseUrl = testApp.baseUrl;
});

afterAll(async () => {
  await testApp?.close();
});

describe("rtmctl", () => {
  it("has help for itself and every verb, with the exit code table", async () => {
    const main = await rtmctl(["--help"]);
    expect(main.code).toBe(0);
    for (const verb of VERBS) expect(main.stdout).toContain(verb);
    expect(main.stdout).toMatch(/Exit codes:/);
    expect(main.stdout).toMatch(/11 +not_found/);

    const helps = await Promise.all(VERBS.map((verb) => rtmctl([verb, "--help"])));
    helps.forEach((h, i) => {
      expect(h.code, VERBS[i]).toBe(0);
      expect(h.stdout).toContain(`rtmctl ${VERBS[i]}`);
      expect(h.stdout).toContain("--server");
    });
    expect(helps[VERBS.indexOf("stop")]!.stdout).toContain("--reason");
  });

  it("gives every contract error code its own exit code", () => {
    const codes = ERROR_CODES.filter((c) => c !== "replay_no_op").map((c) => EXIT_BY_CODE[c]);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toBeGreaterThanOrEqual(10);
  });

  it("refuses bad usage with exit code 2 before sending anything", async () => {
    const cases = [[], ["frobnicate"], ["start", "only-a-game"], ["list", "-o", "xml"], ["list", "--reason", "finished"], ["stop", "g-1", "--reason", "bored"]];
    for (const args of cases) {
      const r = await rtmctl(args);
      expect(r.code, args.join(" ")).toBe(EXIT_USAGE);
      expect(r.stderr).toMatch(/^rtmctl: /);
      expect(r.stdout).toBe("");
    }
  });

  it("drives a runtime through start, get, list, ops, diff, events, logs and stop", async () => {
    const game = uniqueGameId("cli");

    const started = await rtmctl(["start", game, TEST_IMAGES.v100]);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout).toMatch(/^GAME +STATUS +IMAGE/);
    expect(started.stdout).toContain(game);
    expect(started.stdout).toContain("running");
    const opId = /op ([0-9a-f-]{36})/.exec(started.stderr)?.[1];
    expect(opId).toBeDefined();
    // Not a terminal: no progress line in the captured stderr.
    expect(started.stderr).not.toContain("waiting for the loop");

    const get = await rtmctl(["get", game]);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/^status: +running$/m);
    expect(get.stdout).toContain(TEST_IMAGES.v100);

    const getJson = await rtmctl(["get", game, "-o", "json"]);
    const view = JSON.parse(getJson.stdout) as { record: { status: string }; declaration: { desiredState: string } };
    expect(view.record.status).toBe("running");
    expect(view.declaration.desiredState).toBe("running");

    const list = await rtmctl(["list", "-o", "json"]);
    expect(list.code).toBe(0);
    const records = JSON.parse(list.stdout) as { game_id: string; status: string }[];
    expect(records.find((r) => r.game_id === game)?.status).toBe("running");
    const table = await rtmctl(["list"]);
    expect(table.stdout.split("\n").find((l) => l.startsWith(game))).toMatch(/running/);

    // The op id printed by start is the one in the operation log.
    const ops = await rtmctl(["ops", game, "-o", "json"]);
    const items = JSON.parse(ops.stdout) as { opId: string; kind: string; outcome: string }[];
    expect(items.find((o) => o.opId === opId)).toMatchObject({ kind: "start", outcome: "success" });
    const opsTable = await rtmctl(["ops", game]);
    expect(opsTable.stdout).toMatch(/^STARTED +OP ID +KIND/);
    expect(opsTable.stdout).toContain(opId!);

    const diff = await rtmctl(["diff", game]);
    expect(diff.code).toBe(0);
    expect(diff.stdout).toContain("actions: none");

    const events = await rtmctl(["events", "--game", game]);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout).toContain("container_started");
    const ndjson = await rtmctl(["events", "--game", game, "-o", "json"]);
    const lines = ndjson.stdout.trim().split("\n").map((l) => JSON.parse(l) as { gameId: string; type: string });
    expect(lines.every((e) => e.gameId === game)).toBe(true);
    expect(lines.map((e) => e.type)).toContain("container_created");

    const logs = await rtmctl(["logs", game, "--tail", "5"]);
    expect(logs.code, logs.stderr).toBe(0);

    const stopped = await rtmctl(["stop", game, "--reason", "finished", "-o", "json"]);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect((JSON.parse(stopped.stdout) as { status: string }).status).toBe("stopped");

    // A stopped runtime cannot be patched: the contract's conflict, as its exit code.
    const patch = await rtmctl(["patch", game, TEST_IMAGES.v101]);
    expect(patch.code).toBe(EXIT_BY_CODE.conflict);
    expect(patch.stderr).toMatch(/conflict \(HTTP 409\)/);
    expect(patch.stderr).toMatch(/\[op [0-9a-f-]{36}\]/);
  });

  it("the documented entry (tsx src/cli/rtmctl.ts, what `npm run -s rtmctl` runs) prints what the tests' bundle prints", async () => {
    const viaTsx = await promisify(execFile)(process.execPath, [TSX, RTMCTL_SOURCE, "list", "-o", "json"], {
      cwd: repoRoot,
      env: rtmctlEnv(baseUrl, {}),
      timeout: 90_000,
    });
    const viaBundle = await rtmctl(["list", "-o", "json"]);
    expect(viaBundle.code, viaBundle.stderr).toBe(0);
    expect(JSON.parse(viaTsx.stdout)).toEqual(JSON.parse(viaBundle.stdout));
    expect(Array.isArray(JSON.parse(viaTsx.stdout))).toBe(true);
  });

  it("version prints the client's and the server's build; the client's even when the server is unreachable", async () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    const commit = "0123456789abcdef0123456789abcdef01234567";
    // The server reads its commit from git or RTMANAGER_COMMIT; this subprocess is told a different one.
    const server = await testApp.client.version();
    const r = await rtmctl(["version"], { RTMANAGER_COMMIT: commit });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `client: ${pkg.version} (commit ${commit}, node ${process.version})\n` + `server: ${server.version} (commit ${server.commit}, node ${server.node})\n`,
    );
    expect(server.version).toBe(pkg.version);

    const asJson = await rtmctl(["version", "-o", "json"], { RTMANAGER_COMMIT: commit });
    expect(JSON.parse(asJson.stdout)).toEqual({ client: { version: pkg.version, commit, node: process.version }, server });

    const away = await rtmctl(["version", "--server", "http://127.0.0.1:1", "--timeout", "5"], { RTMANAGER_COMMIT: commit });
    expect(away.code).toBe(EXIT_UNREACHABLE);
    expect(away.stdout).toBe(`client: ${pkg.version} (commit ${commit}, node ${process.version})\n`);
  });

  it("maps error codes to exit codes", async () => {
    const unknown = uniqueGameId("ghost");
    const get = await rtmctl(["get", unknown]);
    expect(get.code).toBe(EXIT_BY_CODE.not_found);
    expect(get.stderr).toContain("not_found");
    expect(get.stdout).toBe("");

    const stop = await rtmctl(["stop", unknown]);
    expect(stop.code).toBe(EXIT_BY_CODE.not_found);

    const badRef = await rtmctl(["start", uniqueGameId("bad"), "Not/A:Ref!"]);
    expect(badRef.code).toBe(EXIT_BY_CODE.invalid_request);

    const unreachable = await rtmctl(["list", "--server", "http://127.0.0.1:1", "--timeout", "5"]);
    expect(unreachable.code).toBe(EXIT_UNREACHABLE);
    expect(unreachable.stderr).toContain("cannot reach rtmanager");
  });

  it("a server that closes the connection without an answer (a refusing port-forward) is reported as such, not waited out to --timeout", async () => {
    const closer = net.createServer((c) => c.destroy());
    await new Promise<void>((resolve) => closer.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = closer.address() as AddressInfo;
      // Through Node 20's fetch this GET mostly never settled: rtmctl sat out --timeout and said "timed out".
      const r = await rtmctl(["list", "--server", `http://127.0.0.1:${port}`, "--timeout", "50s"]);
      expect(r.code).toBe(EXIT_UNREACHABLE);
      expect(r.stderr).toContain("cannot reach rtmanager");
      expect(r.stderr).not.toMatch(/timed out/);
    } finally {
      closer.close();
    }
  });

  it("events --follow prints live events as they happen and ends cleanly on Ctrl-C", async () => {
    const game = uniqueGameId("follow");
    const child = spawnRtmctl(baseUrl, ["events", "--follow", "--game", game]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor("the stream to open", () => stderr.includes("following events"), 60_000, 50);
      // Only what happens after the stream opened can show up now.
      await testApp.client.start(game, TEST_IMAGES.v100);
      await waitFor("container_started on stdout", () => stdout.split("\n").some((l) => l.includes(game) && l.includes("container_started")), 30_000, 50);
      // The patch and cleanup verbs succeed end to end as well.
      const patch = await rtmctl(["patch", game, TEST_IMAGES.v101]);
      expect(patch.code, patch.stderr).toBe(0);
      expect((await rtmctl(["stop", game, "--reason", "finished"])).code).toBe(0);
      const cleanup = await rtmctl(["cleanup", game]);
      expect(cleanup.code, cleanup.stderr).toBe(0);
      expect((await testApp.client.get(game)).status).toBe("removed");
      await waitFor("container_removed on stdout", () => stdout.includes("container_removed"), 30_000, 50);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
  }, 120_000);
});
