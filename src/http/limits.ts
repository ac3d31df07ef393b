/**
 * Bounds of the HTTP surface: how long a client may take to send a request,
 * how long a socket may sit silent, and how many mutations may wait for the
 * loop at once. Event streams (events.ts) and a mutation's wait have their
 * own bounds: a mutation's socket may stay quiet for the whole
 * RTMANAGER_OP_TIMEOUT, a stream is kept busy by keep-alive frames.
 */
import type { IncomingMessage, Server, ServerOptions } from "node:http";
import { RtmError } from "../model/errors.js";

/** What the HTTP server holds open, counted against these limits and read by the metrics at scrape time. */
export interface HttpStreamCounts {
  /** Event streams (SSE) open. */
  eventStreams: number;
  /** Streams joined to the shared event feed; more than eventStreams would be a leak. */
  eventSubscribers: number;
  /** Engine log follows open. */
  logFollows: number;
}

export interface HttpLimits {
  maxEventStreams: number;
  /** Followed log streams open at once, in the process and per game (logs.ts). */
  maxLogFollows: number;
  maxLogFollowsPerGame: number;
  maxConcurrentMutations: number;
  /** Time to receive a whole request, headers and body (server.requestTimeout). */
  requestTimeoutMs: number;
  /** A socket silent this long mid-request is closed (server.timeout). */
  idleTimeoutMs: number;
  /** A mutation's socket may be silent this long: the operation timeout plus a margin. */
  mutationTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxEventStreams: 256,
  maxLogFollows: 64,
  maxLogFollowsPerGame: 4,
  // A fleet patch is one mutation per game, all at once, from a client that does not retry a 503 (Game
  // Master's): 2,048 lets a fleet that size through. Measured: 1,000 in flight cost the controller ~35 MB.
  maxConcurrentMutations: 2048,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  mutationTimeoutMs: 100_000,
};

/**
 * Longer than the usual 60 s idle timeout of load balancers and well within
 * Go's 90 s, so a pooled connection is rarely closed under a new request.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const RETRY_AFTER_SECONDS = 1;

/** Options for http.createServer: node enforces these per connection. */
export function serverTimeoutOptions(partial: Partial<HttpLimits> | undefined): Pick<ServerOptions, "requestTimeout" | "headersTimeout" | "connectionsCheckingInterval"> {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...partial };
  return {
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: Math.min(limits.requestTimeoutMs, 20_000),
    // How often node looks for requests past those timeouts; the default 30 s would double a short bound.
    connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(limits.requestTimeoutMs / 4))),
  };
}

export interface SocketTimeouts {
  /** Gives a mutation's socket the wait it needs. */
  mutationSocket(req: IncomingMessage): void;
}

export function applySocketTimeouts(server: Server, partial: Partial<HttpLimits> | undefined): SocketTimeouts {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...partial };
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Without a callback node destroys the socket on timeout.
  server.setTimeout(limits.idleTimeoutMs);
  return { mutationSocket: (req) => req.socket.setTimeout(Math.max(limits.mutationTimeoutMs, limits.idleTimeoutMs)) };
}

/** Counts mutations in flight; past the cap they are refused, not queued. */
export class MutationSlots {
  private inFlight = 0;

  constructor(private readonly max = DEFAULT_HTTP_LIMITS.maxConcurrentMutations) {}

  take(): boolean {
    if (this.inFlight >= this.max) return false;
    this.inFlight++;
    return true;
  }

  release(): void {
    this.inFlight--;
  }

  refusal(): RtmError {
    return new RtmError("service_unavailable", `too many operations in flight (RTMANAGER_MAX_CONCURRENT_MUTATIONS=${this.max}); retry shortly`, {
      retryAfterSeconds: RETRY_AFTER_SECONDS,
    });
  }
}
