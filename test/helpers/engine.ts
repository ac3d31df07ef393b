/**
 * Reaching a test engine by the container id a record names, whichever
 * runtime runs it: a container of a CRI test cluster (registered here by
 * podApp) is reached at its pod IP on the cluster's bridge and entered with
 * CRI ExecSync; a Docker container (Docker mode with
 * RTMANAGER_ENGINE_PUBLISH_HOST, and the Docker-backed test kubelet) at its
 * 8080 published on 127.0.0.1 and with `docker exec`.
 */
import { execFile } from "node:child_process";
import http from "node:http";
import { promisify } from "node:util";
import type { CriRuntime } from "../k8s/kubelet/criRuntime.js";
import { testDocker } from "./docker.js";

const run = promisify(execFile);

/** How a test reaches engines that are not Docker containers (a CRI test cluster's, a real cluster's). */
export interface EngineAccess {
  has(containerId: string): Promise<boolean>;
  /** The pod IP or proxy answer of GET /version, or null when nothing serves. */
  servedVersion(containerId: string): Promise<string | null>;
  shell(containerId: string, script: string): Promise<string>;
  kill(containerId: string): Promise<void>;
}

const accesses = new Set<EngineAccess>();

/** Makes another runtime's containers reachable by id; the returned function forgets it. */
export function registerEngineAccess(access: EngineAccess): () => void {
  accesses.add(access);
  return () => accesses.delete(access);
}

/** A CRI test cluster's containers: pod IP on its bridge, ExecSync, the host pid. */
export function registerCriRuntime(cri: CriRuntime): () => void {
  return registerEngineAccess({
    has: async (id) => {
      try {
        await cri.client.containerStatus(id);
        return true;
      } catch {
        return false;
      }
    },
    servedVersion: async (id) => {
      const ip = await cri.ipOf(id);
      if (!ip) return null;
      try {
        const res = await engineGet(8080, "/version", ip);
        return res.status === 200 ? res.body : null;
      } catch {
        return null;
      }
    },
    shell: async (id, script) => {
      const r = await cri.exec(id, ["/bin/sh", "-c", script]);
      if (r.exitCode !== 0) throw new Error(`exec in ${id} exited ${r.exitCode}: ${r.stderr}`);
      return r.stdout;
    },
    kill: async (id) => {
      process.kill(await cri.pidOf(id), "SIGKILL");
    },
  });
}

/** The registered access that has this container, or null (then it is Docker's, or gone). */
async function criOwner(containerId: string): Promise<EngineAccess | null> {
  for (const a of accesses) if (await a.has(containerId)) return a;
  return null;
}

/** The 127.0.0.1 port the container's 8080 is published on, or null when it is gone or not running. */
export async function enginePort(containerId: string): Promise<number | null> {
  try {
    const info = await testDocker().getContainer(containerId).inspect();
    if (!info.State.Running) return null;
    const binding = info.NetworkSettings.Ports?.["8080/tcp"]?.[0];
    return binding ? Number(binding.HostPort) : null;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/** GET one path of the engine (on 127.0.0.1 unless a host is given); rejects when nothing answers. */
export function engineGet(port: number, p: string, host = "127.0.0.1"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: p, agent: false, timeout: 2000 }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
    });
    req.on("timeout", () => req.destroy(new Error("engine did not answer in 2 s")));
    req.on("error", reject);
  });
}

/** The version the engine in `containerId` serves, or null when it serves nothing. */
export async function servedVersion(containerId: string): Promise<string | null> {
  const other = await criOwner(containerId);
  if (other) return other.servedVersion(containerId);
  const port = await enginePort(containerId);
  if (port === null) return null;
  try {
    const res = await engineGet(port, "/version");
    return res.status === 200 ? res.body : null;
  } catch {
    return null;
  }
}

/** Runs a shell command inside the engine (busybox sh); its environment has GAME_STATE_PATH. */
export async function engineShell(containerId: string, script: string): Promise<string> {
  const other = await criOwner(containerId);
  if (other) return other.shell(containerId, script);
  const { stdout } = await run("docker", ["exec", containerId, "/bin/sh", "-c", script], { timeout: 15_000 });
  return stdout;
}

/** Kills the engine's process from outside the runtime (SIGKILL, as `docker kill` or a kernel OOM would). */
export async function killEngine(containerId: string): Promise<void> {
  const other = await criOwner(containerId);
  if (other) await other.kill(containerId);
  else await testDocker().getContainer(containerId).kill();
}

/** True once no runtime has the container any more (removed, not just stopped). */
export async function engineGone(containerId: string): Promise<boolean> {
  if (await criOwner(containerId)) return false;
  // Engines on a real cluster are never Docker containers here: gone once no Pod names them.
  if (accesses.size > 0 && process.env.RTMANAGER_E2E_CLUSTER) return true;
  try {
    await testDocker().getContainer(containerId).inspect();
    return false;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode === 404;
  }
}
