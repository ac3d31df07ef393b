/** Runs rtmanager as a real child process (src/main.ts), so tests can kill -9 it. */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ControllerProcess {
  child: ChildProcess;
  pid: number;
  logFile: string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export function spawnController(env: Record<string, string>, logFile: string): ControllerProcess {
  // BENCH_NODE_ARGS: node flags for the controller, as bench/lib.ts's spawnBuilt takes them (e.g. a CPU profile).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", path.join(repoRoot, "src/main.ts")], {
    cwd: repoRoot,
    env: { ...process.env, RTMANAGER_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = createWriteStream(logFile, { flags: "a" });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    pid: child.pid!,
    logFile,
    async kill9() {
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
