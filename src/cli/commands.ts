/** The verbs, each over RtmClient: print for people (table) or scripts (json), return an exit code. */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { buildInfo, type BuildInfo } from "../buildInfo.js";
import type { Action } from "../controller/planner.js";
import { RtmApiError, type ContractRuntimeRecord, type ExtRuntimeView, type RtmClient, type StreamedEvent, type WireEvent } from "../client/index.js";
import { Backoff } from "../model/backoff.js";
import { OPERATION_LIST_MAX_LIMIT } from "../model/record.js";
import { STOP_REASONS, type StopReason } from "../model/status.js";
import { OPS_DEFAULT_ROWS, UsageError, type FlagValues, type Verb } from "./args.js";
import { EXIT_OK } from "./exitCodes.js";
import { age, dash, duration, fields, humanMs, json, shortId, table, truncate } from "./format.js";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal: the progress line is drawn only there. */
  stderrIsTty: boolean;
}

export interface CommandContext {
  client: RtmClient;
  io: Io;
  output: "table" | "json";
  flags: FlagValues;
  /** Aborted on SIGINT: ends a followed stream cleanly. */
  signal: AbortSignal;
}

type Command = (ctx: CommandContext, args: string[]) => Promise<number>;

function intFlag(flags: FlagValues, name: string, fallback: number, max: number, verb: Verb): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || !/^[0-9]{1,9}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`, verb);
  }
  return Number(raw);
}

function recordRows(records: ContractRuntimeRecord[], now: number): string {
  return table(
    ["GAME", "STATUS", "IMAGE", "CONTAINER", "STARTED", "LAST OP"],
    records.map((r) => [r.game_id, r.status, dash(r.current_image_ref), shortId(r.current_container_id), age(r.started_at, now), age(r.last_op_at, now)]),
  );
}

/**
 * Draws "<what>: waiting for the loop... 3s" on stderr while `work` runs.
 * Only on a terminal: in a pipe or a log it would be noise.
 */
async function withProgress<T>(io: Io, what: string, work: Promise<T>): Promise<T> {
  if (!io.stderrIsTty) return work;
  const started = Date.now();
  const draw = () => io.err(`\r\x1b[K${what}: waiting for the loop... ${Math.floor((Date.now() - started) / 1000)}s`);
  draw();
  const timer = setInterval(draw, 1000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    io.err("\r\x1b[K");
  }
}

function mutation(verb: "start" | "stop" | "restart" | "patch" | "cleanup"): Command {
  return async (ctx, args) => {
    const [gameId = "", image = ""] = args;
    const opId = typeof ctx.flags["op-id"] === "string" ? ctx.flags["op-id"] : randomUUID();
    const opts = { opId, signal: ctx.signal };
    let reason: StopReason = "admin_request";
    if (verb === "stop" && ctx.flags.reason !== undefined) {
      const r = String(ctx.flags.reason);
      if (!(STOP_REASONS as readonly string[]).includes(r)) throw new UsageError(`--reason must be one of ${STOP_REASONS.join(", ")}`, verb);
      reason = r as StopReason;
    }
    // The op id goes to stderr first, so it is known even if the wait is interrupted.
    ctx.io.err(`${verb} ${gameId}: op ${opId}\n`);
    const call = (): Promise<ContractRuntimeRecord> => {
      const c = ctx.client;
      switch (verb) {
        case "start":
          return c.start(gameId, image, opts);
        case "stop":
          return c.stop(gameId, reason, opts);
        case "restart":
          return c.restart(gameId, opts);
        case "patch":
          return c.patch(gameId, image, opts);
        case "cleanup":
          return c.cleanup(gameId, opts);
      }
    };
    let record: ContractRuntimeRecord;
    try {
      record = await withProgress(ctx.io, `${verb} ${gameId}`, call());
    } catch (err) {
      if (ctx.signal.aborted) {
        // The declaration may already be written: the loop carries on without us.
        ctx.io.err(`rtmctl: interrupted; the operation may still complete on the server: rtmctl ops ${gameId} (op ${opId})\n`);
      }
      throw err;
    }
    if (ctx.output === "json") ctx.io.out(json(record));
    else ctx.io.out(recordRows([record], Date.now()));
    return EXIT_OK;
  };
}

function describeAction(a: Action): string {
  switch (a.type) {
    case "ensureImage":
      return `ensure image ${a.imageRef} is present${a.policy === "never" ? " (must already be local)" : ""}`;
    case "create":
      return `create a container on ${a.imageRef}`;
    case "start":
      return a.containerId === "created" ? "start the new container" : `start container ${shortId(a.containerId)}`;
    case "stop":
      return `stop container ${shortId(a.containerId)}${a.reason ? ` (reason ${a.reason})` : ""}`;
    case "remove":
      return `remove container ${shortId(a.containerId)}`;
    case "updateImage":
      return `set the image of container ${shortId(a.containerId)} to ${a.imageRef} in place`;
    case "removeAll":
      return "stop and remove every container of the game";
  }
}

function eventLine(e: WireEvent): string[] {
  const data = Object.keys(e.data).length ? truncate(JSON.stringify(e.data), 100) : "-";
  return [e.at, String(e.seq), e.gameId, e.type, shortId(e.opId, 8), data];
}

const EVENT_HEADERS = ["TIME", "SEQ", "GAME", "TYPE", "OP", "DATA"];

function isWireEvent(e: StreamedEvent): e is StreamedEvent & { data: WireEvent } {
  const d = e.data;
  return e.id !== null && e.type !== "snapshot" && e.type !== "diagnostic" && typeof d === "object" && d !== null && "seq" in d;
}

function cursorOf(e: StreamedEvent): number | null {
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
  if (ctx.output === "json") for (const e of collected) ctx.io.out(`${JSON.stringify(e)}\n`);
  else if (collected.length === 0) ctx.io.err("no events\n");
  else ctx.io.out(table(EVENT_HEADERS, collected.map(eventLine)));
  return EXIT_OK;
}

function describeDiagnostic(data: unknown): string {
  if (data && typeof data === "object" && "message" in data) return `event stream: ${String((data as { message: unknown }).message)}`;
  return `event stream: ${JSON.stringify(data)}`;
}

/** Reconnects of `events --follow`: 0.5 s, doubling, at most 10 s. */
const EVENTS_RECONNECT = { baseMs: 500, maxMs: 10_000 };

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
        if (ctx.output === "json") {
          ctx.io.out(`${JSON.stringify({ id: e.id, type: e.type, data: e.data })}\n`);
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

function showRuntime(view: ExtRuntimeView, now: number): string {
  const r = view.record;
  const d = view.declaration;
  const pairs: [string, string | number | boolean | null | undefined][] = [
    ["game", view.gameId],
    ["status", r?.status ?? "(no record yet)"],
    ["desired", d ? `${d.desiredState}${d.stopReason ? ` (${d.stopReason})` : ""}` : view.declarationError ? "(invalid declaration)" : "(no declaration)"],
    ["image", r?.currentImageRef ?? null],
    ["declared image", d?.imageRef ?? null],
    ["generation", d ? `${d.generation} (observed ${r?.observedGeneration ?? 0})` : null],
    ["container", r?.currentContainerId ?? null],
    ["endpoint", r?.engineEndpoint ?? null],
    ["health", r ? `${r.health}${r.consecutiveProbeFailures ? ` (${r.consecutiveProbeFailures} probe failures)` : ""}` : null],
    ["restarts", r?.restartCount ?? null],
    ["started", r?.startedAt ? `${r.startedAt} (${age(r.startedAt, now)} ago)` : null],
    ["stopped", r?.stoppedAt ?? null],
    ["last op", r?.lastOpAt ? `${r.lastOpAt} (${age(r.lastOpAt, now)} ago)` : null],
    ["last error", r?.lastErrorCode ? `${r.lastErrorCode}: ${r.lastErrorMessage ?? ""}` : null],
    ["degraded", r?.degraded ? "yes: a rollback failed, the runtime needs a human" : null],
    ["state path", r?.statePath ?? null],
  ];
  if (view.declarationError) pairs.push(["declaration error", `${view.declarationError.code}: ${view.declarationError.message}`]);
  return fields(pairs.filter(([, v]) => v !== null && v !== undefined));
}

export const COMMANDS: Record<Verb, Command> = {
  async list(ctx) {
    const records = await ctx.client.list();
    if (ctx.output === "json") ctx.io.out(json(records));
    else if (records.length === 0) ctx.io.err("no runtimes\n");
    else ctx.io.out(recordRows(records, Date.now()));
    return EXIT_OK;
  },

  async get(ctx, [gameId = ""]) {
    const view = await ctx.client.extRecord(gameId);
    ctx.io.out(ctx.output === "json" ? json(view) : showRuntime(view, Date.now()));
    return EXIT_OK;
  },

  start: mutation("start"),
  stop: mutation("stop"),
  restart: mutation("restart"),
  patch: mutation("patch"),
  cleanup: mutation("cleanup"),

  async ops(ctx, [gameId = ""]) {
    const limit = intFlag(ctx.flags, "limit", OPS_DEFAULT_ROWS, OPERATION_LIST_MAX_LIMIT, "ops");
    const items = await ctx.client.operations(gameId, limit);
    if (ctx.output === "json") {
      ctx.io.out(json(items));
      return EXIT_OK;
    }
    if (items.length === 0) {
      ctx.io.err(`no operations logged for ${gameId}\n`);
      return EXIT_OK;
    }
    ctx.io.out(
      table(
        ["STARTED", "OP ID", "KIND", "SOURCE", "OUTCOME", "ERROR", "TOOK", "IMAGE", "MESSAGE"],
        items.map((o) => [
          o.startedAt,
          o.opId,
          o.kind,
          o.opSource,
          o.outcome,
          dash(o.errorCode),
          duration(o.startedAt, o.finishedAt),
          dash(o.imageRef),
          truncate(o.message, 80),
        ]),
      ),
    );
    return EXIT_OK;
  },

  async events(ctx) {
    const gameId = typeof ctx.flags.game === "string" ? ctx.flags.game : undefined;
    let since: number | undefined;
    if (ctx.flags.since !== undefined) {
      const raw = String(ctx.flags.since);
      if (!/^[0-9]{1,15}$/.test(raw)) throw new UsageError(`--since must be an event sequence number, got ${JSON.stringify(raw)}`, "events");
      since = Number(raw);
    }
    if (ctx.flags.follow === true) return eventsFollow(ctx, gameId, since);
    return eventsBacklog(ctx, gameId, since ?? 0, intFlag(ctx.flags, "tail", 100, 100_000, "events"));
  },

  async logs(ctx, [gameId = ""]) {
    const text = await ctx.client.logs(gameId, intFlag(ctx.flags, "tail", 200, 10_000, "logs"));
    if (ctx.output === "json") ctx.io.out(json({ gameId, logs: text }));
    else ctx.io.out(text.endsWith("\n") || text === "" ? text : `${text}\n`);
    return EXIT_OK;
  },

  async diff(ctx, [gameId = ""]) {
    const plan = await ctx.client.plan(gameId);
    if (ctx.output === "json") {
      ctx.io.out(json(plan));
      return EXIT_OK;
    }
    const lines = [`${gameId}: ${plan.reason}`];
    if (plan.kind) lines.push(`operation: ${plan.kind} (source ${plan.opSource}${plan.opId ? `, op ${plan.opId}` : ""})`);
    if (plan.actions.length === 0) lines.push("actions: none");
    else lines.push("actions:", ...plan.actions.map((a, i) => `  ${i + 1}. ${describeAction(a)}`));
    if (plan.events.length > 0) lines.push("events:", ...plan.events.map((e) => `  ${e.type} ${truncate(JSON.stringify(e.data), 100)}`));
    if (plan.hold) lines.push(`held: ${plan.hold.code}: ${plan.hold.message}`);
    if (plan.requeueAfterMs !== null) lines.push(`looks again in: ${humanMs(plan.requeueAfterMs)}`);
    ctx.io.out(`${lines.join("\n")}\n`);
    return EXIT_OK;
  },

  async version(ctx) {
    const client = buildInfo();
    const line = (who: string, v: BuildInfo) => `${who}: ${v.version} (commit ${v.commit}, node ${v.node})\n`;
    if (ctx.output === "json") {
      ctx.io.out(json({ client, server: await ctx.client.version({ signal: ctx.signal }) }));
      return EXIT_OK;
    }
    ctx.io.out(line("client", client));
    ctx.io.out(line("server", await ctx.client.version({ signal: ctx.signal })));
    return EXIT_OK;
  },
};
