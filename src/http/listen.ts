/**
 * Listening on RTMANAGER_INTERNAL_HTTP_ADDR: a TCP host:port, or a Unix
 * socket (`unix:/path`) beside a client on the same machine or in the same
 * Pod (a token-adding proxy, an exec'd tool). The socket is created
 * owner-and-group only (under a narrowed umask, then chmodded to be sure):
 * on Linux its file mode is what guards it.
 */
import fs from "node:fs/promises";
import net from "node:net";
import type { Server } from "node:http";
import type { Config } from "../config.js";
import type { HttpDeps } from "./server.js";

type ListenConfig = Pick<Config, "httpHost" | "httpPort" | "httpSocketPath">;

const SOCKET_MODE = 0o660;

/** The settings of createHttpServer that come straight from the configuration. */
export function httpDepsFromConfig(config: Config): Pick<HttpDeps, "token" | "tokenFile" | "metricsTokenFile" | "minTokenLength" | "guards" | "limits" | "imageAllowlist"> {
  return {
    token: config.internalToken,
    tokenFile: config.internalTokenFile,
    metricsTokenFile: config.metricsTokenFile,
    minTokenLength: config.minTokenLength,
    // No browser reaches a Unix socket, and its clients send whatever Host they like.
    guards: { allowedHosts: config.allowedHosts, allowedOrigins: config.allowedOrigins, checkHost: config.httpSocketPath === undefined },
    limits: {
      maxEventStreams: config.maxEventStreams,
      maxLogFollows: config.maxLogFollows,
      maxLogFollowsPerGame: config.maxLogFollowsPerGame,
      maxConcurrentMutations: config.maxConcurrentMutations,
      requestTimeoutMs: config.httpRequestTimeoutMs,
      idleTimeoutMs: config.httpIdleTimeoutMs,
      // The mutation answers within the operation timeout; the margin covers reading and writing it.
      mutationTimeoutMs: config.opTimeoutMs + 10_000,
    },
    imageAllowlist: config.imageAllowlist,
  };
}

function listenOnce(server: Server, target: { port: number; host?: string } | { path: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    const done = () => {
      server.off("error", onError);
      resolve();
    };
    if ("path" in target) {
      // bind(2) creates the socket file inside listen(), synchronously, with
      // mode 0777 & ~umask: under umask 000 it would be connectable by every
      // user until the chmod below. The umask is process-wide, so it is
      // narrowed only around the call that creates the file.
      const previous = process.umask(0o777 & ~SOCKET_MODE);
      try {
        server.listen(target.path, done);
      } finally {
        process.umask(previous);
      }
    } else server.listen(target.port, target.host, done);
  });
}

/** True when something answers on the socket: another rtmanager owns it. */
function socketInUse(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

/** Listens; returns the TCP port (0 on a Unix socket). */
export async function listenOn(server: Server, config: ListenConfig): Promise<number> {
  const socketPath = config.httpSocketPath;
  if (socketPath === undefined) {
    await listenOnce(server, { port: config.httpPort, host: config.httpHost });
    const addr = server.address();
    return typeof addr === "object" && addr ? addr.port : config.httpPort;
  }
  try {
    await listenOnce(server, { path: socketPath });
  } catch (err) {
    // A socket file left by a process that died: remove it, unless someone still answers there.
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || (await socketInUse(socketPath))) throw err;
    const st = await fs.lstat(socketPath);
    if (!st.isSocket()) throw err;
    await fs.unlink(socketPath);
    await listenOnce(server, { path: socketPath });
  }
  await fs.chmod(socketPath, SOCKET_MODE);
  return 0;
}
