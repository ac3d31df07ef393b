/**
 * GET /api/v1/ext/events: Server-Sent Events over the store's event log.
 *
 * Order on every connection: diagnostics about the cursor (if any), one
 * `snapshot` of the current records, the backlog after the cursor, then live
 * events. The cursor is the event `seq`; each event frame carries it as
 * `id:`, so an EventSource (or RtmClient.events) resumes with Last-Event-ID
 * and gets every later event exactly once: the store makes seq values visible
 * in order, and the stream only ever reads `seq > cursor`.
 *
 * Live events come from one EventFeed per process; a stream reads only its
 * own backlog. Open streams are capped (503 with Retry-After past the cap),
 * and a client too slow to take what the feed hands it is disconnected
 * rather than buffered without bound: it resumes with Last-Event-ID.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import { RtmError, toRtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import type { StateStore } from "../model/ports.js";
import type { RuntimeEvent } from "../model/record.js";
import { EventFeed, type FeedSubscriber } from "./eventFeed.js";
import type { EventDiagnostic, EventSnapshot } from "./wire.js";

export interface EventStreamOptions {
  state: StateStore;
  subscribeEvents?(listener: () => void): () => void;
  /** Backstop poll for writers that do not wake us (another replica, plain SQL). */
  pollMs?: number;
  keepAliveMs?: number;
  pageSize?: number;
  /** Open streams at once; past it a new one gets 503 with Retry-After. */
  maxStreams?: number;
  logger: Logger;
}

const CURSOR_PATTERN = /^[0-9]{1,15}$/;
/** Events queued for one slow client before it is disconnected. */
const MAX_QUEUED_FRAMES = 10_000;
const RETRY_AFTER_SECONDS = 5;

interface Cursor {
  cursor: number;
  diagnostics: EventDiagnostic[];
}

export class EventStreams {
  private readonly open = new Set<ServerResponse>();
  /** Slots taken, counted before the first await so a burst cannot overshoot the cap. */
  private taken = 0;
  private readonly keepAliveMs: number;
  private readonly pageSize: number;
  private readonly maxStreams: number;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  readonly feed: EventFeed;

  constructor(private readonly options: EventStreamOptions) {
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.pageSize = options.pageSize ?? 500;
    this.maxStreams = options.maxStreams ?? 256;
    this.feed = new EventFeed({
      state: options.state,
      subscribeEvents: options.subscribeEvents,
      pollMs: options.pollMs ?? 1000,
      pageSize: this.pageSize,
      logger: options.logger,
    });
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every open stream; a client's EventSource reconnects elsewhere with its Last-Event-ID. */
  closeAll(): void {
    for (const res of this.open) res.end();
    this.open.clear();
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  /** Validation failures throw before any byte is written, so they still get the JSON envelope. */
  async serve(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, logger: Logger): Promise<void> {
    if (this.taken >= this.maxStreams) {
      throw new RtmError("service_unavailable", `too many open event streams (RTMANAGER_MAX_EVENT_STREAMS=${this.maxStreams}); retry later`, {
        retryAfterSeconds: RETRY_AFTER_SECONDS,
      });
    }
    this.taken++;
    // Registered before the first await: a client that leaves while the cursor
    // is read must not come back later as a stream nobody reads (issue 21).
    const conn = new Connection();
    conn.onClose(() => this.taken--);
    res.on("close", conn.close);
    req.on("close", conn.close);
    try {
      const gameId = parseGameId(query);
      const start = await this.startCursor(req, query);
      if (conn.closed) {
        logger.debug("event stream client left before its stream started");
        return;
      }
      await this.stream(req, res, gameId, start, logger, conn);
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  private async startCursor(req: IncomingMessage, query: URLSearchParams): Promise<Cursor> {
    const headerCursor = req.headers["last-event-id"];
    const rawCursor = (typeof headerCursor === "string" && headerCursor !== "" ? headerCursor : null) ?? query.get("cursor");
    const bounds = await this.options.state.eventBounds();
    const now = bounds.latest ?? 0;
    if (rawCursor === null || rawCursor === "") return { cursor: now, diagnostics: [] };
    if (!CURSOR_PATTERN.test(rawCursor)) {
      const message = `cursor ${JSON.stringify(rawCursor.slice(0, 64))} is not an event sequence number; continuing from now`;
      return { cursor: now, diagnostics: [{ code: "invalid_cursor", message, cursor: now }] };
    }
    const asked = Number(rawCursor);
    if (bounds.oldest !== null && asked < bounds.oldest - 1) {
      const cursor = bounds.oldest - 1;
      const message = `events after ${asked} up to ${bounds.oldest - 1} were pruned; continuing from the oldest stored event`;
      return { cursor, diagnostics: [{ code: "cursor_expired", message, oldest: bounds.oldest, cursor }] };
    }
    if (bounds.latest !== null && asked > bounds.latest) {
      // Ahead of the log: the database was reset or belongs to another installation.
      const message = `cursor ${asked} is beyond the newest event ${bounds.latest}; continuing from now`;
      return { cursor: now, diagnostics: [{ code: "cursor_unknown", message, cursor: now }] };
    }
    return { cursor: asked, diagnostics: [] };
  }

  private async stream(req: IncomingMessage, res: ServerResponse, gameId: string | undefined, start: Cursor, logger: Logger, conn: Connection): Promise<void> {
    const { state } = this.options;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Reverse proxies (nginx) otherwise buffer the stream.
      "x-accel-buffering": "no",
    });
    req.socket.setNoDelay(true);
    // Its own bound: keep-alive frames every keepAliveMs keep a live socket busy; a stalled one times out.
    req.socket.setTimeout(this.keepAliveMs * 4);
    this.open.add(res);
    this.keepAlive();

    let cursor = start.cursor;
    const writer = new FrameWriter(res);
    const subscriber: FeedSubscriber = {
      deliver: (event) => {
        if (event.seq <= cursor || (gameId && event.gameId !== gameId)) return;
        cursor = event.seq;
        if (!writer.push(eventFrame(event))) {
          logger.warn({ cursor, queued: MAX_QUEUED_FRAMES }, "event stream client too slow; disconnecting it (it resumes with Last-Event-ID)");
          res.end();
        }
      },
      failed: (message) => void writer.push(diagnosticFrame({ code: "stream_failed", message, cursor })),
    };
    conn.onClose(() => {
      this.feed.leave(subscriber);
      this.open.delete(res);
      logger.debug({ cursor }, "event stream closed");
    });

    try {
      writer.push("retry: 2000\n\n");
      for (const d of start.diagnostics) writer.push(diagnosticFrame(d));
      const records = (await state.listRecords()).filter((r) => !gameId || r.gameId === gameId);
      // Dates become ISO strings in JSON.stringify, which is what EventSnapshot describes.
      const snapshot = { cursor, records } satisfies { [K in keyof EventSnapshot]: unknown };
      writer.push(`id: ${cursor}\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
      logger.debug({ cursor, gameId, diagnostics: start.diagnostics.map((d) => d.code) }, "event stream open");
      // The backlog is this stream's own to read; then it joins the shared feed.
      for (;;) {
        const feedAt = await this.feed.position();
        cursor = await this.readBacklog(cursor, gameId, writer, () => conn.closed);
        if (conn.closed || this.feed.join(subscriber, Math.max(cursor, feedAt))) break;
      }
    } catch (err) {
      const e = toRtmError(err);
      logger.warn({ err }, "event stream could not send its snapshot or backlog");
      writer.push(diagnosticFrame({ code: "stream_failed", message: `could not read the current records or backlog: ${e.message}` }));
      conn.close();
      res.end();
    }
  }

  /** Pages of events after `cursor` until a short page; returns the new cursor. */
  private async readBacklog(cursor: number, gameId: string | undefined, writer: FrameWriter, closed: () => boolean): Promise<number> {
    for (;;) {
      const batch = await this.options.state.eventsAfter(cursor, { gameId, limit: this.pageSize });
      for (const event of batch) {
        if (closed()) return cursor;
        await writer.pushAndDrain(eventFrame(event));
        cursor = event.seq;
      }
      if (batch.length < this.pageSize) return cursor;
    }
  }

  /** One timer for every stream, running while any is open. */
  private keepAlive(): void {
    if (this.keepAliveTimer) return;
    this.keepAliveTimer = setInterval(() => {
      if (this.open.size === 0 && this.keepAliveTimer) {
        clearInterval(this.keepAliveTimer);
        this.keepAliveTimer = null;
        return;
      }
      for (const res of this.open) if (!res.writableEnded && res.writableLength === 0) res.write(": keep-alive\n\n");
    }, this.keepAliveMs);
    this.keepAliveTimer.unref();
  }
}

/** One stream's end, however it comes (client gone, error, shutdown); each cleanup runs once, even one added after the end. */
class Connection {
  closed = false;
  private readonly cleanups: (() => void)[] = [];

  onClose(cleanup: () => void): void {
    if (this.closed) cleanup();
    else this.cleanups.push(cleanup);
  }

  readonly close = (): void => {
    if (this.closed) return;
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
  };
}

/** Frames go out in order; the queue is bounded, and a full one means the client is too slow. */
class FrameWriter {
  private readonly queue: string[] = [];
  private flushing = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly res: ServerResponse) {}

  /** False when the client is too far behind. */
  push(frame: string): boolean {
    if (this.res.writableEnded) return true;
    if (this.queue.length >= MAX_QUEUED_FRAMES) return false;
    this.queue.push(frame);
    void this.flush();
    return true;
  }

  /** For the backlog: wait until the socket took it, so one reader never fills memory. */
  async pushAndDrain(frame: string): Promise<void> {
    this.push(frame);
    if (!this.flushing && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        if (this.res.writableEnded || this.res.destroyed) {
          this.queue.length = 0;
          break;
        }
        if (!this.res.write(this.queue.shift()!)) await drained(this.res);
      }
    } finally {
      this.flushing = false;
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

function parseGameId(query: URLSearchParams): string | undefined {
  const gameIdParam = query.get("game_id");
  if (gameIdParam === null || gameIdParam === "") return undefined;
  const parsed = GameIdSchema.safeParse(gameIdParam);
  if (!parsed.success) throw new RtmError("invalid_request", `game_id: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

function eventFrame(event: RuntimeEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

function diagnosticFrame(d: EventDiagnostic): string {
  return `event: diagnostic\ndata: ${JSON.stringify(d)}\n\n`;
}
