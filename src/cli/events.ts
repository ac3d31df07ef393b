/** `rtmctl events`: the stored backlog, or the live stream with reconnects. */
import { setTimeout as sleep } from "node:timers/promises";
import { RtmApiError, type StreamedEvent, type WireEvent } from "../client/index.js";
import { Backoff } from "../model/backoff.js";
import { UsageError } from "./args.js";
import { intFlag, streamed, type CommandContext } from "./context.js";
import { EXIT_OK } from "./exitCodes.js";
import { dash, shortId, table, truncate } from "./format.js";

function eventLine(e: WireEvent): string[] {
  const data = Object.keys(e.data).length ? truncate(JSON.stringify(e.data), 100) : "-";
  return [e.at, String(e.seq), e.gameId, e.type, shortId(e.opId, 8), data];
}

const EVENT_HEADERS = ["TIME", "SEQ", "GAME", "TYPE", "OP", "DATA"];

export function isWireEvent(e: StreamedEvent): e is StreamedEvent & { data: WireEvent } {
  const d = e.data;
  return e.id !== null && e.type !== "snapshot" && e.type !== "diagnostic" && typeof d === "object" && d !== null && "seq" in d;
}

export function cursorOf(e: StreamedEvent): number | null {
  const n = e.id === null ? NaN : Number(e.id);
  return Number.isInteger(n) ? n : null;
}

/** Without --follow: how long a stream may stay quiet before its stored backlog counts as drained. */
const BACKLOG_QUIET_MS = 750;

async function eventsBacklog(ctx: CommandContext, gameId: string | undefined, since: number, tail: number): Promise<number> {
  // A first connection without a cursor learns the newest seq (its snapshot's cursor): the end of the backlog.
  let latest = 0;
  const probe = new AbortController();
  for await (const e of ctx.client.events({ gameId, signal: AbortSignal.any([probe.signal, ctx.signal]) })) {
    if (e.type === "snapshot") {
      latest = cursorOf(e) ?? 0;
      break;
    }
  }
  probe.abort();
  const collected: WireEvent[] = [];
  if (latest > since) {
    const done = new AbortController();
    let quiet: NodeJS.Timeout | undefined;
    // A game filter can hide the newest seq, so silence ends the read too; the backlog is written at once.
    const arm = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => done.abort(), BACKLOG_QUIET_MS);
    };
    try {
      for await (const e of ctx.client.events({ gameId, cursor: since, signal: AbortSignal.any([done.signal, ctx.signal]) })) {
        if (e.type === "snapshot") {
          arm();
          continue;
        }
        if (e.type === "diagnostic") {
          ctx.io.err(`rtmctl: ${describeDiagnostic(e.data)}\n`);
          continue;
        }
        if (!isWireEvent(e)) continue;
        if (e.data.seq > latest) break;
        collected.push(e.data);
        if (collected.length > tail) collected.shift();
        if (e.data.seq === latest) break;
        arm();
      }
    } finally {
      clearTimeout(quiet);
      done.abort();
    }
  }
  if (ctx.output !== "table") for (const e of collected) ctx.io.out(streamed(ctx.output, e));
  else if (collected.length === 0) ctx.io.err("no events\n");
  else ctx.io.out(table(EVENT_HEADERS, collected.map(eventLine)));
  return EXIT_OK;
}

export function describeDiagnostic(data: unknown): string {
  if (data && typeof data === "object" && "message" in data) return `event stream: ${String((data as { message: unknown }).message)}`;
  return `event stream: ${JSON.stringify(data)}`;
}

/** Reconnects of `events --follow`: 0.5 s, doubling, at most 10 s. */
export const EVENTS_RECONNECT = { baseMs: 500, maxMs: 10_000 };

async function eventsFollow(ctx: CommandContext, gameId: string | undefined, since: number | undefined): Promise<number> {
  let cursor = since;
  let headerShown = false;
  // Deterministic, so the "reconnecting in" line tells the truth; one CLI needs no jitter.
  const backoff = new Backoff(EVENTS_RECONNECT, false);
  const widths = [24, 6, 20, 22, 8];
  const row = (cells: string[]) => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join(" ").trimEnd() + "\n";
  while (!ctx.signal.aborted) {
    let why: string;
    try {
      for await (const e of ctx.client.events({ gameId, cursor, signal: ctx.signal })) {
        backoff.reset();
        if (ctx.output !== "table") {
          ctx.io.out(streamed(ctx.output, { id: e.id, type: e.type, data: e.data }));
        } else if (e.type === "snapshot") {
          const n = (e.data as { records?: unknown[] } | null)?.records?.length ?? 0;
          ctx.io.err(`following events after seq ${dash(e.id)} (${n} runtime${n === 1 ? "" : "s"} known); Ctrl-C to stop\n`);
          if (!headerShown) ctx.io.out(row(EVENT_HEADERS));
          headerShown = true;
        } else if (e.type === "diagnostic") {
          ctx.io.err(`rtmctl: ${describeDiagnostic(e.data)}\n`);
        } else if (isWireEvent(e)) {
          ctx.io.out(row(eventLine(e.data)));
        }
        const c = cursorOf(e);
        if (c !== null) cursor = c;
      }
      if (ctx.signal.aborted) break;
      why = "event stream ended";
    } catch (err) {
      if (ctx.signal.aborted) break;
      // A refusal (bad game id, wrong token) will not change by retrying.
      if (err instanceof RtmApiError && err.status < 500) throw err;
      why = `event stream failed (${(err as Error).message})`;
    }
    const delayMs = backoff.next();
    ctx.io.err(`rtmctl: ${why}; reconnecting in ${delayMs / 1000}s\n`);
    // Ctrl-C during the wait ends the command at once.
    await sleep(delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
  }
  return EXIT_OK;
}

export async function eventsCommand(ctx: CommandContext): Promise<number> {
  const gameId = typeof ctx.flags.game === "string" ? ctx.flags.game : undefined;
  let since: number | undefined;
  if (ctx.flags.since !== undefined) {
    const raw = String(ctx.flags.since);
    if (!/^[0-9]{1,15}$/.test(raw)) throw new UsageError(`--since must be an event sequence number, got ${JSON.stringify(raw)}`, "events");
    since = Number(raw);
  }
  if (ctx.flags.follow === true) return eventsFollow(ctx, gameId, since);
  return eventsBacklog(ctx, gameId, since ?? 0, intFlag(ctx.flags, "tail", 100, 100_000, "events"));
}
