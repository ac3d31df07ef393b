/**
 * The settings of the HTTP surface's safety and bounds, read apart from
 * src/config.ts so that file stays a table of rows. Every refusal names the
 * variables involved, so an operator can fix the environment from the
 * message alone.
 */
import os from "node:os";
import type { SettingValues } from "./configDocs.js";
import { normaliseAllowlist, type ResourceCeilings } from "./model/admission.js";
import { MIN_TOKEN_LENGTH, tokenProblem } from "./http/tokens.js";

export class HttpConfigError extends Error {
  override readonly name = "HttpConfigError";
}

export interface ListenAddress {
  /** undefined: every interface. */
  host: string | undefined;
  port: number;
  /** Set for `unix:/path/to.sock`; host and port are then unused. */
  socketPath: string | undefined;
}

export interface HttpSettings {
  internalTokenFile: string | undefined;
  /** RTMANAGER_METRICS_TOKEN_FILE: tokens that may only scrape /metrics. */
  metricsTokenFile: string | undefined;
  /** MIN_TOKEN_LENGTH, or 1 with RTMANAGER_ALLOW_SHORT_TOKENS=true. */
  minTokenLength: number;
  allowUnauthenticated: boolean;
  imageAllowlist: string[];
  allowedOrigins: string[];
  allowedHosts: string[];
  maxEventStreams: number;
  maxLogFollows: number;
  maxLogFollowsPerGame: number;
  maxConcurrentMutations: number;
  resourceCeilings: ResourceCeilings;
  httpRequestTimeoutMs: number;
  httpIdleTimeoutMs: number;
}

export function parseListenAddress(addr: string): ListenAddress {
  if (addr.startsWith("unix:")) {
    const socketPath = addr.slice("unix:".length);
    if (!socketPath.startsWith("/")) throw new HttpConfigError(`RTMANAGER_INTERNAL_HTTP_ADDR: ${JSON.stringify(addr)}: a Unix socket needs an absolute path (unix:/run/rtmanager/http.sock)`);
    return { host: undefined, port: 0, socketPath };
  }
  const m = /^(.*):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535) throw new HttpConfigError(`RTMANAGER_INTERNAL_HTTP_ADDR: ${JSON.stringify(addr)} is not host:port, :port or unix:/path`);
  const host = m[1] === "" ? undefined : m[1]!.replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(m[2]), socketPath: undefined };
}

/** Only these addresses are unreachable from other machines (and from other network namespaces). */
export function isLoopbackListen(addr: ListenAddress): boolean {
  if (addr.socketPath !== undefined) return true;
  const host = addr.host?.toLowerCase();
  if (host === undefined) return false;
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const list = (text: string): string[] =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

function origin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new HttpConfigError(`RTMANAGER_ALLOWED_ORIGINS: ${JSON.stringify(text)} is not an origin such as https://ops.example.com`);
  }
  if (url.origin === "null" || url.pathname !== "/" || url.search || url.hash) {
    throw new HttpConfigError(`RTMANAGER_ALLOWED_ORIGINS: ${JSON.stringify(text)} is not an origin (scheme://host[:port], nothing after)`);
  }
  return url.origin;
}

/** The settings table's parsed values this module uses (src/configDocs.ts parses and bounds them). */
export type HttpSettingValues = Pick<
  SettingValues,
  | "RTMANAGER_ALLOW_SHORT_TOKENS"
  | "RTMANAGER_ALLOW_UNAUTHENTICATED"
  | "RTMANAGER_MAX_MEMORY"
  | "RTMANAGER_MAX_CPUS"
  | "RTMANAGER_MAX_PIDS_LIMIT"
  | "RTMANAGER_MAX_EVENT_STREAMS"
  | "RTMANAGER_MAX_LOG_FOLLOWS"
  | "RTMANAGER_MAX_LOG_FOLLOWS_PER_GAME"
  | "RTMANAGER_MAX_CONCURRENT_MUTATIONS"
  | "RTMANAGER_HTTP_REQUEST_TIMEOUT"
  | "RTMANAGER_HTTP_IDLE_TIMEOUT"
>;

/** `get` returns the variable or its documented default; `v` holds the table's parsed values. */
export function loadHttpSettings(env: NodeJS.ProcessEnv, get: (name: string) => string, listen: ListenAddress, v: HttpSettingValues): HttpSettings {
  const tokenFile = env.RTMANAGER_INTERNAL_TOKEN_FILE || undefined;
  const token = env.RTMANAGER_INTERNAL_TOKEN || undefined;
  if (token && tokenFile) {
    throw new HttpConfigError("set RTMANAGER_INTERNAL_TOKEN or RTMANAGER_INTERNAL_TOKEN_FILE, not both (the file may hold a second token for rotation)");
  }
  if (tokenFile && !tokenFile.startsWith("/")) throw new HttpConfigError(`RTMANAGER_INTERNAL_TOKEN_FILE: ${JSON.stringify(tokenFile)} must be an absolute path`);
  const metricsTokenFile = env.RTMANAGER_METRICS_TOKEN_FILE || undefined;
  if (metricsTokenFile && !metricsTokenFile.startsWith("/")) {
    throw new HttpConfigError(`RTMANAGER_METRICS_TOKEN_FILE: ${JSON.stringify(metricsTokenFile)} must be an absolute path`);
  }
  const minTokenLength = v.RTMANAGER_ALLOW_SHORT_TOKENS ? 1 : MIN_TOKEN_LENGTH;
  const tokenTrouble = token ? tokenProblem(token, minTokenLength) : null;
  if (tokenTrouble) throw new HttpConfigError(`RTMANAGER_INTERNAL_TOKEN ${tokenTrouble}`);
  const allowUnauthenticated = v.RTMANAGER_ALLOW_UNAUTHENTICATED;
  if (!token && !tokenFile && !allowUnauthenticated && !isLoopbackListen(listen)) {
    throw new HttpConfigError(
      `RTMANAGER_INTERNAL_HTTP_ADDR=${listen.host ?? ""}:${listen.port} listens beyond this machine without a token: ` +
        "set RTMANAGER_INTERNAL_TOKEN or RTMANAGER_INTERNAL_TOKEN_FILE, listen on 127.0.0.1 or a unix: socket, " +
        "or set RTMANAGER_ALLOW_UNAUTHENTICATED=true if the network alone is trusted",
    );
  }
  let imageAllowlist: string[];
  try {
    imageAllowlist = normaliseAllowlist(list(get("RTMANAGER_IMAGE_ALLOWLIST")));
  } catch (err) {
    throw new HttpConfigError(`RTMANAGER_IMAGE_ALLOWLIST: ${(err as Error).message}`);
  }
  return {
    internalTokenFile: tokenFile,
    metricsTokenFile,
    minTokenLength,
    allowUnauthenticated,
    imageAllowlist,
    allowedOrigins: list(get("RTMANAGER_ALLOWED_ORIGINS")).map(origin),
    // localhost and this machine's own name are always allowed; the setting adds names (a Service's).
    allowedHosts: [...new Set(["localhost", os.hostname(), ...list(get("RTMANAGER_ALLOWED_HOSTS"))].map((h) => h.toLowerCase().replace(/\.$/, "")))],
    maxEventStreams: v.RTMANAGER_MAX_EVENT_STREAMS,
    maxLogFollows: v.RTMANAGER_MAX_LOG_FOLLOWS,
    maxLogFollowsPerGame: v.RTMANAGER_MAX_LOG_FOLLOWS_PER_GAME,
    maxConcurrentMutations: v.RTMANAGER_MAX_CONCURRENT_MUTATIONS,
    resourceCeilings: { cpus: v.RTMANAGER_MAX_CPUS, memoryBytes: v.RTMANAGER_MAX_MEMORY, pidsLimit: v.RTMANAGER_MAX_PIDS_LIMIT },
    httpRequestTimeoutMs: v.RTMANAGER_HTTP_REQUEST_TIMEOUT,
    httpIdleTimeoutMs: v.RTMANAGER_HTTP_IDLE_TIMEOUT,
  };
}

/** The warning to log at start when the API listens beyond this machine without a token (allowed explicitly), else null. */
export function unauthenticatedExposure(c: {
  httpHost: string | undefined;
  httpPort: number;
  httpSocketPath: string | undefined;
  internalToken: string | undefined;
  internalTokenFile: string | undefined;
}): string | null {
  if (c.internalToken || c.internalTokenFile) return null;
  if (isLoopbackListen({ host: c.httpHost, port: c.httpPort, socketPath: c.httpSocketPath })) return null;
  return `the API listens on ${c.httpHost ?? "every interface"}:${c.httpPort} without a token (RTMANAGER_ALLOW_UNAUTHENTICATED=true): anyone who can reach it can start, stop and remove engines`;
}
