/**
 * The two watches that wake the loop: declarations (PostgreSQL NOTIFY or a
 * Kubernetes watch) and the engine runtime's event stream. Each queues the
 * game a message names and asks for a resync when it was re-established
 * after a gap, since messages may have been lost in it.
 */
import type { Logger } from "../../log.js";
import type { DeclarationSource, RuntimePort } from "../../model/ports.js";
import type { Lane } from "../queue.js";
import type { Runnable } from "./runnable.js";

/**
 * The `watch` label of a watch's metrics: `postgres` or `kubernetes` for
 * declarations, the runtime module's own label for its event stream.
 */
export type WatchName = string;

/** Queues a game for a reconcile. */
export type Enqueue = (gameId: string, lane?: Lane) => void;
/** Asks for a resync pass; `why` is for logs and metrics. */
export type RequestResync = (why: string) => void;

export interface WatchHooks {
  /** A message arrived on a watch the loop depends on (its age is the watchdog's measure). */
  onWatchMessage?(watch: WatchName): void;
  /** A watch was re-established and everything re-listed. */
  onRelist?(watch: WatchName): void;
  /** The runtime's event stream reconnected by itself after a break (the silence watchdog's replacements are relists only). */
  onRuntimeEventsReconnect?(watch: WatchName): void;
}

interface WatchDeps {
  enqueue: Enqueue;
  requestResync: RequestResync;
  logger: Logger;
  hooks?: WatchHooks;
}

export class DeclarationWatchRunnable implements Runnable {
  readonly name = "declaration watch";
  readonly needsLeadership = true;
  private unwatch: (() => Promise<void>) | null = null;

  constructor(private readonly deps: WatchDeps & { source: DeclarationSource; watch: WatchName }) {}

  async start(): Promise<void> {
    const { source, watch, enqueue, requestResync, hooks } = this.deps;
    this.unwatch = await source.watch({
      onChange: (gameId) => {
        hooks?.onWatchMessage?.(watch);
        enqueue(gameId);
      },
      onResync: () => {
        hooks?.onRelist?.(watch);
        requestResync("declaration watch re-established");
      },
    });
  }

  async stop(): Promise<void> {
    const unwatch = this.unwatch;
    this.unwatch = null;
    await unwatch?.().catch((err: unknown) => this.deps.logger.warn({ err }, "declaration watch did not close cleanly"));
  }
}

/**
 * How the loop tells a dead runtime event stream from a quiet runtime: each
 * runtime module declares it (src/runtime/<name>/module.ts).
 */
export interface RuntimeEventStream {
  /** The `watch` label of its metrics. */
  label: WatchName;
  /**
   * `replace-when-silent`: a stream silent past RTMANAGER_WATCH_SILENCE_LIMIT
   * is replaced and everything re-listed; for a stream that cannot tell a
   * quiet runtime from a half-open connection (a container engine's event stream).
   * `self-kept`: the stream keeps itself alive and says when it re-listed (a
   * Kubernetes watch with bookmarks and its own silence limit,
   * src/kube/reflector.ts); silence is a quiet fleet, never a reason to
   * replace it.
   */
  liveness: "replace-when-silent" | "self-kept";
}

/**
 * The engine runtime's event stream, kept by its runtime's liveness rule
 * (RuntimeEventStream). The watchdog looks every half silence limit (at
 * least 1 s, at most 30 s) whatever the rule, and counts its looks, so "not
 * replaced" is told from "not looked at yet".
 */
export class RuntimeEventWatchRunnable implements Runnable {
  readonly name = "runtime event watch";
  readonly needsLeadership = true;
  /** Watchdog looks since start. */
  looks = 0;
  private lastMessage = 0;
  private stopEvents: (() => void) | null = null;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(private readonly deps: WatchDeps & { runtime: RuntimePort; stream: RuntimeEventStream; silenceLimitMs: number }) {}

  start(): void {
    this.lastMessage = Date.now();
    this.stopEvents = this.watch();
    const every = Math.max(1000, Math.min(30_000, this.deps.silenceLimitMs / 2));
    this.watchdog = setInterval(() => this.checkSilence(), every);
    this.watchdog.unref();
  }

  stop(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
    this.stopEvents?.();
    this.stopEvents = null;
    return Promise.resolve();
  }

  private watch(): () => void {
    const { runtime, enqueue, requestResync, logger, hooks, stream } = this.deps;
    return runtime.watchEvents({
      onEvent: (e) => {
        this.lastMessage = Date.now();
        hooks?.onWatchMessage?.(stream.label);
        enqueue(e.gameId);
      },
      onReconnect: () => {
        this.lastMessage = Date.now();
        hooks?.onRuntimeEventsReconnect?.(stream.label);
        hooks?.onRelist?.(stream.label);
        requestResync(`${runtime.name} event stream re-established`);
      },
      onDisconnect: (err) => logger.warn({ err, runtime: runtime.name }, `${runtime.name} event stream lost; reconnecting`),
    });
  }

  private checkSilence(): void {
    this.looks++;
    const silentMs = Date.now() - this.lastMessage;
    if (this.deps.stream.liveness === "self-kept" || silentMs < this.deps.silenceLimitMs || !this.stopEvents) return;
    const { runtime, logger, hooks, stream } = this.deps;
    logger.info({ silentSeconds: Math.round(silentMs / 1000), runtime: runtime.name }, `${runtime.name} event stream silent past the limit; re-establishing it and re-listing`);
    this.stopEvents();
    this.lastMessage = Date.now();
    this.stopEvents = this.watch();
    hooks?.onRelist?.(stream.label);
    this.deps.requestResync(`${runtime.name} event stream silent`);
  }
}
