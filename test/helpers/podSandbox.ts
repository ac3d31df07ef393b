/**
 * A Pod's sandbox for test/integration/install-pods.test.ts, run as
 * `unshare --user --map-root-user --net --mount -- node --import tsx podSandbox.ts <config.json>`:
 * its own network namespace (loopback only: the Pod's 127.0.0.1, and
 * 127.0.0.2 standing in for its Pod IP) and mount namespace (the Secret volumes as files at
 * their mount paths, the image's directories), then the container's process
 * with exactly the environment the test resolved, as a container runtime
 * starts it. What crosses the sandbox's edge goes through unix sockets:
 *
 * - inbound: 127.0.0.1:<port> inside -> a socket the test serves (the API
 *   server, PostgreSQL), as a Pod reaches cluster services;
 * - outbound: a socket the test dials -> 127.0.0.1:<port> inside, which is
 *   what the kubelet's port-forward does (containerd's PortForward enters the
 *   Pod's netns and dials localhost:<port>), or -> <Pod IP>:<port>, where
 *   the kubelet's probes and Service traffic arrive.
 *
 * Prints "sandbox-ready" once the relays listen; exits with the process.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

export interface SandboxConfig {
  /** tmpfs mounts, made before the files are written (they hide the host's directories inside the sandbox only). */
  tmpfs: string[];
  /** Directories to create (the image's `install -d`), and files (Secret volumes) with their modes. */
  dirs: { path: string; mode: number }[];
  files: { path: string; contentBase64: string; mode: number }[];
  inbound: { port: number; socket: string }[];
  /** host: the Pod address dialled inside (127.0.0.1 for a port-forward, the Pod IP for probes and Service traffic). */
  outbound: { socket: string; host: string; port: number }[];
  command: string[];
  env: Record<string, string>;
  cwd: string;
  logFile: string;
}

function pipeBoth(a: net.Socket, b: net.Socket): void {
  a.pipe(b).pipe(a);
  a.on("error", () => b.destroy());
  b.on("error", () => a.destroy());
  a.on("close", () => b.destroy());
  b.on("close", () => a.destroy());
}

function must(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

async function main(): Promise<void> {
  const config = JSON.parse(fs.readFileSync(process.argv[2]!, "utf8")) as SandboxConfig;
  must("ip", ["link", "set", "lo", "up"]);
  for (const dir of config.tmpfs) must("mount", ["-t", "tmpfs", "-o", "mode=0755", "tmpfs", dir]);
  for (const d of config.dirs) {
    fs.mkdirSync(d.path, { recursive: true });
    fs.chmodSync(d.path, d.mode);
  }
  for (const f of config.files) {
    fs.mkdirSync(path.dirname(f.path), { recursive: true });
    fs.writeFileSync(f.path, Buffer.from(f.contentBase64, "base64"), { mode: f.mode });
    fs.chmodSync(f.path, f.mode);
  }
  const listening: Promise<void>[] = [];
  for (const r of config.inbound) {
    const server = net.createServer((c) => pipeBoth(c, net.connect(r.socket)));
    listening.push(new Promise((resolve) => server.listen(r.port, "127.0.0.1", resolve)));
  }
  for (const r of config.outbound) {
    const server = net.createServer((c) => pipeBoth(c, net.connect(r.port, r.host)));
    listening.push(new Promise((resolve) => server.listen(r.socket, resolve)));
  }
  await Promise.all(listening);
  const log = fs.openSync(config.logFile, "a");
  const child = spawn(config.command[0]!, config.command.slice(1), { env: config.env, cwd: config.cwd, stdio: ["ignore", log, log] });
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : 15) : 1)));
  process.stdout.write("sandbox-ready\n");
}

main().catch((err: unknown) => {
  process.stderr.write(`sandbox: ${(err as Error).message}\n`);
  process.exit(97);
});
