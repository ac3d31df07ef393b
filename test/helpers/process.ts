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
  // BENCH_CPU_PROF_DIR: a V8 CPU profile of the controller, written there when it exits cleanly (docs/BENCHMARKS.md).
  const profile = process.env.BENCH_CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, "--import", "tsx", path.join(repoRoot, "src/main.ts")], {
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
