/**
 * Docker's container event stream for this installation, kept up: a broken
 * stream is reported once, retried with the shared jittered backoff, and a
 * reconnect is announced so the controller can re-list what it missed.
 */
import { Backoff, type BackoffSettings } from "../../model/backoff.js";
import type { EngineChange, EngineEvent, EngineEventHandlers } from "../../model/ports.js";
import { asApiError, type DockerContext } from "./calls.js";
import { LABELS, labelFilters, ownedBy } from "./labels.js";
import { destroyStream, readJsonLines } from "./streams.js";

/** Docker's container event actions the controller wakes for, as the port's engine changes. */
const CHANGE_OF_ACTION: Readonly<Record<string, EngineChange>> = {
  create: "created",
  start: "started",
  die: "exited",
  oom: "exited",
  stop: "exited",
  kill: "exited",
  destroy: "removed",
};

interface EventMessage {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

/** One of this installation's container events, or null for anything else. */
export function parseEvent(raw: unknown, instance: string): EngineEvent | null {
  if (!raw || typeof raw !== "object") return null;
  const msg = raw as EventMessage;
  if (msg.Type !== undefined && msg.Type !== "container") return null;
  const change = CHANGE_OF_ACTION[msg.Action ?? msg.status ?? ""];
  if (!change) return null;
  const attrs = msg.Actor?.Attributes ?? {};
  // The daemon already filtered by label; checking again keeps another installation's events out for sure.
  if (!ownedBy(attrs, instance)) return null;
  const containerId = msg.Actor?.ID ?? msg.id;
  if (!containerId) return null;
  const code = attrs.exitCode !== undefined ? Number(attrs.exitCode) : NaN;
  return {
    gameId: attrs[LABELS.gameId] as string,
    engineId: containerId,
    change,
    exitCode: Number.isInteger(code) ? code : null,
  };
}

/** Streams events until the returned function is called. */
export function watchDockerEvents(ctx: DockerContext, reconnect: BackoffSettings, handlers: EngineEventHandlers): () => void {
  const { logger } = ctx;
  const backoff = new Backoff(reconnect);
  let stopped = false;
  let broken = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let current: { stream: NodeJS.ReadableStream | null; abort: AbortController } | null = null;
  // Replaying from the moment of the call closes the gap between the
  // caller's initial listing and the stream actually being connected.
  let since: number | undefined = Date.now() / 1000;

  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      logger?.error({ err, handler: what }, "docker event handler threw");
    }
  };

  const markBroken = (err: Error) => {
    if (stopped) return;
    if (!broken) {
      broken = true;
      logger?.warn({ err }, "docker event stream broken; reconnecting");
      safely("onDisconnect", () => handlers.onDisconnect(err));
    }
    if (retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, backoff.next());
  };

  const follow = (stream: NodeJS.ReadableStream) => {
    const connectedAt = Date.now();
    readJsonLines(
      stream,
      (obj) => {
        const event = parseEvent(obj, ctx.instance);
        if (event) safely("onEvent", () => handlers.onEvent(event));
      },
      (line) => logger?.warn({ line }, "unparseable docker event"),
    );
    let ended = false;
    const onEnd = (err?: Error) => {
      if (ended) return;
      ended = true;
      // A stream that stayed up a while was healthy: start the backoff afresh.
      if (Date.now() - connectedAt > reconnect.maxMs) backoff.reset();
      markBroken(err ?? new Error("Docker event stream ended"));
    };
    stream.on("end", () => onEnd());
    stream.on("close", () => onEnd());
    stream.on("error", (err: Error) => onEnd(err));
  };

  const connect = async () => {
    if (stopped) return;
    const abort = new AbortController();
    current = { stream: null, abort };
    let stream: NodeJS.ReadableStream;
    const started = performance.now();
    try {
      stream = await ctx.docker.getEvents({
        ...(since !== undefined ? { since } : {}),
        filters: { type: ["container"], label: labelFilters(ctx.instance), event: Object.keys(CHANGE_OF_ACTION) },
        abortSignal: abort.signal,
      });
      ctx.calls.report("events_connect", "ok", started);
    } catch (err) {
      ctx.calls.report("events_connect", "error", started);
      if (stopped) return;
      logger?.debug({ err, attempt: backoff.attempts }, "docker event stream connect failed");
      markBroken(asApiError(err));
      return;
    }
    if (stopped) {
      destroyStream(stream);
      return;
    }
    since = undefined;
    current = { stream, abort };
    if (broken) {
      broken = false;
      logger?.info({}, "docker event stream re-established");
      safely("onReconnect", () => handlers.onReconnect());
    }
    follow(stream);
  };

  void connect();

  return () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(retryTimer);
    if (current) {
      current.abort.abort();
      if (current.stream) destroyStream(current.stream);
      current = null;
    }
  };
}
