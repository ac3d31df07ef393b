import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { PassThrough } from "node:stream";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probeUrl } from "../../src/controller/health.js";
import { contractError } from "../../src/controller/runtimeErrors.js";
import type { ErrorCode } from "../../src/model/errors.js";
import { containerName } from "../../src/model/gameId.js";
import type { EngineEvent, EngineSpec, ObservedContainer } from "../../src/model/ports.js";
import { RuntimeFailure, type RuntimeFailureKind } from "../../src/model/runtimeFailure.js";
import { DockerRuntime, type DockerRuntimeOptions } from "../../src/runtime/docker/dockerRuntime.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { HttpProber } from "../../src/runtime/httpProber.js";
import { logText } from "../helpers/logs.js";
import {
  DockerSocketProxy,
  TEST_IMAGES,
  cleanupInstance,
  createTestNetwork,
  ensureTestImages,
  removeTestNetwork,
  tempStateDir,
  testDocker,
  uniqueGameId,
  uniqueInstance,
  waitFor,
} from "../helpers/docker.js";
import { slack } from "../helpers/slack.js";

const MiB = 1024 * 1024;

const instance = uniqueInstance("adapter");
const otherInstance = uniqueInstance("adapter-other");
const network = `rtm-test-${instance}`;
const stateDirs: string[] = [];
const calls: { operation: string; outcome: string; seconds: number }[] = [];
/** A Docker runtime of this test's installation, publishing engines on loopback unless told otherwise. */
function runtime(over: Partial<DockerRuntimeOptions> = {}): DockerRuntime {
  return new DockerRuntime({ docker: testDocker(), instance, network, publishHost: "127.0.0.1", ...over });
}
const adapter = runtime({ onCall: (operation, outcome, seconds) => calls.push({ operation, outcome, seconds }) });
const other = runtime({ instance: otherInstance });
const prober = new HttpProber();
const unlabelledNames: string[] = [];

async function makeSpec(overrides: Partial<EngineSpec> = {}): Promise<EngineSpec> {
  const gameId = overrides.gameId ?? uniqueGameId();
  const statePath = await tempStateDir();
  stateDirs.push(statePath);
  return {
    gameId,
    name: containerName(gameId),
    imageRef: TEST_IMAGES.v101,
    generation: 3,
    restartToken: "tok-1",
    configHash: "0123456789abcdef",
    env: { GALAXY_TEST: "yes" },
    statePath,
    resources: { cpus: 0.5, memoryBytes: 64 * MiB, pidsLimit: 64 },
    ...overrides,
  };
}

async function startEngine(overrides: Partial<EngineSpec> = {}, using = adapter): Promise<{ spec: EngineSpec; id: string }> {
  const spec = await makeSpec(overrides);
  const id = await using.create(spec);
  await using.start(id);
  return { spec, id };
}

async function observe(gameId: string, using = adapter): Promise<ObservedContainer> {
  const found = await using.listForGame(gameId);
  expect(found).toHaveLength(1);
  return found[0] as ObservedContainer;
}

async function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: urlPath, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

interface Rejection {
  /** What the runtime says went wrong. */
  kind: RuntimeFailureKind;
  /** The contract code a user sees for it, mapped on the controller side. */
  code: ErrorCode;
  message: string;
  details: Record<string, unknown>;
}

/** The adapter rejects with RuntimeFailures only; each is checked together with the code it becomes. */
async function rejection(p: Promise<unknown>): Promise<Rejection> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RuntimeFailure);
    const failure = err as RuntimeFailure;
    return { kind: failure.kind, code: contractError(failure).code, message: failure.message, details: failure.details };
  }
  throw new Error("expected a rejection");
}

/** The engine answers a moment after start; poll its published port. */
async function healthy(port: number): Promise<void> {
  await waitFor(`engine on 127.0.0.1:${port}`, async () => (await prober.probe(`http://127.0.0.1:${port}/healthz`, 1000)).ok || undefined, 10_000);
}

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
}, 300_000);

afterAll(async () => {
  await cleanupInstance(instance);
  await cleanupInstance(otherInstance);
  const docker = testDocker();
  for (const name of unlabelledNames) await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
  await removeTestNetwork(network);
  await Promise.all(stateDirs.map((d) => fs.rm(d, { recursive: true, force: true })));
}, 60_000);

describe("DockerRuntime against the real engine", { timeout: 60_000 }, () => {
  it("pings and tells an existing network from a missing one (no ID-prefix matches)", async () => {
    await adapter.ping();
    expect(await adapter.networkExists(network)).toBe(true);
    expect(await adapter.networkExists(`${network}-missing`)).toBe(false);
    // Docker resolves a network by any unique ID prefix; a one-character name must not match that way.
    const id = ((await testDocker().getNetwork(network).inspect()) as { Id: string }).Id;
    expect(await adapter.networkExists(id.slice(0, 6))).toBe(false);
    expect(await adapter.networkExists(id)).toBe(true);
  });

  it("creates, starts, lists and inspects a container round trip", async () => {
    const spec = await makeSpec();
    const id = await adapter.create(spec);

    const created = await observe(spec.gameId);
    expect(created).toMatchObject({ id, phase: "pending", publishedPort: null, startedAt: null, exitCode: null });

    await adapter.start(id);
    // Starting a running container is a no-op, not an error.
    await adapter.start(id);

    const seen = await observe(spec.gameId);
    expect(seen).toMatchObject({
      id,
      name: spec.name,
      gameId: spec.gameId,
      instance,
      generation: 3,
      imageRef: TEST_IMAGES.v101,
      restartToken: "tok-1",
      configHash: "0123456789abcdef",
      phase: "running",
      exitCode: null,
      oomKilled: false,
      finishedAt: null,
    });
    expect(seen.startedAt).toBeInstanceOf(Date);

    // The one-call fleet listing agrees with inspect on what the periodic passes use.
    const light = (await adapter.listManaged({ inspect: false })).find((c) => c.id === id);
    expect(light).toMatchObject({
      id,
      name: spec.name,
      gameId: spec.gameId,
      generation: 3,
      imageRef: TEST_IMAGES.v101,
      restartToken: "tok-1",
      configHash: "0123456789abcdef",
      phase: "running",
      exitCode: null,
      publishedPort: seen.publishedPort,
    });
    expect(light?.publishedPort).toBeGreaterThan(0);
    expect(seen.createdAt.getTime()).toBeGreaterThan(Date.now() - 120_000);
    expect(seen.publishedPort).toBeGreaterThan(0);
    expect((await adapter.listManaged()).map((c) => c.id)).toContain(id);

    const port = seen.publishedPort as number;
    await healthy(port);
    // Where the controller probes it: the runtime's own answer, from the listing.
    expect(probeUrl(adapter, seen)).toBe(`http://127.0.0.1:${port}/healthz`);
    const probe = await prober.probe(probeUrl(adapter, seen) as string, 2000);
    expect(probe).toMatchObject({ ok: true, statusCode: 200, error: null });
    expect(await httpGet(port, "/version")).toEqual({ status: 200, body: "1.0.1\n" });

    const info = await testDocker().getContainer(id).inspect();
    expect(info.Config.Env).toEqual(
      expect.arrayContaining(["GALAXY_TEST=yes", "GAME_STATE_PATH=/var/lib/galaxy-game", `GAME_ID=${spec.gameId}`]),
    );
    expect(info.Config.Labels).toMatchObject({
      [LABELS.managed]: "true",
      [LABELS.instance]: instance,
      [LABELS.gameId]: spec.gameId,
      [LABELS.generation]: "3",
      [LABELS.imageRef]: TEST_IMAGES.v101,
      [LABELS.restartToken]: "tok-1",
    });
    expect(info.HostConfig).toMatchObject({
      NanoCpus: 500_000_000,
      Memory: 64 * MiB,
      PidsLimit: 64,
      NetworkMode: network,
      RestartPolicy: { Name: "no" },
    });
    expect(info.HostConfig.Binds).toEqual([`${spec.statePath}:/var/lib/galaxy-game`]);
    expect(info.NetworkSettings.Networks[network]?.Aliases).toContain(spec.name);

    const boots = await waitFor("boots.log", () => fs.readFile(path.join(spec.statePath, "boots.log"), "utf8"));
    expect(boots).toMatch(new RegExp(`^boot version=1\\.0\\.1 game=${spec.gameId} at=\\S+\\n$`));

    await waitFor("engine log line", async () => (await logText(adapter, id, 50)).includes("engine 1.0.1 starting") || undefined);
  });

  it("leaves the port unpublished without publishHost, and omits the restart token label when null", async () => {
    const unpublished = runtime({ publishHost: null });
    const { spec, id } = await startEngine({ restartToken: null }, unpublished);
    const seen = await observe(spec.gameId);
    expect(seen).toMatchObject({ id, phase: "running", publishedPort: null, restartToken: null });
    const info = await testDocker().getContainer(id).inspect();
    expect(info.Config.Labels).not.toHaveProperty(LABELS.restartToken);
    // Where an unpublished engine is probed: its address on the engine network, from inspect and from the list alike.
    const address = info.NetworkSettings.Networks[network]?.IPAddress;
    expect(address).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(seen.networkAddresses).toEqual({ [network]: address });
    expect(unpublished.probeAddress(seen)).toBe(`${address}:8080`);
    const light = (await adapter.listManaged({ inspect: false })).find((c) => c.id === id);
    expect(light?.networkAddresses).toEqual({ [network]: address });
  });

  it("probes an unhealthy engine as not ok", async () => {
    const { spec } = await startEngine({ imageRef: TEST_IMAGES.unhealthy });
    const port = (await observe(spec.gameId)).publishedPort as number;
    await waitFor("engine answering /version", async () => (await httpGet(port, "/version")).status === 200 || undefined);
    const probe = await prober.probe(`http://127.0.0.1:${port}/healthz`, 2000);
    expect(probe).toMatchObject({ ok: false, statusCode: 404, error: null });
  });

  it("stops fast with exit code 0, idempotently", async () => {
    const { spec, id } = await startEngine();
    await healthy((await observe(spec.gameId)).publishedPort as number);

    const t0 = Date.now();
    await adapter.stop(id, 10);
    // The engine traps SIGTERM; anything near the 10 s grace would mean a SIGKILL.
    expect(Date.now() - t0).toBeLessThan(slack(5_000));

    const stopped = await observe(spec.gameId);
    expect(stopped).toMatchObject({ phase: "exited", exitCode: 0, oomKilled: false, publishedPort: null, networkAddresses: {} });
    expect(stopped.finishedAt).toBeInstanceOf(Date);

    await adapter.stop(id, 10);
    await adapter.stop("0123456789ab-no-such-container", 10);
  });

  it("removes idempotently, including a running container", async () => {
    const { spec, id } = await startEngine();
    await adapter.remove(id);
    expect(await adapter.listForGame(spec.gameId)).toEqual([]);
    await adapter.remove(id);
    // The name is free again at once.
    const again = await adapter.create({ ...spec });
    expect(again).not.toBe(id);
  });

  it("reports an engine's own exit code", async () => {
    const { spec } = await startEngine({ env: { ENGINE_EXIT_AFTER: "0", ENGINE_EXIT_CODE: "3" } });
    const exited = await waitFor("engine exit", async () => {
      const c = await observe(spec.gameId);
      return c.phase === "exited" ? c : undefined;
    });
    expect(exited.exitCode).toBe(3);
    expect(exited.finishedAt).toBeInstanceOf(Date);
    const light = (await adapter.listManaged({ inspect: false })).find((c) => c.id === exited.id);
    expect(light).toMatchObject({ phase: "exited", exitCode: 3, publishedPort: null });
    expect(await logText(adapter, exited.id, 10)).toContain("exiting on purpose with 3");
  });

  it("lists every container of a game, leftovers included", async () => {
    const gameId = uniqueGameId();
    const first = await startEngine({ gameId, name: `${containerName(gameId)}-old`, generation: 1 });
    const second = await startEngine({ gameId, generation: 2 });
    const found = await adapter.listForGame(gameId);
    expect(found.map((c) => c.id).sort()).toEqual([first.id, second.id].sort());
    expect(found.map((c) => c.generation).sort()).toEqual([1, 2]);
  });

  it("reports a name conflict as conflict", async () => {
    const { spec, id } = await startEngine();
    const err = await rejection(adapter.create({ ...spec }));
    expect(err).toMatchObject({ kind: "conflict", code: "conflict" });
    expect(err.details).toMatchObject({ containerName: spec.name, existingContainerId: id });
  });

  it("reports a missing image at create as image_not_found (image_pull_failed) and a refused config as config_refused (start_config_invalid)", async () => {
    const missing = await rejection(adapter.create(await makeSpec({ imageRef: "galaxy/does-not-exist:1.0.0" })));
    expect(missing).toMatchObject({ kind: "image_not_found", code: "image_pull_failed" });
    expect(missing.message).toContain("galaxy/does-not-exist:1.0.0");

    const tooSmall = await rejection(adapter.create(await makeSpec({ resources: { cpus: 0, memoryBytes: 1000, pidsLimit: 0 } })));
    expect(tooSmall).toMatchObject({ kind: "config_refused", code: "start_config_invalid" });
    expect(tooSmall.message).toMatch(/memory/i);

    const relative = await rejection(adapter.create({ ...(await makeSpec()), statePath: "relative/state" }));
    expect(relative).toMatchObject({ kind: "config_refused", code: "start_config_invalid" });
  });

  it("reports a failing start as start_failed (container_start_failed) with Docker's reason", async () => {
    const spec = await makeSpec({ imageRef: TEST_IMAGES.brokenStart });
    const id = await adapter.create(spec);
    const err = await rejection(adapter.start(id));
    expect(err).toMatchObject({ kind: "start_failed", code: "container_start_failed" });
    expect(err.message).toContain("engine-binary-that-does-not-exist");
    expect(await observe(spec.gameId)).toMatchObject({ id, phase: "pending", exitCode: 127, startedAt: null });

    // Docker 20.10 accepts a missing network at create and refuses at start.
    const noNetwork = runtime({ network: `${network}-missing` });
    const noNetId = await noNetwork.create(await makeSpec());
    expect((await rejection(noNetwork.start(noNetId))).code).toBe("container_start_failed");
  });

  it("answers image questions and fails a pull that cannot succeed", async () => {
    expect(await adapter.imageMetadata(TEST_IMAGES.labelled)).toMatchObject({
      "com.galaxy.cpu_quota": "0.5",
      "com.galaxy.memory": "64m",
      "com.galaxy.pids_limit": "64",
    });
    expect(await adapter.imageMetadata(TEST_IMAGES.v100)).not.toHaveProperty("com.galaxy.memory");
    expect(await rejection(adapter.imageMetadata("galaxy/does-not-exist:1.0.0"))).toMatchObject({ kind: "image_not_found", code: "image_pull_failed" });

    // A registry on a closed loopback port: the pull fails fast and touches no other address.
    const ref = "127.0.0.1:1/galaxy/does-not-exist:1.0.0";
    const err = await rejection(adapter.pull(ref));
    expect(err).toMatchObject({ kind: "pull_failed", code: "image_pull_failed" });
    expect(err.message).toContain(ref);
    expect(err.message).toMatch(/connection refused/);
  });

  it("applies the pull policy in ensureImage: a present image is not pulled, a missing one under never fails", async () => {
    calls.length = 0;
    await adapter.ensureImage(TEST_IMAGES.v100, "if_not_present");
    await adapter.ensureImage(TEST_IMAGES.v100, "never");
    expect(calls.map((c) => c.operation)).toEqual(["image_inspect", "image_inspect"]);

    const never = await rejection(adapter.ensureImage("galaxy/does-not-exist:1.0.0", "never"));
    expect(never).toMatchObject({ kind: "image_not_found", code: "image_pull_failed" });
    expect(never.message).toMatch(/RTMANAGER_IMAGE_PULL_POLICY is never/);
    // if_not_present pulls a missing image; from a closed loopback registry that fails as a pull.
    const missing = await rejection(adapter.ensureImage("127.0.0.1:1/galaxy/does-not-exist:1.0.0", "if_not_present"));
    expect(missing).toMatchObject({ kind: "pull_failed", code: "image_pull_failed" });
    expect(calls.map((c) => c.operation)).toContain("pull");
  });

  it("declares that it does nothing by itself: the controller pulls, starts, restarts and replaces", () => {
    expect(adapter.name).toBe("docker");
    expect(adapter.verbs).toEqual(["pull", "create", "start", "stop", "remove"]);
  });

  it("never lists a container of another installation, or an unlabelled one", async () => {
    const gameId = uniqueGameId();
    const theirs = await startEngine({ gameId, name: `${containerName(gameId)}-other` }, other);
    const unlabelledName = `rtm-test-unlabelled-${gameId}`;
    unlabelledNames.push(unlabelledName);
    await testDocker().createContainer({
      name: unlabelledName,
      Image: TEST_IMAGES.v100,
      // Claims our game id but not our instance: still not ours.
      Labels: { [LABELS.gameId]: gameId, [LABELS.managed]: "true" },
    });

    expect(await adapter.listForGame(gameId)).toEqual([]);
    const mine = await adapter.listManaged();
    expect(mine.every((c) => c.instance === instance)).toBe(true);
    expect(mine.map((c) => c.id)).not.toContain(theirs.id);
    expect((await other.listForGame(gameId)).map((c) => c.id)).toEqual([theirs.id]);
  });

  it("delivers events of this installation only", async () => {
    const events: EngineEvent[] = [];
    const stop = adapter.watchEvents({ onEvent: (e) => events.push(e), onReconnect: () => undefined, onDisconnect: () => undefined });
    try {
      // Events from before the watch connected are replayed from the moment of the call.
      const theirs = await startEngine({}, other);
      const mine = await startEngine();
      await adapter.stop(mine.id, 10);

      // Docker emits kill, die, then stop for a docker stop: three exits, the die one with the exit code.
      const exits = () => events.filter((e) => e.engineId === mine.id && e.change === "exited");
      await waitFor("stop event", () => exits().length === 3);
      const own = events.filter((e) => e.engineId === mine.id);
      expect(own.map((e) => e.change)).toEqual(expect.arrayContaining(["created", "started", "exited"]));
      expect(own.every((e) => e.gameId === mine.spec.gameId)).toBe(true);
      expect(exits().map((e) => e.exitCode).filter((c) => c !== null)).toEqual([0]);
      expect(own.find((e) => e.change === "started")?.exitCode).toBeNull();
      expect(events.some((e) => e.engineId === theirs.id || e.gameId === theirs.spec.gameId)).toBe(false);

      await adapter.remove(mine.id);
      await waitFor("destroy event", () => events.some((e) => e.engineId === mine.id && e.change === "removed"));
    } finally {
      stop();
    }
  });

  it("reports a broken event stream once, reconnects, and delivers events again", async () => {
    const proxy = new DockerSocketProxy();
    await proxy.start();
    const viaProxy = runtime({ docker: proxy.docker(), reconnectBaseMs: 50, reconnectMaxMs: 400 });
    const log: string[] = [];
    const events: EngineEvent[] = [];
    const stop = viaProxy.watchEvents({
      onEvent: (e) => events.push(e),
      onReconnect: () => log.push("reconnect"),
      onDisconnect: () => log.push("disconnect"),
    });
    try {
      const first = await startEngine();
      await waitFor("start event through the proxy", () => events.some((e) => e.engineId === first.id && e.change === "started"));
      expect(log).toEqual([]);

      await proxy.stop();
      await waitFor("disconnect", () => log.includes("disconnect"));
      // Several reconnect attempts fail meanwhile; the controller hears about the outage once.
      await new Promise((r) => setTimeout(r, 600));
      expect(log).toEqual(["disconnect"]);
      const down = await rejection(viaProxy.ping());
      expect(down).toMatchObject({ kind: "unavailable", code: "docker_unavailable" });

      await proxy.start();
      await waitFor("reconnect", () => log.includes("reconnect"), 10_000);
      expect(log).toEqual(["disconnect", "reconnect"]);

      const second = await startEngine();
      await waitFor("events after reconnect", () => events.some((e) => e.engineId === second.id && e.change === "started"));
    } finally {
      stop();
      await proxy.stop();
    }
    const before = events.length;
    await startEngine();
    await new Promise((r) => setTimeout(r, 300));
    expect(events.length).toBe(before);
    expect(log).toEqual(["disconnect", "reconnect"]);
  });

  it("reports an unreachable engine as unavailable (docker_unavailable) everywhere", async () => {
    const dead = runtime({ docker: new Dockerode({ socketPath: "/tmp/rtm-no-such-dir/docker.sock" }) });
    const spec = await makeSpec();
    const results = await Promise.all([
      rejection(dead.ping()),
      rejection(dead.listManaged()),
      rejection(dead.listForGame(spec.gameId)),
      rejection(dead.create(spec)),
      rejection(dead.start("abc")),
      rejection(dead.stop("abc", 1)),
      rejection(dead.remove("abc")),
      rejection(dead.pull(TEST_IMAGES.v100)),
      rejection(dead.ensureImage(TEST_IMAGES.v100, "if_not_present")),
      rejection(dead.imageMetadata(TEST_IMAGES.v100)),
      rejection(dead.networkExists(network)),
      rejection(dead.setupProblem()),
      rejection(logText(dead, "abc", 10)),
    ]);
    for (const err of results) expect(err).toMatchObject({ kind: "unavailable", code: "docker_unavailable" });

    const disconnects: Error[] = [];
    const stop = dead.watchEvents({ onEvent: () => undefined, onReconnect: () => undefined, onDisconnect: (e) => disconnects.push(e) });
    try {
      await waitFor("disconnect from a dead socket", () => disconnects.length > 0);
    } finally {
      stop();
    }
  });

  it("bounds a call to an engine that accepts but never answers", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const hung = runtime({ docker: new Dockerode({ host: "127.0.0.1", port, protocol: "http" }), callTimeoutMs: 300 });
      const t0 = Date.now();
      const err = await rejection(hung.listManaged());
      expect(err).toMatchObject({ kind: "unavailable", code: "docker_unavailable" });
      expect(err.message).toMatch(/within 300 ms/);
      expect(Date.now() - t0).toBeLessThan(slack(3_000));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it("reports API calls to the onCall hook, tolerated 404s as ok", async () => {
    calls.length = 0;
    await adapter.remove("0123456789ab-no-such-container");
    await adapter.imageMetadata("galaxy/does-not-exist:1.0.0").catch(() => undefined);
    expect(calls.map((c) => [c.operation, c.outcome])).toEqual([
      ["remove", "ok"],
      ["image_inspect", "ok"],
    ]);
    await rejection(adapter.start("0123456789ab-no-such-container"));
    expect(calls.at(-1)).toMatchObject({ operation: "start", outcome: "error" });
    expect(calls.every((c) => c.seconds >= 0 && c.seconds < 30)).toBe(true);
  });
});

describe("HttpProber", () => {
  it("fails on a refused connection and on a timeout, on loopback only", async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await prober.probe(`http://127.0.0.1:${closedPort}/healthz`, 1000);
    expect(refused).toMatchObject({ ok: false, statusCode: null });
    expect(refused.error).toMatch(/ECONNREFUSED/);

    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const slow = await prober.probe(`http://127.0.0.1:${port}/healthz`, 200);
      expect(slow).toMatchObject({ ok: false, statusCode: null });
      expect(slow.error).toMatch(/timeout/);
      expect(slow.latencyMs).toBeLessThan(slack(1500));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }

    const server = http.createServer((req, res) => {
      res.statusCode = req.url === "/healthz" ? 204 : 503;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (server.address() as net.AddressInfo).port;
      expect(await prober.probe(`http://127.0.0.1:${port}/healthz`, 1000)).toMatchObject({ ok: true, statusCode: 204 });
      expect(await prober.probe(`http://127.0.0.1:${port}/other`, 1000)).toMatchObject({ ok: false, statusCode: 503 });
    } finally {
      await new Promise((r) => server.close(r));
    }

    // Not HTTP, an answer cut before its status line, and a status line in pieces.
    const odd = net.createServer((s) => {
      s.once("data", (req: Buffer) => {
        const path = req.toString("latin1").split(" ")[1];
        if (path === "/garbage") s.end("SSH-2.0-OpenSSH\r\n");
        else if (path === "/cut") s.end("HTTP/1.1 2");
        else {
          s.write("HTTP/1.1 2");
          setTimeout(() => s.end("00 OK\r\nContent-Length: 0\r\n\r\n"), 20);
        }
      });
    });
    await new Promise<void>((r) => odd.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (odd.address() as net.AddressInfo).port;
      const garbage = await prober.probe(`http://127.0.0.1:${port}/garbage`, 1000);
      expect(garbage).toMatchObject({ ok: false, statusCode: null });
      expect(garbage.error).toMatch(/not an HTTP answer/);
      const cut = await prober.probe(`http://127.0.0.1:${port}/cut`, 1000);
      expect(cut).toMatchObject({ ok: false, statusCode: null });
      expect(cut.error).toMatch(/closed before a status line/);
      expect(await prober.probe(`http://127.0.0.1:${port}/split`, 1000)).toMatchObject({ ok: true, statusCode: 200 });
    } finally {
      await new Promise((r) => odd.close(r));
    }
  });
});

/**
 * Stream handling that the real engine cannot exercise here: there is no
 * registry to pull from, and dockerd never splits an event across chunks on
 * demand. A stub stands in for dockerode.
 */
describe("DockerRuntime stream handling (stubbed engine)", () => {
  function stubDocker(methods: Partial<Record<"pull" | "getEvents", (...args: unknown[]) => Promise<unknown>>>): Dockerode {
    return methods as unknown as Dockerode;
  }

  function streamOf(chunks: string[], endWith: "end" | "cut" = "end"): PassThrough {
    const s = new PassThrough();
    setImmediate(() => {
      for (const c of chunks) s.write(c);
      if (endWith === "end") s.end();
      else s.destroy();
    });
    return s;
  }

  it("follows a pull to its end, and fails one whose stream reports an error or is cut", async () => {
    const ok = runtime({
      docker: stubDocker({ pull: async () => streamOf(['{"status":"Pulling fs layer"}\n{"stat', 'us":"Download complete"}\n']) }),
    });
    await ok.pull("registry.example/galaxy/engine:1.0.0");

    const denied = runtime({
      docker: stubDocker({
        pull: async () => streamOf(['{"status":"Pulling"}\n', '{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n']),
      }),
    });
    const err = await rejection(denied.pull("registry.example/galaxy/engine:9.9.9"));
    expect(err).toMatchObject({ kind: "pull_failed", code: "image_pull_failed" });
    expect(err.message).toBe("pull of registry.example/galaxy/engine:9.9.9 failed: manifest unknown");

    const cut = runtime({ docker: stubDocker({ pull: async () => streamOf(['{"status":"Pulling"}\n'], "cut") }) });
    expect(await rejection(cut.pull("registry.example/galaxy/engine:1.0.0"))).toMatchObject({ kind: "unavailable", code: "docker_unavailable" });

    const slow = runtime({ pullTimeoutMs: 100, docker: stubDocker({ pull: async () => new PassThrough() }) });
    const timedOut = await rejection(slow.pull("registry.example/galaxy/engine:1.0.0"));
    expect(timedOut).toMatchObject({ kind: "pull_failed", code: "image_pull_failed" });
    expect(timedOut.message).toMatch(/within 100 ms/);
  });

  it("reassembles events split across chunks, drops foreign and garbled ones, and reconnects after the stream ends", async () => {
    const label = (i: string, g: string) => `"${LABELS.managed}":"true","${LABELS.instance}":"${i}","${LABELS.gameId}":"${g}"`;
    const die = `{"Type":"container","Action":"die","Actor":{"ID":"c1","Attributes":{${label(instance, "g1")},"exitCode":"137"}}}`;
    const foreign = `{"Type":"container","Action":"start","Actor":{"ID":"c2","Attributes":{${label("someone-else", "g2")}}}}`;
    const exec = `{"Type":"container","Action":"exec_start: sh","Actor":{"ID":"c1","Attributes":{${label(instance, "g1")}}}}`;
    const start = `{"Type":"container","Action":"start","Actor":{"ID":"c3","Attributes":{${label(instance, "g3")}}}}`;
    const streams = [
      () => streamOf([die.slice(0, 40), die.slice(40) + "\n" + foreign + "\nnot json\n" + exec + "\n"]),
      () => Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })),
      () => streamOf([start + "\n"], "cut"),
    ];
    const queries: unknown[] = [];
    let n = 0;
    const adapterWithStub = runtime({
      reconnectBaseMs: 10,
      reconnectMaxMs: 50,
      docker: stubDocker({
        getEvents: async (opts: unknown) => {
          queries.push(opts);
          const next = streams[Math.min(n++, streams.length - 1)] as () => unknown;
          return next();
        },
      }),
    });
    const log: string[] = [];
    const stop = adapterWithStub.watchEvents({
      onEvent: (e) => log.push(`event ${e.change} ${e.gameId} ${e.engineId} ${e.exitCode}`),
      onDisconnect: () => log.push("disconnect"),
      onReconnect: () => log.push("reconnect"),
    });
    try {
      await waitFor("second stream's event", () => log.includes("event started g3 c3 null"));
    } finally {
      stop();
    }
    expect(log.slice(0, 4)).toEqual(["event exited g1 c1 137", "disconnect", "reconnect", "event started g3 c3 null"]);
    // Only the first connection replays from the moment of the call.
    expect(queries[0]).toHaveProperty("since");
    expect(queries[2]).not.toHaveProperty("since");
    expect(queries[0]).toMatchObject({
      filters: { type: ["container"], label: [`${LABELS.managed}=true`, `${LABELS.instance}=${instance}`] },
    });
  });
});
