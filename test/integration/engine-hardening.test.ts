/**
 * Engine hardening on a real Docker engine: what a created engine's
 * HostConfig says, what its process really has (/proc/1/status), and that an
 * engine of another uid with every capability dropped still writes its state
 * through the fsGroup rule (src/runtime/docker/stateDir.ts).
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { containerName } from "../../src/model/gameId.js";
import type { EngineSpec } from "../../src/model/ports.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";
import { hardeningDigest } from "../../src/runtime/docker/hardening.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { defaultEngineHardening, type EngineHardening } from "../../src/runtime/engineHardening.js";
import { HttpProber } from "../../src/runtime/httpProber.js";
import { TEST_IMAGES, cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, testDocker, uniqueGameId, uniqueInstance, waitFor } from "../helpers/docker.js";

/** Built by test/engine/build.sh: uid/gid 10001, writes only GAME_STATE_PATH and /tmp. */
const HARDENED_IMAGE = "galaxy/test-engine-hardened:1.0.0";
const STATE = "/var/lib/galaxy-game";
/** A group neither root nor uid 10001 belongs to: only the fsGroup rule lets an engine write. */
const FS_GROUP = 4242;
const CAP_NET_BIND_SERVICE = 1n << 10n;

const instance = uniqueInstance("hardening");
const network = `rtm-test-${instance}`;
const roots: string[] = [];
const run = promisify(execFile);

function runtime(hardening: EngineHardening): DockerRuntime {
  return new DockerRuntime({ docker: testDocker(), instance, network, publishHost: "127.0.0.1", hardening });
}

/** A state path the runtime has to create itself, under a fresh state root. */
async function start(using: DockerRuntime, imageRef: string): Promise<{ spec: EngineSpec; id: string }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-hardening-"));
  roots.push(root);
  const gameId = uniqueGameId();
  const spec: EngineSpec = {
    gameId,
    name: containerName(gameId),
    imageRef,
    generation: 1,
    restartToken: null,
    configHash: "0123456789abcdef",
    env: {},
    statePath: path.join(root, gameId),
    resources: { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pidsLimit: 64 },
  };
  const id = await using.create(spec);
  await using.start(id);
  return { spec, id };
}

/** `docker exec` as the engine's own user; resolves with the exit code and output, never throws on a non-zero exit. */
async function exec(id: string, script: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run("docker", ["exec", id, "sh", "-c", script]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/** The engine process's capability sets and no_new_privs flag, as the kernel has them. */
async function processStatus(id: string): Promise<{ eff: bigint; bnd: bigint; noNewPrivs: string; uid: string; groups: string[] }> {
  const { code, out } = await exec(id, "cat /proc/1/status");
  expect(code, out).toBe(0);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(out)?.[1]?.trim() ?? "";
  return {
    eff: BigInt(`0x${field("CapEff")}`),
    bnd: BigInt(`0x${field("CapBnd")}`),
    noNewPrivs: field("NoNewPrivs"),
    uid: field("Uid").split(/\s+/)[0]!,
    groups: field("Groups").split(/\s+/).filter(Boolean),
  };
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The state-init of each deployment kit, as its file says: the command and what it runs with. */
async function stateInits(): Promise<{ kit: string; command: string[]; user: string; capAdd: string[]; root: string }[]> {
  const read = async (p: string) => parse(await fs.readFile(path.join(repoRoot, p), "utf8")) as Record<string, unknown>;
  type Init = { name: string; command: string[]; securityContext: { runAsUser: number; runAsGroup: number; capabilities: { add: string[] } }; volumeMounts: { mountPath: string }[] };
  const k8s = (await read("deploy/kustomize/components/docker-runtime/deployment-docker.yaml")) as { spec: { template: { spec: { initContainers: Init[] } } } };
  const init = k8s.spec.template.spec.initContainers.find((c) => c.name === "state-init")!;
  const compose = (await read("deploy/compose.yaml")) as { services: Record<string, { entrypoint: string[]; user: string; cap_add: string[]; volumes: string[] }> };
  const svc = compose.services["state-init"]!;
  return [
    {
      kit: "kustomize",
      command: init.command,
      user: `${init.securityContext.runAsUser}:${init.securityContext.runAsGroup}`,
      capAdd: init.securityContext.capabilities.add,
      root: init.volumeMounts[0]!.mountPath,
    },
    { kit: "compose", command: svc.entrypoint, user: svc.user, capAdd: svc.cap_add, root: svc.volumes[0]!.split(":")[1]! },
  ];
}

const capNames = (caps: string[] | null | undefined) => (caps ?? []).map((c) => c.replace(/^CAP_/, ""));

async function healthyOnPublishedPort(using: DockerRuntime, gameId: string): Promise<void> {
  const prober = new HttpProber();
  await waitFor(
    `${gameId} healthy`,
    async () => {
      const [engine] = await using.listForGame(gameId);
      return !!engine?.publishedPort && (await prober.probe(`http://127.0.0.1:${engine.publishedPort}/healthz`, 1000)).ok;
    },
    15_000,
  );
}

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
}, 300_000);

afterAll(async () => {
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await Promise.all(roots.map((d) => fs.rm(d, { recursive: true, force: true })));
}, 60_000);

describe("engine hardening on a real engine", { timeout: 60_000 }, () => {
  it("by default: every capability dropped, no new privileges, json-file logs capped, the image's user, the fsGroup joined", async () => {
    const hardening = defaultEngineHardening();
    const { spec, id } = await start(runtime(hardening), TEST_IMAGES.v100);
    const info = await testDocker().getContainer(id).inspect();
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(capNames(info.HostConfig.CapAdd)).toEqual([]);
    expect(info.HostConfig.SecurityOpt).toEqual(["no-new-privileges"]);
    expect(info.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "10m", "max-file": "3" } });
    expect(info.HostConfig.ReadonlyRootfs).toBe(false);
    expect(info.HostConfig.GroupAdd).toEqual([String(hardening.fsGroup)]);
    expect(info.Config.User).toBe("");
    expect(info.Config.Labels[LABELS.hardening]).toBe(hardeningDigest(hardening));

    // What the kernel gives the engine: root (the test image's user) with nothing.
    const status = await processStatus(id);
    expect(status).toMatchObject({ eff: 0n, bnd: 0n, noNewPrivs: "1", uid: "0" });

    // Root in the engine no longer bypasses file permissions (no CAP_DAC_OVERRIDE).
    await fs.mkdir(path.join(spec.statePath, "locked"), { mode: 0o700 });
    await fs.chown(path.join(spec.statePath, "locked"), 10001, 10001);
    const denied = await exec(id, `touch ${STATE}/locked/x`);
    expect(denied.code, denied.out).not.toBe(0);
    expect(denied.out).toMatch(/Permission denied/);
    // Its own state it writes (the entrypoint's boot log).
    await waitFor("boots.log", () => fs.readFile(path.join(spec.statePath, "boots.log"), "utf8"));
  });

  it("an engine as uid 10001 with every capability dropped writes its state through the fsGroup; read-only rootfs with /tmp; caps and logs as set", async () => {
    const hardening: EngineHardening = {
      ...defaultEngineHardening(),
      capAdd: ["NET_BIND_SERVICE"],
      logMaxSizeBytes: 1024 * 1024,
      logMaxFiles: 2,
      readOnlyRootFilesystem: true,
      fsGroup: FS_GROUP,
    };
    const using = runtime(hardening);
    const { spec, id } = await start(using, HARDENED_IMAGE);
    // It serves from /tmp: the root filesystem is read-only and the tmpfs is writable.
    await healthyOnPublishedPort(using, spec.gameId);

    const info = await testDocker().getContainer(id).inspect();
    expect(info.HostConfig.CapDrop).toEqual(["ALL"]);
    expect(capNames(info.HostConfig.CapAdd)).toEqual(["NET_BIND_SERVICE"]);
    expect(info.HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-size": "1m", "max-file": "2" } });
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    expect(Object.keys(info.HostConfig.Tmpfs ?? {})).toEqual(["/tmp"]);
    expect(info.HostConfig.GroupAdd).toEqual([String(FS_GROUP)]);

    const status = await processStatus(id);
    // A non-root process holds no capability; the bounding set is only what was added.
    expect(status).toMatchObject({ eff: 0n, bnd: CAP_NET_BIND_SERVICE, noNewPrivs: "1", uid: "10001" });
    expect(status.groups).toContain(String(FS_GROUP));

    // The state directory: the fsGroup's, group-writable, setgid.
    const dir = await fs.stat(spec.statePath);
    expect({ gid: dir.gid, mode: (dir.mode & 0o7777).toString(8) }).toEqual({ gid: FS_GROUP, mode: "2770" });
    // The engine wrote into it as 10001, and what it wrote inherits the group.
    const boots = await waitFor("boots.log", async () => fs.stat(path.join(spec.statePath, "boots.log")).catch(() => undefined));
    expect({ uid: boots.uid, gid: boots.gid }).toEqual({ uid: 10001, gid: FS_GROUP });
    const write = await exec(id, `echo saved > ${STATE}/turn-1 && cat ${STATE}/turn-1`);
    expect(write).toEqual({ code: 0, out: "saved\n" });
    expect(await fs.readFile(path.join(spec.statePath, "turn-1"), "utf8")).toBe("saved\n");

    const readOnly = await exec(id, "touch /written-to-root");
    expect(readOnly.out).toMatch(/Read-only file system/);
  });

  it("each kit's state-init, run as its file says (root, CHOWN only) on a fresh root-owned state root, twice, leaves a root where uid 10001 with no capability creates a game directory", async () => {
    for (const init of await stateInits()) {
      const host = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-stateroot-"));
      roots.push(host);
      await fs.chmod(host, 0o755); // as the kubelet's DirectoryOrCreate and Docker's missing bind source make it
      const [entrypoint, ...args] = init.command;
      const runInit = () =>
        run("docker", [
          "run", "--rm", "--network", "none", "--user", init.user, "--cap-drop", "ALL", ...init.capAdd.flatMap((c) => ["--cap-add", c]),
          "--security-opt", "no-new-privileges", "--read-only", "-v", `${host}:${init.root}`, "--entrypoint", entrypoint!, TEST_IMAGES.v100, ...args,
        ]);
      // A pod restarts its init containers on every start: the second run must succeed too.
      await runInit();
      await runInit();
      const st = await fs.stat(host);
      expect({ kit: init.kit, uid: st.uid, gid: st.gid }).toEqual({ kit: init.kit, uid: 10001, gid: 10001 });
      await run("docker", [
        "run", "--rm", "--network", "none", "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-v", `${host}:${init.root}`, "--entrypoint", "mkdir", TEST_IMAGES.v100, `${init.root}/game-1`,
      ]);
      expect((await fs.stat(path.join(host, "game-1"))).uid).toBe(10001);
    }
  });

  it("RTMANAGER_ENGINE_USER overrides the image's user, and that user writes its state too", async () => {
    const hardening: EngineHardening = { ...defaultEngineHardening(), user: { uid: 10002, gid: 10003 }, fsGroup: FS_GROUP };
    const using = runtime(hardening);
    const { spec, id } = await start(using, HARDENED_IMAGE);
    await healthyOnPublishedPort(using, spec.gameId);
    expect((await testDocker().getContainer(id).inspect()).Config.User).toBe("10002:10003");
    expect((await processStatus(id)).uid).toBe("10002");
    const boots = await waitFor("boots.log", async () => fs.stat(path.join(spec.statePath, "boots.log")).catch(() => undefined));
    expect({ uid: boots.uid, gid: boots.gid }).toEqual({ uid: 10002, gid: FS_GROUP });
  });
});
