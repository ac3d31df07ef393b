/**
 * Verbs driven by the event stream rather than by polling: `list`/`get`
 * --watch redraw when an event says something changed; `wait` looks again on
 * each of the game's events until its condition holds or time runs out.
 */
import { RtmApiError, type ExtRuntimeView, type StreamedEvent } from "../client/index.js";
import { Backoff } from "../model/backoff.js";
import { setTimeout as sleep } from "node:timers/promises";
import { UsageError, WAIT_CONDITIONS, type WaitCondition } from "./args.js";
import type { CommandContext } from "./context.js";
import { cursorOf, describeDiagnostic, EVENTS_RECONNECT } from "./events.js";
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_WAIT_TIMEOUT } from "./exitCodes.js";
import { humanMs } from "./format.js";

/**
 * Feeds every event of the stream (snapshots included: one opens each
 * connection) to `onEvent` until `signal` aborts, reconnecting from the last
 * cursor after a break. A refusal (4xx) is thrown: retrying will not change it.
 */
async function eachEvent(
  ctx: CommandContext,
  gameId: string | undefined,
  signal: AbortSignal,
  onEvent: (e: StreamedEvent) => Promise<boolean | void>,
): Promise<void> {
  let cursor: number | undefined;
  const backoff = new Backoff(EVENTS_RECONNECT, false);
  while (!signal.aborted) {
    let why: string;
    try {
      for await (const e of ctx.client.events({ gameId, cursor, signal })) {
        backoff.reset();
        const c = cursorOf(e);
        if (c !== null) cursor = c;
        if (e.type === "diagnostic") {
          ctx.io.err(`rtmctl: ${describeDiagnostic(e.data)}\n`);
          continue;
        }
        if ((await onEvent(e)) === true) return;
      }
      if (signal.aborted) return;
      why = "event stream ended";
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof RtmApiError && err.status < 500) throw err;
      why = `event stream failed (${(err as Error).message})`;
    }
    const delayMs = backoff.next();
    ctx.io.err(`rtmctl: ${why}; reconnecting in ${delayMs / 1000}s\n`);
    await sleep(delayMs, undefined, { signal }).catch(() => undefined);
  }
}

/** Clears a terminal before each redraw; in a pipe, versions follow one another. */
export async function watchLoop(ctx: CommandContext, gameId: string | undefined, render: () => Promise<string>): Promise<number> {
  let last: string | null = null;
  const draw = async (): Promise<void> => {
    let text: string;
    try {
      text = await render();
    } catch (err) {
      // Gone while watched (cleaned up, deleted): say so and keep watching; at the start it is an error.
      if (last === null || !(err instanceof RtmApiError && err.code === "not_found")) throw err;
      text = `${gameId}: not found\n`;
    }
    if (text === last) return;
    if (ctx.io.stdoutIsTty) ctx.io.out(`\x1b[H\x1b[2J${text}`);
    else ctx.io.out(last !== null && ctx.output === "table" ? `\n${text}` : text);
    last = text;
  };
  try {
    await draw();
    await eachEvent(ctx, gameId, ctx.signal, () => draw());
  } catch (err) {
    // Ctrl-C is how a watch is left: a normal end, whatever was in flight.
    if (ctx.signal.aborted) return EXIT_OK;
    throw err;
  }
  return EXIT_OK;
}

export function conditionHolds(condition: WaitCondition, view: ExtRuntimeView | null): boolean {
  const record = view?.record ?? null;
  switch (condition) {
    case "running":
      return record?.status === "running";
    case "healthy":
      return record?.status === "running" && record.health === "healthy";
    case "removed":
      return view === null || record?.status === "removed" || (record === null && view.declaration === null);
  }
}

/** How often `wait` looks without an event: the first healthy probe of an engine is recorded but is no event. */
const WAIT_RECHECK_MS = 2000;

export async function waitCommand(ctx: CommandContext, [gameId = ""]: string[]): Promise<number> {
  const condition = ctx.flags.for;
  if (typeof condition !== "string" || !(WAIT_CONDITIONS as readonly string[]).includes(condition)) {
    throw new UsageError(`--for must be one of ${WAIT_CONDITIONS.join(", ")}, got ${JSON.stringify(condition ?? "")}`, "wait");
  }
  const cond = condition as WaitCondition;
  const check = async (signal: AbortSignal): Promise<boolean> => {
    try {
      return conditionHolds(cond, await ctx.client.extRecord(gameId, { signal }));
    } catch (err) {
      if (cond === "removed" && err instanceof RtmApiError && err.code === "not_found") return true;
      throw err;
    }
  };
  const deadline = AbortSignal.timeout(ctx.timeoutMs);
  const met = new AbortController();
  const signal = AbortSignal.any([ctx.signal, deadline, met.signal]);
  const look = async (): Promise<boolean> => {
    if (await check(signal)) met.abort();
    return met.signal.aborted;
  };
  const timer = setInterval(() => void look().catch(() => undefined), WAIT_RECHECK_MS);
  try {
    if (!(await look())) {
      ctx.io.err(`waiting up to ${humanMs(ctx.timeoutMs)} for ${gameId} to be ${cond}\n`);
      // Each connection opens with a snapshot, which triggers a look: nothing between the first look and now is missed.
      await eachEvent(ctx, gameId, signal, () => look());
    }
  } catch (err) {
    // A request cut by the deadline or by a periodic look that succeeded is no failure; the checks below decide.
    if (!signal.aborted) throw err;
  } finally {
    clearInterval(timer);
  }
  if (ctx.signal.aborted) {
    ctx.io.err("rtmctl: interrupted\n");
    return EXIT_INTERRUPTED;
  }
  // The last word is a GET of its own, so a change that raced the deadline is not missed.
  if (met.signal.aborted || (await check(ctx.signal))) {
    ctx.io.err(`${gameId}: ${cond}\n`);
    return EXIT_OK;
  }
  ctx.io.err(`rtmctl: ${gameId} is not ${cond} after ${humanMs(ctx.timeoutMs)}\n`);
  return EXIT_WAIT_TIMEOUT;
}
