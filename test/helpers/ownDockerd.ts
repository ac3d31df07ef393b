/**
 * A dockerd of the test's own, beside the machine's: its own API socket, data
 * root, exec root (so its own managed containerd), pid file, a default bridge
 * device of its own, no iptables rules and user networks from a private pool.
 *
 * dockerd deletes the machine's docker0 (moby's removeDefaultBridgeInterface,
 * daemon_unix.go) when started with `--bridge=none`, and on every start after
 * the first when `--default-address-pool` is set; that breaks every container
 * of the machine's engine on its default network. And `--bip` on the default
 * bridge would readdress docker0. So: a bridge device of the test's own named
 * with `--bridge`, no address pool, and user networks given an explicit
 * subnet (OWN_SUBNET) by the test that creates them.
 * A test may stop and restart it by its pid; the machine's dockerd, its
 * containerd and every container on it are never touched.
 *
 * Needs root (dockerd does) and the dockerd binary, as the main engine does
 * when scripts/ensure-docker.sh starts one; ownDockerdUnavailable() says why
 * not, so a test can skip with that reason rather than fail on Docker Desktop.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import Dockerode from "dockerode";
import { waitFor } from "./docker.js";
import { slack } from "./slack.js";

const run = promisify(execFile);

/** For a user network on the own engine: outside Docker's default pools (172.17-31/16, 192.168/16), which the machine's engine draws from. */
export const OWN_SUBNET = "10.213.0.0/24";
/** Its default bridge's address. */
const BRIDGE_CIDR = "10.214.0.1/24";

/** Why this machine cannot run a second dockerd, or null when it can. */
export function ownDockerdUnavailable(): string | null {
  if (process.platform !== "linux") return `a second dockerd needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "a second dockerd needs root";
  try {
    execFileSync("dockerd", ["--version"], { stdio: "ignore", timeout: 10_000 });
  } catch {
    return "no dockerd binary on PATH (Docker Desktop, or a remote DOCKER_HOST)";
  }
  return null;
}

export interface OwnDockerd {
  /** unix:///… for DOCKER_HOST and `docker -H`. */
  readonly host: string;
  readonly socketPath: string;
  readonly root: string;
  /** The running dockerd's pid, or null while stopped. */
  pid(): number | null;
  /** A client of this engine whose every call gives up after 30 s (scaled by RTMANAGER_TEST_SLACK) of silence. */
  docker(): Dockerode;
  /** Copies images from the machine's engine (docker save | docker -H … load). */
  loadImages(refs: readonly string[]): Promise<void>;
  /** SIGTERM to this dockerd's pid; resolves once the process has exited (SIGKILL after 60 s). */
  stop(): Promise<void>;
  /** Starts it again on the same roots; resolves once its API answers. */
  start(): Promise<void>;
  /** Stops it, unmounts and removes everything it left (bridges of its networks included). Safe to call twice. */
  destroy(): Promise<void>;
}

const alive = new Set<ChildProcess>();
// A worker that dies without afterAll must not leave its dockerd behind.
process.once("exit", () => {
  for (const child of alive) child.kill("SIGTERM");
});

export async function startOwnDockerd(): Promise<OwnDockerd> {
  const reason = ownDockerdUnavailable();
  if (reason) throw new Error(reason);
  // Short: the API and containerd sockets live under it, and unix socket paths stop at 108 bytes.
  const root = mkdtempSync(path.join(os.tmpdir(), "rtm-dockerd-"));
  // At most 15 bytes (IFNAMSIZ), random so it is never the machine's.
  const bridge = `rtmd-${randomBytes(4).toString("hex")}`;
  await run("ip", ["link", "add", "name", bridge, "type", "bridge"]);
  await run("ip", ["addr", "add", BRIDGE_CIDR, "dev", bridge]);
  await run("ip", ["link", "set", bridge, "up"]);
  const socketPath = path.join(root, "docker.sock");
  const host = `unix://${socketPath}`;
  const logFile = path.join(root, "dockerd.log");
  const args = [
    `--host=${host}`,
    `--data-root=${path.join(root, "data")}`,
    `--exec-root=${path.join(root, "exec")}`,
    `--pidfile=${path.join(root, "dockerd.pid")}`,
    `--bridge=${bridge}`,
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
  ];
  const client = new Dockerode({ socketPath, timeout: slack(30_000) });
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const bridges = new Set<string>();

  const launch = async (): Promise<void> => {
    const log = openSync(logFile, "a");
    // Its own session: Ctrl-C in the test's terminal reaches vitest, which stops it through afterAll.
    const proc = spawn("dockerd", args, { detached: true, stdio: ["ignore", log, log] });
    closeSync(log);
    child = proc;
    alive.add(proc);
    exited = new Promise<void>((resolve) => proc.once("exit", () => {
      alive.delete(proc);
      if (child === proc) child = null;
      resolve();
    }));
    try {
      await waitFor("the test's own dockerd to answer", async () => {
        if (!child) throw new Error("dockerd exited during start-up");
        await client.ping();
        return true;
      }, 60_000, 200);
    } catch (err) {
      const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "";
      throw new Error(`${(err as Error).message}\n${tail}`);
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill("SIGTERM");
    const gone = await Promise.race([exited.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 60_000))]);
    if (!gone) {
      proc.kill("SIGKILL");
      await exited;
    }
  };

  /** The bridges its user networks made (br-<id>), deleted at destroy if dockerd left them. */
  const rememberBridges = async (): Promise<void> => {
    const networks = await client.listNetworks();
    for (const n of networks) {
      if (n.Driver !== "bridge" || n.Name === "bridge") continue;
      bridges.add(n.Options?.["com.docker.network.bridge.name"] ?? `br-${n.Id.slice(0, 12)}`);
    }
    bridges.add(bridge);
  };

  /**
   * Its managed containerd and the shims exit with it; after a SIGKILL, or a
   * shim that outlived containerd, they may not. They were started by this
   * dockerd (their command lines name its exec root), so they are ours to stop.
   */
  const stopLeftovers = (): void => {
    const execRoot = path.join(root, "exec");
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
        if (cmdline.includes(execRoot)) process.kill(Number(entry), "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
  };

  /** Removes its containers through its API first, so dockerd's shutdown has nothing to stop. */
  const removeContainers = async (): Promise<void> => {
    const containers = await client.listContainers({ all: true });
    await Promise.all(containers.map((c) => client.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
  };

  const unmountUnder = async (): Promise<void> => {
    const mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m === root || m.startsWith(`${root}/`))
      .reverse();
    for (const m of mounts) await run("umount", ["-l", m]).catch(() => undefined);
  };

  try {
    await launch();
  } catch (err) {
    await stop();
    stopLeftovers();
    await run("ip", ["link", "delete", bridge]).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  let destroyed = false;
  return {
    host,
    socketPath,
    root,
    pid: () => child?.pid ?? null,
    docker: () => client,
    async loadImages(refs) {
      // The machine's engine is only read from (docker save); the copy goes into ours.
      await run("bash", ["-o", "pipefail", "-c", 'h="$1"; shift; docker save "$@" | docker -H "$h" load -q', "load", host, ...refs], {
        timeout: slack(180_000),
        maxBuffer: 16 * 1024 * 1024,
      });
    },
    stop,
    start: launch,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      if (child) {
        await rememberBridges().catch(() => undefined);
        await removeContainers().catch(() => undefined);
      }
      await stop();
      stopLeftovers();
      await unmountUnder();
      bridges.add(bridge);
      for (const b of bridges) {
        if (existsSync(`/sys/class/net/${b}`)) await run("ip", ["link", "delete", b]).catch(() => undefined);
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}
