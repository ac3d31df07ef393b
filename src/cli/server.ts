/**
 * Which rtmanager rtmctl talks to, first found wins: --server, RTMCTL_SERVER,
 * then the listen address of the rtmanager whose environment rtmctl shares
 * (RTMANAGER_INTERNAL_HTTP_ADDR), then the default. The third is what makes
 * `kubectl exec deploy/rtmanager -- rtmctl list` work with no flags: an
 * exec'd process gets the container's environment, in which the kubelet has
 * already expanded `$(POD_IP):8096` to the Pod's address (the Docker
 * overlay listens only there), and RTMANAGER_INTERNAL_TOKEN_FILE names the
 * mounted token (token.ts).
 */
import { parseListenAddress } from "../httpConfig.js";
import { DEFAULT_SERVER, UsageError, type Verb } from "./args.js";

/** A wildcard listener is reached on loopback; a Unix socket is not a URL fetch can dial. */
export function serverFromListenAddress(addr: string): string | null {
  let parsed;
  try {
    parsed = parseListenAddress(addr.trim());
  } catch {
    return null;
  }
  if (parsed.socketPath !== undefined) return null;
  const host = parsed.host;
  if (host === undefined || host === "0.0.0.0") return `http://127.0.0.1:${parsed.port}`;
  if (host === "::") return `http://[::1]:${parsed.port}`;
  return host.includes(":") ? `http://[${host}]:${parsed.port}` : `http://${host}:${parsed.port}`;
}

export function resolveServer(flags: Record<string, unknown>, env: NodeJS.ProcessEnv, verb: Verb | null): string {
  if (typeof flags.server === "string") return flags.server;
  if (env.RTMCTL_SERVER) return env.RTMCTL_SERVER;
  const listen = env.RTMANAGER_INTERNAL_HTTP_ADDR;
  if (listen) {
    const derived = serverFromListenAddress(listen);
    if (derived) return derived;
    if (listen.startsWith("unix:")) {
      throw new UsageError(`RTMANAGER_INTERNAL_HTTP_ADDR is the Unix socket ${listen.slice(5)}, which rtmctl cannot dial: give --server or RTMCTL_SERVER`, verb);
    }
  }
  return DEFAULT_SERVER;
}
