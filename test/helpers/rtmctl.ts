/**
 * How the tests run rtmctl as a subprocess: `node <bundle>` of
 * src/cli/rtmctl.ts, bundled once per test worker with esbuild (tsx's own),
 * packages left as imports. Through tsx each call spent 1-4 s compiling the
 * same sources again (the two rtmctl suites were the slowest files in CI);
 * the bundle starts in a fraction of that and runs the same code. One test
 * (rtmctl.test.ts) still runs the documented `tsx src/cli/rtmctl.ts` entry.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const RTMCTL_SOURCE = path.join(repoRoot, "src/cli/rtmctl.ts");
export const TSX = path.join(repoRoot, "node_modules/tsx/dist/cli.mjs");
// Inside node_modules, so the bundle's package imports resolve to the project's own.
const OUT_DIR = path.join(repoRoot, "node_modules/.cache/rtmanager-test");

let bundle: string | null = null;

async function build(): Promise<string> {
  await fs.mkdir(OUT_DIR, { recursive: true });
  // One file per worker, so parallel test files never read a half-written bundle.
  const out = path.join(OUT_DIR, `rtmctl-${process.pid}.mjs`);
  await run(
    path.join(repoRoot, "node_modules/esbuild/bin/esbuild"),
    [RTMCTL_SOURCE, "--bundle", "--platform=node", "--format=esm", "--packages=external", `--outfile=${out}`, "--log-level=warning"],
    { cwd: repoRoot, timeout: 60_000 },
  );
  return out;
}

/** Bundles rtmctl for this worker (once); call it in beforeAll before rtmctl() or spawnRtmctl(). */
export async function prepareRtmctl(): Promise<void> {
  bundle ??= await build();
}

function cliArgs(args: string[]): string[] {
  if (!bundle) throw new Error("rtmctl is not bundled yet: await prepareRtmctl() in beforeAll");
  return [bundle, ...args];
}

export interface RtmctlResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The environment rtmctl sees: the test server, no token unless `env` gives one. */
export function rtmctlEnv(server: string, env: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, RTMCTL_SERVER: server, RTMANAGER_INTERNAL_TOKEN: "", ...env };
}

/** `rtmctl <args>` against `server`, to its exit; the code is what a script would branch on. */
export function rtmctl(server: string, args: string[], env: Record<string, string> = {}): Promise<RtmctlResult> {
  const argv = cliArgs(args);
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, argv, { cwd: repoRoot, env: rtmctlEnv(server, env), timeout: 90_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** `rtmctl <args>` left running (follow, watch), with pipes. */
export function spawnRtmctl(server: string, args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, cliArgs(args), { cwd: repoRoot, env: rtmctlEnv(server, env) });
}
