/**
 * GET /api/v1/ext/runtimes/{game_id}/logs: an engine's output, streamed from
 * the runtime to the client chunk by chunk, never held whole in memory.
 * Bounded by lines (`tail`), bytes (`limitBytes`, and a server ceiling for
 * reads that do not follow) and, with `follow=true`, by a duration of its own:
 * a followed stream outlives any request timeout by design.
 */
import { once } from "node:events";
import type { ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import { RtmError } from "../model/errors.js";
import type { LogStreamOptions } from "../model/ports.js";
import { DEFAULT_HTTP_LIMITS } from "./limits.js";

export const DEFAULT_LOG_TAIL = 200;
export const MAX_LOG_TAIL = 10_000;
/** Largest limitBytes a client may ask for; the ceiling of non-follow reads is usually far lower. */
const MAX_LIMIT_BYTES = 1024 ** 3;

export interface LogRouteDeps {
  /** The engine's output; `not_found` when the game has no engine. */
  logStream(gameId: string, options: LogStreamOptions): Promise<AsyncIterable<Buffer>>;
  /** Byte ceiling of a read without follow (RTMANAGER_LOGS_MAX_BYTES). */
  maxBytes: number;
  /** How long one followed stream may stay open (RTMANAGER_LOGS_FOLLOW_MAX). */
  followMaxMs: number;
}

export interface LogQuery {
  tail: number;
  follow: boolean;
  /** Bytes to send at most; Infinity for a followed stream without limitBytes. */
  limitBytes: number;
}

function intParam(query: URLSearchParams, name: string, max: number): number | null {
  const raw = query.get(name);
  if (raw === null || raw === "") return null;
  if (!/^[0-9]{1,10}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new RtmError("invalid_request", `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw.slice(0, 32))}`);
  }
  return Number(raw);
}

/** Pure: the query as bounds. The ceiling caps a one-off read; a followed stream is bounded by time instead. */
export function parseLogQuery(query: URLSearchParams, maxBytes: number): LogQuery {
  const followRaw = query.get("follow");
  if (followRaw !== null && !["true", "false", "1", "0", ""].includes(followRaw)) {
    throw new RtmError("invalid_request", `follow must be true or false, got ${JSON.stringify(followRaw.slice(0, 32))}`);
  }
  const follow = followRaw === "true" || followRaw === "1";
  const tail = intParam(query, "tail", MAX_LOG_TAIL) ?? DEFAULT_LOG_TAIL;
  const asked = intParam(query, "limitBytes", MAX_LIMIT_BYTES);
  const limitBytes = follow ? (asked ?? Infinity) : Math.min(asked ?? maxBytes, maxBytes);
  return { tail, follow, limitBytes };
}

/** Followed streams at once; each holds a runtime stream (a Docker attach, a kubelet log) for up to followMaxMs. */
export interface FollowCaps {
  max: number;
  perGame: number;
}

const RETRY_AFTER_SECONDS = 5;

export class LogStreams {
  private readonly open = new Set<AbortController>();
  private follows = 0;
  private readonly followsByGame = new Map<string, number>();

  constructor(
    private readonly deps: LogRouteDeps,
    private readonly caps: FollowCaps = { max: DEFAULT_HTTP_LIMITS.maxLogFollows, perGame: DEFAULT_HTTP_LIMITS.maxLogFollowsPerGame },
  ) {}

  /** Followed streams open. */
  get size(): number {
    return this.follows;
  }

  /** Rejects (before any byte is sent) with invalid_request, not_found or the runtime's error. */
  async serve(res: ServerResponse, gameId: string, query: URLSearchParams, logger: Logger): Promise<void> {
    const bounds = parseLogQuery(query, this.deps.maxBytes);
    // Taken before the first await, so a burst cannot overshoot; like the event streams' cap.
    const release = bounds.follow ? this.takeFollow(gameId) : () => undefined;
    const abort = new AbortController();
    const onClose = () => abort.abort();
    // The client going away ends the runtime's stream too.
    res.on("close", onClose);
    const timer = bounds.follow ? setTimeout(() => abort.abort(), this.deps.followMaxMs) : undefined;
    // An engine may print nothing for minutes: the server's idle timeout must not cut a followed
    // stream; its own bound is the follow maximum (and the client closing).
    if (bounds.follow) res.socket?.setTimeout(this.deps.followMaxMs + 5_000);
    this.open.add(abort);
    try {
      const stream = await this.deps.logStream(gameId, { tail: bounds.tail, follow: bounds.follow, signal: abort.signal });
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" });
      // A followed stream may be silent for long: the client learns at once that it is connected.
      res.flushHeaders();
      await this.pump(stream, res, bounds.limitBytes, abort.signal);
    } catch (err) {
      if (!res.headersSent) throw err;
      // Mid-stream the status is sent already: the truncated body is all the client can be told.
      logger.warn({ err, gameId }, "log stream failed");
    } finally {
      clearTimeout(timer);
      release();
      res.off("close", onClose);
      this.open.delete(abort);
      abort.abort();
    }
    if (!res.writableEnded) res.end();
  }

  /** A slot for one followed stream, or 503 with Retry-After; returns its release (idempotent). */
  private takeFollow(gameId: string): () => void {
    const ofGame = this.followsByGame.get(gameId) ?? 0;
    if (this.follows >= this.caps.max || ofGame >= this.caps.perGame) {
      const which = this.follows >= this.caps.max ? `RTMANAGER_MAX_LOG_FOLLOWS=${this.caps.max}` : `RTMANAGER_MAX_LOG_FOLLOWS_PER_GAME=${this.caps.perGame} for game ${gameId}`;
      throw new RtmError("service_unavailable", `too many followed log streams (${which}); retry later`, { retryAfterSeconds: RETRY_AFTER_SECONDS });
    }
    this.follows++;
    this.followsByGame.set(gameId, ofGame + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.follows--;
      const left = (this.followsByGame.get(gameId) ?? 1) - 1;
      if (left > 0) this.followsByGame.set(gameId, left);
      else this.followsByGame.delete(gameId);
    };
  }

  /** Ends every followed stream: the server is closing. */
  closeAll(): void {
    for (const abort of this.open) abort.abort();
  }

  private async pump(stream: AsyncIterable<Buffer>, res: ServerResponse, limitBytes: number, signal: AbortSignal): Promise<void> {
    let sent = 0;
    for await (const chunk of stream) {
      const part = chunk.length > limitBytes - sent ? chunk.subarray(0, limitBytes - sent) : chunk;
      sent += part.length;
      // Backpressure: a slow client slows the read from the runtime rather than filling memory.
      if (!res.write(part)) await once(res, "drain", { signal }).catch(() => undefined);
      if (sent >= limitBytes || signal.aborted) break;
    }
  }
}
