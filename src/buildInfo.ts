/**
 * What is running: rtmanager's version (package.json), the commit it was
 * built from and the Node version. Shown by GET /api/v1/ext/version,
 * `rtmctl version`, the start-up log line and the rtmanager_build_info gauge.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Gauge, type Registry } from "prom-client";

export interface BuildInfo {
  /** package.json's version. */
  version: string;
  /** RTMANAGER_COMMIT (set at image build), else `git rev-parse HEAD` of the checkout, else "unknown". */
  commit: string;
  /** process.version, e.g. v20.19.0. */
  node: string;
}

export const UNKNOWN = "unknown";

/**
 * The package root is found by walking up, because this module runs from
 * src/ under tsx and from dist/src/ when built.
 */
function packageRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, "package.json");
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, "utf8")) as { name?: unknown }).name === "rtmanager") return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function readVersion(root: string | null): string {
  if (!root) return UNKNOWN;
  const version = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version?: unknown }).version;
  return typeof version === "string" && version !== "" ? version : UNKNOWN;
}

const COMMIT_PATTERN = /^[0-9a-f]{7,64}$/;

function readCommit(env: NodeJS.ProcessEnv, root: string | null): string {
  const fromEnv = env.RTMANAGER_COMMIT?.trim();
  if (fromEnv) return fromEnv;
  if (!root) return UNKNOWN;
  try {
    // The image has no git and no .git; a checkout without git installed lands here too.
    const out = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 2000 }).trim();
    return COMMIT_PATTERN.test(out) ? out : UNKNOWN;
  } catch {
    return UNKNOWN;
  }
}

/** Reads package.json and the commit; the env is a parameter so tests need not touch process.env. */
export function readBuildInfo(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  const root = packageRoot();
  return { version: readVersion(root), commit: readCommit(env, root), node: process.version };
}

let cached: BuildInfo | null = null;

/** Read once per process: the answer cannot change while it runs. */
export function buildInfo(): BuildInfo {
  return (cached ??= readBuildInfo());
}

/** `rtmanager_build_info{version,commit,node} 1`, the Prometheus convention for build metadata. */
export function registerBuildInfo(registry: Registry, info: BuildInfo = buildInfo()): void {
  const gauge = new Gauge({
    name: "rtmanager_build_info",
    help: "Always 1; the labels say which rtmanager build and Node version this process runs.",
    labelNames: ["version", "commit", "node"] as const,
    registers: [registry],
  });
  gauge.set({ version: info.version, commit: info.commit, node: info.node }, 1);
}
