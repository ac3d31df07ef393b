import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import Dockerode from "dockerode";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { slack } from "./slack.js";

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const DOCKER_SOCKET = "/var/run/docker.sock";

/** Tags built by test/engine/build.sh. */
export const TEST_IMAGES = {
  v100: "galaxy/test-engine:1.0.0",
  v101: "galaxy/test-engine:1.0.1",
  v102: "galaxy/test-engine:1.0.2",
  /** Runs, but never serves /healthz. */
  unhealthy: "galaxy/test-engine:1.0.3",
  /** Its entrypoint does not exist: create succeeds, start fails. */
  brokenStart: "galaxy/test-engine:1.0.4",
  v110: "galaxy/test-engine:1.1.0",
  v200: "galaxy/test-engine:2.0.0",
  /** com.galaxy.cpu_quota=0.5, com.galaxy.memory=64m, com.galaxy.pids_limit=64. */
  labelled: "galaxy/test-engine-labelled:1.0.0",
} as const;

/**
 * The machine's engine, for tests to look at what rtmanager did. Every call
 * gives up after 30 s (scaled by RTMANAGER_TEST_SLACK) without a byte from
 * dockerd, so a wedged engine fails a test instead of hanging the run.
 */
export function testDocker(): Dockerode {
  return new Dockerode({ socketPath: DOCKER_SOCKET, timeout: slack(DOCKER_CALL_TIMEOUT_MS) });
}

/** Silence after which a test's Docker call is abandoned (before RTMANAGER_TEST_SLACK). */
export const DOCKER_CALL_TIMEOUT_MS = 30_000;

let imagesReady: Promise<void> | null = null;

/**
 * Makes sure dockerd answers and the test images exist. Runs the scripts once
 * per process; build.sh itself takes a lock, so parallel test files are safe.
 */
export function ensureTestImages(): Promise<void> {
  imagesReady ??= (async () => {
    await run("bash", [path.join(repoRoot, "scripts/ensure-docker.sh")], { timeout: 300_000 });
    await run("bash", [path.join(repoRoot, "test/engine/build.sh")], { timeout: 300_000 });
  })().catch((err: unknown) => {
    imagesReady = null;
    const e = err as Error & { stderr?: string };
    throw new Error(`test images unavailable: ${e.message}\n${e.stderr ?? ""}`);
  });
  return imagesReady;
}

/** A random installation id, so parallel test files never see each other's containers. */
export function uniqueInstance(prefix = "test"): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** A random game id valid under GAME_ID_PATTERN. */
export function uniqueGameId(prefix = "g"): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** The test run a network belongs to (globalSetup.ts removes the run's leftovers at its end). */
export const TEST_RUN_LABEL = "com.galaxy.test.run";

export async function createTestNetwork(name: string, docker: Dockerode = testDocker()): Promise<void> {
  const run: Record<string, string> = process.env.RTM_TEST_RUN ? { [TEST_RUN_LABEL]: process.env.RTM_TEST_RUN } : {};
  try {
    await docker.createNetwork({ Name: name, Driver: "bridge", CheckDuplicate: true, Labels: { "com.galaxy.test": "true", ...run } });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 409) throw err;
  }
}

export async function removeTestNetwork(name: string, docker: Dockerode = testDocker()): Promise<void> {
  try {
    await docker.getNetwork(name).remove();
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

/** Force-removes every container carrying `instance`'s label. Call in afterAll. */
export async function cleanupInstance(instance: string, docker: Dockerode = testDocker()): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
  await Promise.all(
    containers.map(async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) throw err;
      }
    }),
  );
}

/** A fresh host directory for a game's state; the engine writes into it as root. */
export async function tempStateDir(prefix = "rtm-state-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * A front for the Docker socket that a test can cut and restore, to simulate
 * the engine going away without restarting the shared dockerd: on a loopback
 * TCP port, or on a Unix socket of its own (`listenPath`) as dockerd's is.
 * Point an adapter at it with `proxy.docker()`.
 */
export class DockerSocketProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly socketPath = DOCKER_SOCKET,
    /** Listen on this Unix socket instead of a TCP port. */
    readonly listenPath?: string,
  ) {}

  docker(): Dockerode {
    if (this.listenPath) return new Dockerode({ socketPath: this.listenPath });
    if (!this.port) throw new Error("proxy not started");
    return new Dockerode({ host: "127.0.0.1", port: this.port, protocol: "http" });
  }

  /** Listens on 127.0.0.1 or `listenPath` (the same port or path again after a stop). */
  async start(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      const upstream = net.connect(this.socketPath);
      this.track(client);
      this.track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const ready = () => {
        server.off("error", reject);
        resolve();
      };
      if (this.listenPath) server.listen(this.listenPath, ready);
      else server.listen({ host: "127.0.0.1", port: this.port }, ready);
    });
    if (!this.listenPath) this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and cuts every open connection, like a dying dockerd. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }
}

/**
 * Polls `check` until it returns a value other than undefined/false, or throws
 * after `timeoutMs` (scaled by RTMANAGER_TEST_SLACK). A check that never
 * settles (a wedged call) is abandoned at the deadline too.
 */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const limit = slack(timeoutMs);
  const deadline = Date.now() + limit;
  let last: unknown;
  while (Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((r) => {
      timer = setTimeout(() => r("expired"), Math.max(0, deadline - Date.now()));
    });
    try {
      const value = await Promise.race([Promise.resolve().then(check), expired]);
      if (value === "expired") {
        last = new Error("the last check did not finish");
        break;
      }
      if (value !== undefined && value !== false) return value as T;
    } catch (err) {
      last = err;
    } finally {
      clearTimeout(timer);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${limit} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}
