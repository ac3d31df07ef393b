/**
 * The two watches that wake the loop: declarations (PostgreSQL NOTIFY or a
 * Kubernetes watch) and the engine runtime's event stream. Each queues the game a
 * message names and asks for a resync when it was re-established after a
 * gap, since messages may have been lost in it.
 */
import type { Logger } from "../../log.js";
import type { DeclarationSource, RuntimePort } from "../../model/ports.js";
import type { Lane } from "../queue.js";
import type { Runnable } from "./runnable.js";

/** "postgres" or "kubernetes" for the declaration watch; the runtime's name (RuntimePort.name) for its event stream. */
export type WatchName = "postgres" | "kubernetes" | RuntimePort["name"];

/** Queues a game for a reconcile. */
export type Enqueue = (gameId: string, lane?: Lane) => void;
/** Asks for a resync pass; `why` is for logs and metrics. */
export type RequestResync = (why: string) => void;

export interface WatchHooks {
  /** A message arrived on a watch the loop depends on (its age is the watchdog's measure). */
  onWatchMessage?(watch: WatchName): void;
  /** A watch was re-established and everything re-listed. */
  onRelist?(watch: WatchName): void;
  /** The engine runtime's event stream was re-established after a break. */
  onEngineEventsReconnect?(): void;
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
 * The engine runtime's event stream is quiet when nothing happens, and a
 * half-open connection is quiet too. Past the silence limit the watchdog
 * replaces the stream and asks for a resync: cheap, and a dead stream cannot
 * hide for long.
 */
export class EngineEventWatchRunnable implements Runnable {
  readonly name = "engine event watch";
  readonly needsLeadership = true;
  private lastMessage = 0;
  private stopEvents: (() => void) | null = null;
  private watchdog: NodeJS.Timeout | null = null;

  constructor(private readonly deps: WatchDeps & { runtime: RuntimePort; silenceLimitMs: number }) {}

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
    const { runtime, enqueue, requestResync, logger, hooks } = this.deps;
    return runtime.watchEvents({
      onEvent: (e) => {
        this.lastMessage = Date.now();
        hooks?.onWatchMessage?.(runtime.name);
        enqueue(e.gameId);
      },
      onReconnect: () => {
        this.lastMessage = Date.now();
        hooks?.onEngineEventsReconnect?.();
        hooks?.onRelist?.(runtime.name);
        requestResync(`${runtime.name} event stream re-established`);
      },
      onDisconnect: (err) => logger.warn({ err }, `${runtime.name} event stream lost; reconnecting`),
    });
  }

  private checkSilence(): void {
    const silentMs = Date.now() - this.lastMessage;
    if (silentMs < this.deps.silenceLimitMs || !this.stopEvents) return;
    const { runtime } = this.deps;
    this.deps.logger.info({ silentSeconds: Math.round(silentMs / 1000) }, `${runtime.name} event stream silent past the limit; re-establishing it and re-listing`);
    this.stopEvents();
    this.lastMessage = Date.now();
    this.stopEvents = this.watch();
    this.deps.hooks?.onRelist?.(runtime.name);
    this.deps.requestResync(`${runtime.name} event stream silent`);
  }
}
