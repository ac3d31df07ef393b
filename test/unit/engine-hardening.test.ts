/**
 * The engine hardening settings (RTMANAGER_ENGINE_*), their Docker mapping
 * and the state directory rule. The real containers are in
 * test/integration/engine-hardening.test.ts.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { dockerSize, engineUser, hardenedHostConfig, hardeningDigest } from "../../src/runtime/docker/hardening.js";
import { prepareStateDir, STATE_DIR_MODE } from "../../src/runtime/docker/stateDir.js";
import { defaultEngineHardening, type EngineHardening } from "../../src/runtime/engineHardening.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const hardeningOf = (env: Record<string, string>): EngineHardening => loadConfig(env).engineHardening;

describe("engine hardening settings", () => {
  it("on by default: no capability kept, logs capped at 10m x 3, the image's user, the controller's group", () => {
    expect(hardeningOf({})).toEqual({
      capAdd: [],
      logMaxSizeBytes: 10 * 1024 * 1024,
      logMaxFiles: 3,
      readOnlyRootFilesystem: false,
      user: null,
      fsGroup: process.getgid!(),
    });
    expect(defaultEngineHardening()).toEqual(hardeningOf({}));
  });

  it("reads every setting, capabilities in either spelling, deduplicated", () => {
    const h = hardeningOf({
      RTMANAGER_ENGINE_CAP_ADD: "cap_net_bind_service, SYS_PTRACE,NET_BIND_SERVICE",
      RTMANAGER_ENGINE_LOG_MAX_SIZE: "512k",
      RTMANAGER_ENGINE_LOG_MAX_FILES: "5",
      RTMANAGER_ENGINE_READ_ONLY_ROOTFS: "true",
      RTMANAGER_ENGINE_USER: "10001:10002",
      RTMANAGER_ENGINE_FS_GROUP: "4242",
    });
    expect(h).toEqual({
      capAdd: ["NET_BIND_SERVICE", "SYS_PTRACE"],
      logMaxSizeBytes: 512 * 1024,
      logMaxFiles: 5,
      readOnlyRootFilesystem: true,
      user: { uid: 10001, gid: 10002 },
      fsGroup: 4242,
    });
    expect(hardeningOf({ RTMANAGER_ENGINE_USER: "0" }).user).toEqual({ uid: 0, gid: null });
  });

  it.each([
    ["RTMANAGER_ENGINE_CAP_ADD", "ALL"],
    ["RTMANAGER_ENGINE_CAP_ADD", "NET_BIND_SERVICE,FLY"],
    ["RTMANAGER_ENGINE_LOG_MAX_SIZE", "lots"],
    ["RTMANAGER_ENGINE_LOG_MAX_SIZE", "0"],
    ["RTMANAGER_ENGINE_LOG_MAX_FILES", "0"],
    ["RTMANAGER_ENGINE_LOG_MAX_FILES", "three"],
    ["RTMANAGER_ENGINE_READ_ONLY_ROOTFS", "sometimes"],
    ["RTMANAGER_ENGINE_USER", "nobody"],
    ["RTMANAGER_ENGINE_USER", "10001:staff"],
    ["RTMANAGER_ENGINE_USER", "1:2:3"],
    ["RTMANAGER_ENGINE_USER", "-1"],
    ["RTMANAGER_ENGINE_USER", "4294967295"],
    ["RTMANAGER_ENGINE_FS_GROUP", "docker"],
  ])("a bad %s (%s) stops start-up naming it", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});

describe("engine hardening as Docker create options", () => {
  it("drops every capability, adds only the listed ones, forbids new privileges, caps json-file logs, joins the fsGroup", () => {
    const h = hardeningOf({ RTMANAGER_ENGINE_CAP_ADD: "NET_BIND_SERVICE", RTMANAGER_ENGINE_FS_GROUP: "4242" });
    expect(hardenedHostConfig(h)).toEqual({
      CapDrop: ["ALL"],
      CapAdd: ["NET_BIND_SERVICE"],
      SecurityOpt: ["no-new-privileges"],
      LogConfig: { Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } },
      ReadonlyRootfs: false,
      Tmpfs: undefined,
      GroupAdd: ["4242"],
    });
    expect(engineUser(h)).toBeUndefined();
  });

  it("a read-only root filesystem comes with a writable /tmp; a user with or without a group", () => {
    const h = hardeningOf({ RTMANAGER_ENGINE_READ_ONLY_ROOTFS: "true", RTMANAGER_ENGINE_USER: "10001:10001" });
    expect(hardenedHostConfig(h)).toMatchObject({ ReadonlyRootfs: true, Tmpfs: { "/tmp": expect.stringContaining("rw") } });
    expect(hardenedHostConfig(h).CapAdd).toBeUndefined();
    expect(engineUser(h)).toBe("10001:10001");
    expect(engineUser(hardeningOf({ RTMANAGER_ENGINE_USER: "10001" }))).toBe("10001");
  });

  it("sizes in Docker's units", () => {
    expect([dockerSize(10 * 1024 ** 2), dockerSize(2 * 1024 ** 3), dockerSize(3 * 1024), dockerSize(1536), dockerSize(1000)]).toEqual(["10m", "2g", "3k", "1536", "1000"]);
  });

  it("the hardening label changes with any setting and not with the order of capabilities", () => {
    const base = hardeningOf({});
    const digests = [
      base,
      { ...base, capAdd: ["KILL"] },
      { ...base, logMaxSizeBytes: base.logMaxSizeBytes * 2 },
      { ...base, logMaxFiles: 4 },
      { ...base, readOnlyRootFilesystem: true },
      { ...base, user: { uid: 10001, gid: null } },
      { ...base, user: { uid: 10001, gid: 10001 } },
      { ...base, fsGroup: base.fsGroup + 1 },
    ].map(hardeningDigest);
    expect(new Set(digests).size).toBe(digests.length);
    expect(hardeningDigest({ ...base, capAdd: ["KILL", "CHOWN"] })).toBe(hardeningDigest({ ...base, capAdd: ["CHOWN", "KILL"] }));
  });
});

describe("state directory rule: group-writable by the fsGroup, setgid", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "rtm-statedir-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("a new directory belongs to the fsGroup with mode 2770; an old 0750 one is brought to the rule", async () => {
    const fresh = path.join(tmp, "root-a", "game-1");
    const fsGroup = process.getuid!() === 0 ? 4242 : process.getgid!();
    expect(await prepareStateDir(fresh, fsGroup)).toEqual({ gid: fsGroup, mode: STATE_DIR_MODE, problem: null });
    expect(statSync(fresh).mode & 0o7777).toBe(0o2770);
    const old = path.join(tmp, "root-a", "game-2");
    mkdirSync(old, { mode: 0o750 });
    chmodSync(old, 0o750);
    expect(await prepareStateDir(old, fsGroup)).toMatchObject({ gid: fsGroup, mode: 0o2770, problem: null });
  });

  it("a non-root controller (uid 10001): its own group needs no privilege; a group it is not in is reported, not thrown", () => {
    const script = `
      import { fsGroupProblem, prepareStateDir } from ${JSON.stringify(path.join(root, "src/runtime/docker/stateDir.ts"))};
      const { DIR: dir, OWN: own, FOREIGN: foreign } = process.env;
      (async () => {
        const a = await prepareStateDir(dir + "/game-own", Number(own));
        const b = await prepareStateDir(dir + "/game-foreign", Number(foreign));
        const warned = { own: fsGroupProblem(Number(own)), foreign: fsGroupProblem(Number(foreign)) };
        console.log(JSON.stringify({ uid: process.getuid(), a, b, warned }));
      })();`;
    const stateRoot = path.join(tmp, "root-b");
    mkdirSync(stateRoot);
    const asRoot = process.getuid!() === 0;
    // The test runner is root here: run the controller's code as uid 10001, as in the shipped Deployment.
    if (asRoot) {
      chmodSync(tmp, 0o755);
      chownSync(stateRoot, 10001, 10001);
    }
    const out = execFileSync(path.join(root, "node_modules/.bin/tsx"), ["--eval", script], {
      encoding: "utf8",
      cwd: root,
      env: { ...process.env, TSX_DISABLE_CACHE: "1", HOME: tmp, DIR: stateRoot, OWN: String(asRoot ? 10001 : process.getgid!()), FOREIGN: "4242" },
      ...(asRoot ? { uid: 10001, gid: 10001 } : {}),
    });
    const result = JSON.parse(out.trim().split("\n").pop()!) as {
      uid: number;
      a: { gid: number; mode: number; problem: string | null };
      b: { problem: string | null };
      warned: { own: string | null; foreign: string | null };
    };
    expect(result.uid).not.toBe(0);
    expect(result.a).toEqual({ gid: asRoot ? 10001 : process.getgid!(), mode: 0o2770, problem: null });
    expect(result.b.problem).toMatch(/cannot give it to group 4242/);
    // The start-up warning says so before any game: not for its own group, for a foreign one.
    expect(result.warned.own).toBeNull();
    expect(result.warned.foreign).toMatch(/RTMANAGER_ENGINE_FS_GROUP 4242 is not a group of this process/);
  });
});
