/**
 * The verbs operators script with, as an operator runs them: rtmctl in a
 * subprocess against a real app. -o yaml, list/get --watch (redrawn from the
 * event stream, Ctrl-C exits 0), wait and its exit codes, logs -f with
 * --tail and --limit-bytes, and shell completion generated from the verb
 * table.
 */
import { execFile, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { SPECS, VERBS } from "../../src/cli/args.js";
import { EXIT_BY_CODE, EXIT_USAGE, EXIT_WAIT_TIMEOUT } from "../../src/cli/exitCodes.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { prepareRtmctl, rtmctl as runRtmctl, spawnRtmctl } from "../helpers/rtmctl.js";
import { ensureTestImages, TEST_IMAGES, uniqueGameId, uniqueInstance, waitFor } from "../helpers/docker.js";
import { slack } from "../helpers/slack.js";

const runFile = promisify(execFile);

let testApp: TestApp;
let baseUrl: string;

const rtmctl = (args: string[]) => runRtmctl(baseUrl, args);

interface Running {
  child: ChildProcessWithoutNullStreams;
  out(): string;
  err(): string;
  /** Ctrl-C, then the exit code. */
  interrupt(): Promise<number | null>;
  exited: Promise<number | null>;
}

function rtmctlLive(args: string[]): Running {
  const child = spawnRtmctl(baseUrl, args);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    out: () => stdout,
    err: () => stderr,
    exited,
    interrupt: () => {
      child.kill("SIGINT");
      return exited;
    },
  };
}

beforeAll(async () => {
  await Promise.all([ensureTestImages(), prepareRtmctl()]);
  testApp = await startTestApp({
    instance: uniqueInstance("rtmctl-verbs"),
    env: { RTMANAGER_RESYNC_INTERVAL: "2s", RTMANAGER_LOG_LEVEL: "silent", RTMANAGER_LOGS_MAX_BYTES: "16k" },
  });
  baseUrl = testApp.baseUrl;
}, 240_000);

afterAll(async () => {
  await testApp?.close();
}, 120_000);

describe("rtmctl completion", () => {
  it("prints bash and zsh scripts naming every verb and flag, and bash completes from them", async () => {
    const bashScript = await rtmctl(["completion", "bash"]);
    const zshScript = await rtmctl(["completion", "zsh"]);
    expect(bashScript.code).toBe(0);
    expect(zshScript.code).toBe(0);
    for (const verb of VERBS) {
      expect(bashScript.stdout, verb).toMatch(new RegExp(`\\b${verb}\\b`));
      expect(zshScript.stdout, verb).toMatch(new RegExp(`'${verb}:`));
      for (const flag of Object.keys(SPECS[verb].flags)) {
        expect(bashScript.stdout, `${verb} --${flag}`).toContain(`--${flag}`);
        expect(zshScript.stdout, `${verb} --${flag}`).toContain(`--${flag}`);
      }
    }
    expect(zshScript.stdout.startsWith("#compdef rtmctl\n")).toBe(true);

    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "rtmctl-comp-")), "rtmctl.bash");
    await fs.writeFile(file, bashScript.stdout);
    const complete = async (...words: string[]): Promise<string[]> => {
      const script = `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _rtmctl; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const { stdout } = await runFile("bash", ["-c", script]);
      return stdout.split("\n").filter(Boolean);
    };
    expect(await complete("rtmctl", "")).toEqual(expect.arrayContaining([...VERBS]));
    expect(await complete("rtmctl", "wa")).toEqual(["wait"]);
    expect(await complete("rtmctl", "--server", "http://x", "lo")).toEqual(["logs"]);
    expect(await complete("rtmctl", "logs", "g", "--")).toEqual(expect.arrayContaining(["--follow", "--tail", "--limit-bytes", "--server"]));
    expect(await complete("rtmctl", "wait", "g", "--for", "")).toEqual(["running", "healthy", "removed"]);
    expect(await complete("rtmctl", "wait", "g", "--for", "=", "he")).toEqual(["healthy"]);
    expect(await complete("rtmctl", "get", "g", "-o", "y")).toEqual(["yaml"]);
    expect(await complete("rtmctl", "completion", "")).toEqual(["bash", "zsh"]);

    expect((await rtmctl(["completion", "fish"])).code).toBe(EXIT_USAGE);
  }, 180_000);
});

describe("rtmctl against a server", () => {
  it("-o yaml prints the same values as -o json", async () => {
    const game = uniqueGameId("yaml");
    const started = await rtmctl(["start", game, TEST_IMAGES.v100, "-o", "yaml"]);
    expect(started.code, started.stderr).toBe(0);
    expect(parseYaml(started.stdout)).toMatchObject({ game_id: game, status: "running" });
    for (const args of [["list"], ["get", game], ["ops", game], ["diff", game]]) {
      const [asJson, asYaml] = await Promise.all([rtmctl([...args, "-o", "json"]), rtmctl([...args, "-o", "yaml"])]);
      expect(asYaml.code, `${args.join(" ")}: ${asYaml.stderr}`).toBe(0);
      const fromYaml: unknown = parseYaml(asYaml.stdout);
      if (args[0] === "list") {
        // Other games may change between the two calls: compare this game's row.
        const row = (v: unknown) => (v as { game_id: string }[]).find((r) => r.game_id === game);
        expect(row(fromYaml)).toEqual(row(JSON.parse(asJson.stdout)));
      } else if (args[0] === "get") {
        expect((fromYaml as { record: unknown }).record).toEqual((JSON.parse(asJson.stdout) as { record: unknown }).record);
      } else {
        expect(fromYaml).toEqual(JSON.parse(asJson.stdout));
      }
    }
    const events = await rtmctl(["events", "--game", game, "-o", "yaml"]);
    const docs = parseAllDocuments(events.stdout).map((d) => d.toJS() as { type: string; gameId: string });
    expect(docs.map((d) => d.type)).toContain("container_started");
    expect(docs.every((d) => d.gameId === game)).toBe(true);
    const logs = await rtmctl(["logs", game, "-o", "yaml"]);
    expect(parseYaml(logs.stdout)).toMatchObject({ gameId: game, logs: expect.stringContaining("engine 1.0.0 starting") });
  }, 240_000);

  it("wait: 0 once the condition holds, 6 on timeout, the error's code otherwise; woken by events", async () => {
    const game = uniqueGameId("wait");
    await testApp.client.start(game, TEST_IMAGES.v100);
    const running = await rtmctl(["wait", game, "--for=running", "--timeout=30s"]);
    expect(running.code, running.stderr).toBe(0);
    const healthy = await rtmctl(["wait", game, "--for", "healthy", "--timeout", "30s"]);
    expect(healthy.code, healthy.stderr).toBe(0);
    expect((await testApp.client.extRecord(game)).record?.health).toBe("healthy");

    const timedOut = await rtmctl(["wait", game, "--for=removed", "--timeout=2s"]);
    expect(timedOut.code).toBe(EXIT_WAIT_TIMEOUT);
    expect(timedOut.stderr).toContain(`${game} is not removed after 2s`);
    expect(timedOut.ms).toBeGreaterThanOrEqual(2000);

    expect((await rtmctl(["wait", uniqueGameId("ghost"), "--for=running", "--timeout=5s"])).code).toBe(EXIT_BY_CODE.not_found);
    expect((await rtmctl(["wait", uniqueGameId("ghost"), "--for=removed", "--timeout=5s"])).code).toBe(0);
    for (const bad of [["wait", game], ["wait", game, "--for=sleeping"], ["wait", game, "--for=running", "--timeout=soon"]]) {
      expect((await rtmctl(bad)).code, bad.join(" ")).toBe(EXIT_USAGE);
    }

    // Waiting first, then the change: the waiter answers once the loop is done.
    await testApp.client.stop(game, "finished");
    const waiter = rtmctlLive(["wait", game, "--for=removed", "--timeout=60s"]);
    await waitFor("the waiter's first look", () => waiter.err().includes(`waiting up to 60s for ${game} to be removed`), 60_000, 50);
    await testApp.client.cleanup(game);
    const cleanedAt = Date.now();
    expect(await waiter.exited).toBe(0);
    expect(Date.now() - cleanedAt).toBeLessThan(slack(10_000));
    expect(waiter.err()).toContain(`${game}: removed`);
  }, 240_000);

  it("list and get --watch redraw on events and end with 0 on Ctrl-C", async () => {
    const game = uniqueGameId("watch");
    const list = rtmctlLive(["list", "--watch", "-o", "json"]);
    const get = rtmctlLive(["get", game, "-w"]);
    try {
      await waitFor("the first list", () => list.out().length > 0, 60_000, 50);
      // get on a game unknown when it started: not_found is the exit code, as without --watch.
      // Awaited before the start, or get may first look after the game exists.
      await waitFor("get to exit", () => get.child.exitCode !== null || undefined, 60_000, 50);
      expect(await get.exited).toBe(EXIT_BY_CODE.not_found);
      await testApp.client.start(game, TEST_IMAGES.v100);
      await waitFor(
        "a list redraw with the new game running",
        () => list.out().includes(`"game_id": "${game}"`) && /"status": "running"/.test(list.out().slice(list.out().lastIndexOf(`"game_id": "${game}"`))),
        30_000,
        50,
      );

      const get2 = rtmctlLive(["get", game, "--watch"]);
      await waitFor("get's first drawing", () => /^status: +running$/m.test(get2.out()), 60_000, 50);
      await testApp.client.stop(game, "finished");
      await waitFor("get redrawn as stopped", () => /^status: +stopped$/m.test(get2.out()), 30_000, 50);
      expect(await get2.interrupt()).toBe(0);
    } finally {
      if (list.child.exitCode === null) expect(await list.interrupt()).toBe(0);
      get.child.kill("SIGKILL");
    }
  }, 240_000);

  it("logs streams with --tail and --limit-bytes, and -f follows until Ctrl-C", async () => {
    const game = uniqueGameId("clilogs");
    await testApp.client.start(game, TEST_IMAGES.v100);
    const id = (await testApp.client.get(game)).current_container_id!;
    await runFile("docker", ["exec", id, "sh", "-c", "(i=0; while [ $i -lt 1000 ]; do printf 'line %04d %060d\\n' $i 0; i=$((i+1)); done) > /proc/1/fd/1"]);
    await waitFor("the last line", async () => (await testApp.client.logs(game, 1)).startsWith("line 0999") || undefined, 15_000, 100);

    const tail = await rtmctl(["logs", game, "--tail", "3"]);
    expect(tail.code, tail.stderr).toBe(0);
    expect(tail.stdout.split("\n").filter(Boolean).map((l) => l.slice(0, 9))).toEqual(["line 0997", "line 0998", "line 0999"]);
    const limited = await rtmctl(["logs", game, "--tail", "1000", "--limit-bytes", "100"]);
    expect(Buffer.byteLength(limited.stdout)).toBe(100);
    // The server's ceiling (16 KiB here) applies without --limit-bytes.
    const all = await rtmctl(["logs", game, "--tail", "10000"]);
    expect(Buffer.byteLength(all.stdout)).toBe(16 * 1024);
    expect((await rtmctl(["logs", game, "--limit-bytes", "0"])).code).toBe(EXIT_USAGE);
    expect((await rtmctl(["logs", game, "-f", "-o", "json"])).code).toBe(EXIT_USAGE);

    const follow = rtmctlLive(["logs", game, "-f", "--tail", "1"]);
    try {
      await waitFor("the stored last line", () => follow.out().includes("line 0999"), 60_000, 50);
      await runFile("docker", ["exec", id, "sh", "-c", "echo 'printed after rtmctl logs -f started' > /proc/1/fd/1"]);
      await waitFor("the new line", () => follow.out().includes("printed after rtmctl logs -f started"), 15_000, 50);
    } finally {
      expect(await follow.interrupt()).toBe(0);
    }
    expect(follow.out()).not.toContain("line 0998");
  }, 240_000);
});
