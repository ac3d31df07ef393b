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
  const watch = new DockerEventWatch(ctx, reconnect, handlers);
  void watch.connect();
  return () => watch.stop();
}

/** One watch's state: the live stream, whether it is broken, and the pending retry. */
class DockerEventWatch {
  private readonly backoff: Backoff;
  private stopped = false;
  private broken = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private current: { stream: NodeJS.ReadableStream | null; abort: AbortController } | null = null;
  // Replaying from the moment of the call closes the gap between the
  // caller's initial listing and the stream actually being connected.
  private since: number | undefined = Date.now() / 1000;

  constructor(
    private readonly ctx: DockerContext,
    private readonly reconnect: BackoffSettings,
    private readonly handlers: EngineEventHandlers,
  ) {
    this.backoff = new Backoff(reconnect);
  }

  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.logger?.error({ err, handler: what }, "docker event handler threw");
    }
  }

  private markBroken(err: Error): void {
    if (this.stopped) return;
    if (!this.broken) {
      this.broken = true;
      this.ctx.logger?.warn({ err }, "docker event stream broken; reconnecting");
      this.safely("onDisconnect", () => this.handlers.onDisconnect(err));
    }
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, this.backoff.next());
  }

  private follow(stream: NodeJS.ReadableStream): void {
    const connectedAt = Date.now();
    readJsonLines(
      stream,
      (obj) => {
        const event = parseEvent(obj, this.ctx.instance);
        if (event) this.safely("onEvent", () => this.handlers.onEvent(event));
      },
      (line) => this.ctx.logger?.warn({ line }, "unparseable docker event"),
    );
    let ended = false;
    const onEnd = (err?: Error) => {
      if (ended) return;
      ended = true;
      // A stream that stayed up a while was healthy: start the backoff afresh.
      if (Date.now() - connectedAt > this.reconnect.maxMs) this.backoff.reset();
      this.markBroken(err ?? new Error("Docker event stream ended"));
    };
    stream.on("end", () => onEnd());
    stream.on("close", () => onEnd());
    stream.on("error", (err: Error) => onEnd(err));
  }

  /** The stream, or null when connecting failed (a retry is then scheduled) or the watch stopped meanwhile. */
  private async open(abort: AbortController): Promise<NodeJS.ReadableStream | null> {
    const started = performance.now();
    try {
      const stream = await this.ctx.docker.getEvents({
        ...(this.since !== undefined ? { since: this.since } : {}),
        filters: { type: ["container"], label: labelFilters(this.ctx.instance), event: Object.keys(CHANGE_OF_ACTION) },
        abortSignal: abort.signal,
      });
      this.ctx.calls.report("events_connect", "ok", started);
      return stream;
    } catch (err) {
      this.ctx.calls.report("events_connect", "error", started);
      if (this.stopped) return null;
      this.ctx.logger?.debug({ err, attempt: this.backoff.attempts }, "docker event stream connect failed");
      this.markBroken(asApiError(err));
      return null;
    }
  }

  async connect(): Promise<void> {
    if (this.stopped) return;
    const abort = new AbortController();
    this.current = { stream: null, abort };
    const stream = await this.open(abort);
    if (!stream) return;
    if (this.stopped) {
      destroyStream(stream);
      return;
    }
    this.since = undefined;
    this.current = { stream, abort };
    if (this.broken) {
      this.broken = false;
      this.ctx.logger?.info({}, "docker event stream re-established");
      this.safely("onReconnect", () => this.handlers.onReconnect());
    }
    this.follow(stream);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.current) {
      this.current.abort.abort();
      if (this.current.stream) destroyStream(this.current.stream);
      this.current = null;
    }
  }
}
