/**
 * Reaching a test engine the way both runtimes allow on this machine: its
 * 8080 published on 127.0.0.1 (Docker mode with RTMANAGER_ENGINE_PUBLISH_HOST,
 * and every container of the test kubelet), and `docker exec` into the
 * container the record names (the kubelet's containers are Docker containers
 * too, so the record's id is a Docker id in both modes).
 */
import { execFile } from "node:child_process";
import http from "node:http";
import { promisify } from "node:util";
import { testDocker } from "./docker.js";

const run = promisify(execFile);

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

/** GET one path of the engine on 127.0.0.1; rejects when nothing answers. */
export function engineGet(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path: p, agent: false, timeout: 2000 }, (res) => {
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
  const { stdout } = await run("docker", ["exec", containerId, "/bin/sh", "-c", script], { timeout: 15_000 });
  return stdout;
}
