/**
 * A list/watch/relist reflector with an in-memory store, for any kind of
 * object (GameRuntime objects, the engine Pods and Services, Nodes: each takes a ListerWatcher).
 *
 * List (remembering the list's resourceVersion), then watch from it with
 * bookmarks. Every event and bookmark advances the resourceVersion; a dropped
 * connection reconnects from it with capped, jittered backoff; `410 Gone` (an
 * ERROR event, or HTTP 410) re-lists; a watch silent past the limit is
 * replaced by a re-list. Each watch request is abortable and asks the server
 * to end it after a random 5..10 min, like client-go.
 *
 * Why not client-node's ListWatch (1.4, src/cache.ts): it never asks for
 * bookmarks, so a quiet watch's resourceVersion ages until a reconnect is
 * 410 Gone and costs a full list (test/unit/reflector.test.ts measures it);
 * it stops for good on any watch error other than 410 (no reconnect, no
 * backoff); it has no silence limit; and its store cannot take the response
 * of this process's own write, which read-your-writes needs (`apply`).
 */
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { Backoff, type BackoffSettings } from "../model/backoff.js";
import { httpStatusOf } from "./api.js";
import { keyOf, ObjectStore, type ReflectedObject, type StoreChange } from "./objectStore.js";

export interface ListerWatcher<T> {
  list(): Promise<{ items: T[]; resourceVersion: string }>;
  /** Path of the list endpoint, watched with ?watch=true by client-node's Watch. */
  watchPath: string;
  /** Extra query parameters of every watch request (a labelSelector matching the list's). */
  watchQuery?: Record<string, string>;
  isObject(value: unknown): value is T;
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

export interface ReflectorListener<T> {
  /** A watch event changed the store. */
  onEvent(type: WatchEventType, obj: T, before: T | undefined): void;
  /** A list replaced the store (`first`: the first list since start). */
  onReplace(why: string, changes: StoreChange<T>[], first: boolean): void;
}

export interface ReflectorHooks {
  /** Every message on the watch (events and bookmarks). */
  onWatchMessage?(type: string): void;
  /** A list replaced the store: `start`, `gone` (410), `silence`, or `retry`. */
  onRelist?(why: string): void;
  /** A list or watch failed other than by stop(); the reflector retries. */
  onWatchError?(err: Error): void;
}

export interface ReflectorOptions<T> {
  /** The kind, for log lines. */
  kind: string;
  kubeConfig: KubeConfig;
  lister: ListerWatcher<T>;
  logger: Logger;
  listener: ReflectorListener<T>;
  silenceLimitMs: number;
  backoff: BackoffSettings;
  /** Server-side timeout asked of each watch request. Default: random 5..10 min. */
  watchTimeoutSeconds?: () => number;
  hooks?: ReflectorHooks;
  /** Trims each listed or watched object before it is stored (what a large store need not keep). */
  transform?: (obj: T) => T;
}

type WatchOutcome =
  | { kind: "closed"; received: boolean }
  | { kind: "error"; err: Error; received: boolean }
  | { kind: "gone" }
  | { kind: "silent" }
  | { kind: "stopped" };

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export class Reflector<T extends ReflectedObject> {
  readonly store = new ObjectStore<T>();
  private readonly watchClient: Watch;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private resourceVersion = "";
  private lastMessageAt = 0;
  private synced = false;
  private syncWaiters = new Set<() => void>();
  private running: Promise<void> | null = null;
  private stopped = true;
  private stopping: Promise<void> | null = null;
  private endConnection: ((o: WatchOutcome) => void) | null = null;
  private wakeSleeper: (() => void) | null = null;

  constructor(private readonly options: ReflectorOptions<T>) {
    this.watchClient = new Watch(options.kubeConfig);
    this.backoff = new Backoff(options.backoff);
    this.log = options.logger;
  }

  get isRunning(): boolean {
    return !this.stopped;
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /**
   * Starts list and watch; resolves after the first list attempt, whether or
   * not it succeeded. A start right after a stop that is still winding down
   * waits for it: setting `stopped` back at once would let the old loop,
   * which has not re-checked the flag yet, run on beside the new one (and
   * the stop would never resolve).
   */
  start(): Promise<void> {
    if (this.stopping) return this.stopping.then(() => this.start());
    if (!this.stopped) return Promise.resolve();
    this.stopped = false;
    return new Promise<void>((firstListDone) => {
      this.running = this.run(firstListDone);
    });
  }

  /** Ends the loop and clears the store; concurrent calls share one stop. */
  stop(): Promise<void> {
    this.stopping ??= this.wind().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async wind(): Promise<void> {
    this.stopped = true;
    this.endConnection?.({ kind: "stopped" });
    this.wakeSleeper?.();
    await this.running;
    this.running = null;
    this.synced = false;
    this.store.clear();
    this.lastMessageAt = 0;
    this.resourceVersion = "";
  }

  /** Resolves true once a list has filled the store, false after `timeoutMs` without one. */
  async waitForSync(timeoutMs: number): Promise<boolean> {
    if (this.synced) return true;
    let timer: NodeJS.Timeout | undefined;
    let waiter: () => void = () => {};
    const synced = new Promise<boolean>((resolve) => {
      waiter = () => resolve(true);
      this.syncWaiters.add(waiter);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await synced;
    } finally {
      clearTimeout(timer);
      this.syncWaiters.delete(waiter);
    }
  }

  /**
   * The response of a write this process made: stored when it is newer than
   * what the store holds, so a read right after the write sees it (or
   * something newer). Returns the object the store now holds for that key.
   */
  apply(written: T): T {
    const obj = this.options.transform ? this.options.transform(written) : written;
    const { applied } = this.store.upsert(obj);
    return applied ? obj : (this.store.get(keyOf(obj)) ?? obj);
  }

  /** Seconds since the watch last delivered anything (event or bookmark); null when not watching. */
  lastMessageAgeSeconds(): number | null {
    if (this.stopped || this.lastMessageAt === 0) return null;
    return (Date.now() - this.lastMessageAt) / 1000;
  }

  private async pause(ms: number): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeSleeper = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeSleeper = null;
  }

  private async run(firstListDone: () => void): Promise<void> {
    let needList: string | null = "start";
    let first = true;
    while (!this.stopped) {
      if (needList !== null) {
        needList = await this.tryList(needList, first);
        if (first) firstListDone();
        first = false;
        if (needList !== null) {
          await this.pause(this.backoff.next());
          continue;
        }
      }
      needList = await this.watchAndHandle();
    }
    firstListDone();
  }

  /** One list; null when it filled the store, else why the next one is due. */
  private async tryList(why: string, first: boolean): Promise<string | null> {
    try {
      const listed = await this.options.lister.list();
      const { resourceVersion } = listed;
      if (this.stopped) return null;
      const items = this.options.transform ? listed.items.map(this.options.transform) : listed.items;
      const changes = this.store.replace(items, resourceVersion);
      this.resourceVersion = resourceVersion;
      this.lastMessageAt = Date.now();
      this.backoff.reset();
      this.markSynced();
      this.options.hooks?.onRelist?.(why);
      this.log.debug({ why, objects: items.length, resourceVersion }, `${this.options.kind} list`);
      this.options.listener.onReplace(why, changes, first);
      return null;
    } catch (err) {
      this.log.warn({ err, attempt: this.backoff.attempts + 1 }, `listing ${this.options.kind} objects failed`);
      this.options.hooks?.onWatchError?.(asError(err));
      return "retry";
    }
  }

  private markSynced(): void {
    this.synced = true;
    for (const wake of this.syncWaiters) wake();
    this.syncWaiters.clear();
  }

  /** One watch connection and what follows it; returns why a list is due, or null. */
  private async watchAndHandle(): Promise<string | null> {
    const outcome = await this.watchOnce();
    const kind = this.options.kind;
    switch (outcome.kind) {
      case "stopped":
        return null;
      case "gone":
        this.log.info({ resourceVersion: this.resourceVersion }, `${kind} watch expired (410 Gone); re-listing`);
        return "gone";
      case "silent":
        this.log.warn({ silenceLimitMs: this.options.silenceLimitMs }, `${kind} watch silent too long; re-listing`);
        return "silence";
      case "closed":
        // The API server ends watches at timeoutSeconds; reconnect at once from where we are.
        if (outcome.received) this.backoff.reset();
        else await this.pause(this.backoff.next());
        return null;
      case "error": {
        if (outcome.received) this.backoff.reset();
        const delay = this.backoff.next();
        this.log.warn({ err: outcome.err, retryInMs: Math.round(delay), resourceVersion: this.resourceVersion }, `${kind} watch dropped; reconnecting`);
        this.options.hooks?.onWatchError?.(outcome.err);
        await this.pause(delay);
        return null;
      }
    }
  }

  /** Handles one watch message; returns an outcome when it ends the connection. */
  private onMessage(type: string, apiObj: unknown, received: boolean): WatchOutcome | null {
    this.lastMessageAt = Date.now();
    this.options.hooks?.onWatchMessage?.(type);
    if (type === "ERROR") {
      const status = apiObj as { code?: unknown; message?: unknown } | null;
      if (status?.code === 410) return { kind: "gone" };
      return { kind: "error", err: new Error(`watch ERROR event: ${String(status?.message ?? JSON.stringify(apiObj))}`), received };
    }
    const rv = (apiObj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
    if (typeof rv === "string" && rv !== "" && (type === "BOOKMARK" || this.options.lister.isObject(apiObj))) this.resourceVersion = rv;
    if ((type === "ADDED" || type === "MODIFIED" || type === "DELETED") && this.options.lister.isObject(apiObj)) {
      this.applyEvent(type, this.options.transform ? this.options.transform(apiObj) : apiObj);
    }
    return null;
  }

  private applyEvent(type: WatchEventType, obj: T): void {
    if (type === "DELETED") {
      const before = this.store.remove(obj);
      this.options.listener.onEvent(type, obj, before);
      return;
    }
    const { before, applied } = this.store.upsert(obj);
    // Not applied: this process already stored this version (or a newer one) from its own write.
    if (applied) this.options.listener.onEvent(type, obj, before);
  }

  private watchOnce(): Promise<WatchOutcome> {
    if (this.stopped) return Promise.resolve({ kind: "stopped" });
    return new Promise<WatchOutcome>((resolve) => {
      let settled = false;
      let received = false;
      let controller: AbortController | null = null;
      const silenceLimitMs = this.options.silenceLimitMs;
      this.lastMessageAt = Date.now();
      const silence = setInterval(
        () => {
          if (Date.now() - this.lastMessageAt > silenceLimitMs) finish({ kind: "silent" });
        },
        Math.max(10, Math.min(silenceLimitMs / 4, 10_000)),
      );
      const finish = (outcome: WatchOutcome) => {
        if (settled) return;
        settled = true;
        clearInterval(silence);
        this.endConnection = null;
        controller?.abort();
        resolve(outcome);
      };
      this.endConnection = finish;
      const timeoutSeconds = this.options.watchTimeoutSeconds?.() ?? Math.floor(300 + Math.random() * 300);
      this.watchClient
        .watch(
          this.options.lister.watchPath,
          { ...this.options.lister.watchQuery, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (type: string, apiObj: unknown) => {
            if (settled) return;
            received = true;
            const end = this.onMessage(type, apiObj, received);
            if (end) finish(end);
          },
          (err: unknown) => {
            if (err === null || err === undefined) finish({ kind: "closed", received });
            else if (httpStatusOf(err) === 410) finish({ kind: "gone" });
            else finish({ kind: "error", err: asError(err), received });
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish({ kind: "error", err: asError(err), received }),
        );
    });
  }
}
