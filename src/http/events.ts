/**
 * GET /api/v1/ext/events: Server-Sent Events over the store's event log.
 *
 * Order on every connection: diagnostics about the cursor (if any), one
 * `snapshot` of the current records, the backlog after the cursor, then live
 * events. The cursor is the event `seq`; each event frame carries it as
 * `id:`, so an EventSource (or RtmClient.events) resumes with Last-Event-ID
 * and gets every later event exactly once: the store makes seq values visible
 * in order, and the stream only ever reads `seq > cursor`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import { RtmError, toRtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import type { StateStore } from "../model/ports.js";
import type { RuntimeEvent } from "../model/record.js";
import type { EventDiagnostic, EventSnapshot } from "./wire.js";

export interface EventStreamOptions {
  state: StateStore;
  subscribeEvents?(listener: () => void): () => void;
  /** Backstop poll for writers that do not wake us (another replica, plain SQL). */
  pollMs?: number;
  keepAliveMs?: number;
  pageSize?: number;
}

const CURSOR_PATTERN = /^[0-9]{1,15}$/;

export class EventStreams {
  private readonly open = new Set<ServerResponse>();
  private readonly pollMs: number;
  private readonly keepAliveMs: number;
  private readonly pageSize: number;

  constructor(private readonly options: EventStreamOptions) {
    this.pollMs = options.pollMs ?? 1000;
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.pageSize = options.pageSize ?? 500;
  }

  get size(): number {
    return this.open.size;
  }

  /** Ends every open stream; a client's EventSource reconnects elsewhere with its Last-Event-ID. */
  closeAll(): void {
    for (const res of this.open) res.end();
    this.open.clear();
  }

  /** Validation failures throw before any byte is written, so they still get the JSON envelope. */
  async serve(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, logger: Logger): Promise<void> {
    const { state } = this.options;
    const gameIdParam = query.get("game_id");
    let gameId: string | undefined;
    if (gameIdParam !== null && gameIdParam !== "") {
      const parsed = GameIdSchema.safeParse(gameIdParam);
      if (!parsed.success) throw new RtmError("invalid_request", `game_id: ${parsed.error.issues[0]?.message ?? "invalid"}`);
      gameId = parsed.data;
    }
    const headerCursor = req.headers["last-event-id"];
    const rawCursor = (typeof headerCursor === "string" && headerCursor !== "" ? headerCursor : null) ?? query.get("cursor");

    const bounds = await state.eventBounds();
    const now = bounds.latest ?? 0;
    const diagnostics: EventDiagnostic[] = [];
    let cursor = now;
    if (rawCursor !== null && rawCursor !== "") {
      if (!CURSOR_PATTERN.test(rawCursor)) {
        diagnostics.push({
          code: "invalid_cursor",
          message: `cursor ${JSON.stringify(rawCursor.slice(0, 64))} is not an event sequence number; continuing from now`,
          cursor: now,
        });
      } else {
        const asked = Number(rawCursor);
        if (bounds.oldest !== null && asked < bounds.oldest - 1) {
          cursor = bounds.oldest - 1;
          diagnostics.push({
            code: "cursor_expired",
            message: `events after ${asked} up to ${bounds.oldest - 1} were pruned; continuing from the oldest stored event`,
            oldest: bounds.oldest,
            cursor,
          });
        } else if (bounds.latest !== null && asked > bounds.latest) {
          // Ahead of the log: the database was reset or belongs to another installation.
          diagnostics.push({
            code: "cursor_unknown",
            message: `cursor ${asked} is beyond the newest event ${bounds.latest}; continuing from now`,
            cursor: now,
          });
        } else {
          cursor = asked;
        }
      }
    }

    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      // Reverse proxies (nginx) otherwise buffer the stream.
      "x-accel-buffering": "no",
    });
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    this.open.add(res);

    let closed = false;
    let ready = false;
    let pumping = false;
    let again = false;
    let failing = false;
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe: () => void = () => {};

    const write = async (frame: string): Promise<void> => {
      if (closed || res.writableEnded) return;
      if (!res.write(frame)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            res.off("close", done);
            resolve();
          };
          res.on("drain", done);
          res.on("close", done);
        });
      }
    };

    const pump = async (): Promise<void> => {
      if (!ready || closed) return;
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          for (;;) {
            const batch = await state.eventsAfter(cursor, { gameId, limit: this.pageSize });
            for (const event of batch) {
              if (closed) return;
              await write(eventFrame(event));
              cursor = event.seq;
            }
            if (batch.length < this.pageSize) break;
          }
        } while (again && !closed);
        if (failing) logger.info({ cursor }, "event stream reading again");
        failing = false;
      } catch (err) {
        const e = toRtmError(err);
        // One diagnostic per outage; the poll keeps retrying from the same cursor.
        if (!failing) {
          logger.warn({ err: e, cursor }, "event stream read failed");
          await write(diagnosticFrame({ code: "stream_failed", message: `reading events failed: ${e.message}; retrying`, cursor }));
        }
        failing = true;
      } finally {
        pumping = false;
      }
    };

    const cleanup = () => {
      if (closed) return;
      closed = true;
      for (const t of timers) clearInterval(t);
      unsubscribe();
      this.open.delete(res);
      logger.debug({ cursor }, "event stream closed");
    };
    res.on("close", cleanup);
    req.on("close", cleanup);

    // Subscribed before the snapshot is read, so nothing written meanwhile is
    // missed; wakes before `ready` are covered by the first pump's read.
    unsubscribe = this.options.subscribeEvents?.(() => void pump()) ?? (() => {});

    try {
      await write("retry: 2000\n\n");
      for (const d of diagnostics) await write(diagnosticFrame(d));
      const records = (await state.listRecords()).filter((r) => !gameId || r.gameId === gameId);
      // Dates become ISO strings in JSON.stringify, which is what EventSnapshot describes.
      const snapshot = { cursor, records } satisfies { [K in keyof EventSnapshot]: unknown };
      await write(`id: ${cursor}\nevent: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    } catch (err) {
      const e = toRtmError(err);
      logger.warn({ err: e }, "event stream could not send its snapshot");
      await write(diagnosticFrame({ code: "stream_failed", message: `could not read the current records: ${e.message}` }));
      cleanup();
      res.end();
      return;
    }
    logger.debug({ cursor, gameId, diagnostics: diagnostics.map((d) => d.code) }, "event stream open");

    ready = true;
    timers.push(setInterval(() => void pump(), this.pollMs));
    timers.push(setInterval(() => void write(": keep-alive\n\n"), this.keepAliveMs));
    await pump();
  }
}

function eventFrame(event: RuntimeEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

function diagnosticFrame(d: EventDiagnostic): string {
  return `event: diagnostic\ndata: ${JSON.stringify(d)}\n\n`;
}
