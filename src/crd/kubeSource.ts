/**
 * RTMANAGER_SOURCE=kubernetes: desired state lives in GameRuntime objects.
 *
 * - `get` reads the object from the API server (not a cache), so a reconcile
 *   right after a REST write sees that write.
 * - `mutate` is read, decide, then create or replace with the resourceVersion
 *   it read: a concurrent writer (kubectl, another replica) makes the API
 *   server answer 409, and the whole read-decide-write runs again on what is
 *   there now. Nothing is ever written blindly.
 * - `watch` runs an informer: list (remembering the list's resourceVersion),
 *   then watch from it with bookmarks. Every event advances the
 *   resourceVersion; a dropped connection reconnects from it with capped
 *   backoff; `410 Gone` (an ERROR event, or HTTP 410) re-lists, reports every
 *   object that changed across the gap and calls `onResync`.
 * - The finalizer `galaxy.io/runtime-cleanup` is added to every object the
 *   first time it is seen. While an object is being deleted, `get` answers
 *   with desiredState `removed`, so the loop stops and removes the container
 *   (keeping the state directory); `finalizeIfDeleting` then lets the object go.
 */
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { checkedSpecFor, describeZodError, RuntimeSpecSchema, specOf, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import type { DeclarationMutator, DeclarationSource, DeclarationWatch, WriteMeta } from "../model/ports.js";
import { OP_SOURCES, type OpSource } from "../model/status.js";
import {
  ANNOTATION_GENERATION_BASE,
  ANNOTATION_OP_GENERATION,
  ANNOTATION_OP_ID,
  ANNOTATION_OP_SOURCE,
  API_VERSION,
  FINALIZER,
  GameRuntimeApi,
  httpStatusOf,
  isGameRuntimeObject,
  KIND,
  toApiRtmError,
  type GameRuntimeObject,
  type ObjectRef,
} from "./api.js";

/**
 * Lets a GameRuntime that is being deleted go once its container is gone.
 * The reconciler calls it after each reconcile of a game whose declaration
 * is `removed`; it is a no-op for objects that are not being deleted.
 */
export interface Finalizer {
  finalizeIfDeleting(gameId: string, containerGone: boolean): Promise<void>;
}

export interface KubernetesSourceHooks {
  /** Every message on the watch (events and bookmarks): feed a "last watch message" gauge. */
  onWatchMessage?(type: string): void;
  /** A list replaced the index: `start`, `gone` (410), `silence`, or `retry`. */
  onRelist?(why: string): void;
  /** The watch connection ended other than by stop(); the informer reconnects. */
  onWatchError?(err: Error): void;
}

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  /** Watch and read this namespace only; undefined or "" = every namespace. */
  namespace?: string;
  /** Where `mutate` creates objects that do not exist yet. Default: `namespace`, else "default". */
  createNamespace?: string;
  logger: Logger;
  /**
   * The highest generation the loop has recorded for a game (its record's
   * observedGeneration), or 0. Becomes the generation base of an object seen
   * for the first time, so a re-created GameRuntime never looks older than
   * what the loop already did for that game. Absent: 0.
   */
  generationFloor?: (gameId: string) => Promise<number>;
  /** Re-list when the watch was silent this long (RTMANAGER_WATCH_SILENCE_LIMIT). Default 5 min. */
  silenceLimitMs?: number;
  /** Reconnect backoff: doubles from baseMs up to maxMs, with jitter. Default 250 ms .. 30 s. */
  backoff?: { baseMs: number; maxMs: number };
  /** Read-decide-write attempts of `mutate` before giving up on a game that keeps changing. Default 5. */
  mutateAttempts?: number;
  /** Server-side timeout asked of each watch request. Default: random 5..10 min, like client-go. */
  watchTimeoutSeconds?: () => number;
  hooks?: KubernetesSourceHooks;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function isOpSource(value: unknown): value is OpSource {
  return typeof value === "string" && (OP_SOURCES as readonly string[]).includes(value);
}

export function toDate(value: unknown): Date | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value === "string" || typeof value === "number") {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}

/** The generation base annotation, or 0. */
export function generationBaseOf(obj: GameRuntimeObject): number {
  const raw = obj.metadata.annotations?.[ANNOTATION_GENERATION_BASE];
  const n = raw === undefined ? 0 : Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

export function isDeleting(obj: GameRuntimeObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined && obj.metadata.deletionTimestamp !== null;
}

function hasFinalizer(obj: GameRuntimeObject): boolean {
  return (obj.metadata.finalizers ?? []).includes(FINALIZER);
}

function isAdopted(obj: GameRuntimeObject): boolean {
  return hasFinalizer(obj) && obj.metadata.annotations?.[ANNOTATION_GENERATION_BASE] !== undefined;
}

/** The spec as the loop sees it: undefined fields dropped, so two specs compare by JSON. */
export function canonicalSpec(spec: RuntimeSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(RuntimeSpecSchema.shape).sort()) {
    const value = (spec as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const obj = value as Record<string, unknown>;
      out[key] = Object.fromEntries(
        Object.keys(obj)
          .sort()
          .filter((k) => obj[k] !== undefined)
          .map((k) => [k, obj[k]]),
      );
    } else out[key] = value;
  }
  return out;
}

function sameSpec(a: RuntimeSpec, b: RuntimeSpec): boolean {
  return JSON.stringify(canonicalSpec(a)) === JSON.stringify(canonicalSpec(b));
}

/**
 * The declaration an object stands for. A spec that fails the schema (or
 * names another game than the object) is start_config_invalid, except while
 * the object is being deleted: then whatever it says, the answer is
 * "removed", so a broken object can still be cleaned up and let go.
 */
export function declarationOf(obj: GameRuntimeObject): Declaration {
  const name = obj.metadata.name;
  const where = `GameRuntime ${obj.metadata.namespace}/${name}`;
  const annotations = obj.metadata.annotations ?? {};
  const objectGeneration = obj.metadata.generation ?? 1;
  const generation = objectGeneration + generationBaseOf(obj);
  const createdAt = toDate(obj.metadata.creationTimestamp) ?? new Date(0);
  const managedTimes = (obj.metadata.managedFields ?? []).map((f) => toDate(f.time)?.getTime() ?? 0);
  const updatedAt = new Date(Math.max(createdAt.getTime(), ...managedTimes));
  const deleting = isDeleting(obj);

  const parsed = RuntimeSpecSchema.safeParse(obj.spec);
  let problem: string | null = null;
  if (!parsed.success) problem = `spec does not pass the schema: ${describeZodError(parsed.error)}`;
  else if (parsed.data.gameId !== name) problem = `spec.gameId ${JSON.stringify(parsed.data.gameId)} must equal metadata.name ${JSON.stringify(name)}`;

  if (problem !== null && !deleting) {
    throw new RtmError("start_config_invalid", `${where}: ${problem}`, { gameId: name, namespace: obj.metadata.namespace });
  }
  // The REST writer's op id counts only for the generation it wrote; a later
  // change (kubectl edit, apply) is the cluster's.
  const byLastWriter = annotations[ANNOTATION_OP_GENERATION] === String(objectGeneration) && !deleting;
  const opSource: OpSource = byLastWriter && isOpSource(annotations[ANNOTATION_OP_SOURCE]) ? (annotations[ANNOTATION_OP_SOURCE] as OpSource) : "kubernetes";
  const meta = {
    generation,
    opId: byLastWriter ? (annotations[ANNOTATION_OP_ID] ?? null) : null,
    opSource,
    createdAt,
    updatedAt,
  };
  if (parsed.success && problem === null) {
    return { ...parsed.data, ...(deleting ? { desiredState: "removed" as const } : {}), ...meta };
  }
  const raw = (typeof obj.spec === "object" && obj.spec !== null ? obj.spec : {}) as { imageRef?: unknown };
  return {
    gameId: name,
    imageRef: typeof raw.imageRef === "string" ? raw.imageRef : "unknown:0.0.0",
    desiredState: "removed",
    restartPolicy: "never",
    ...meta,
  };
}

/** One async critical section per key: mutate and adoption of one game never overlap in this process. */
class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}

type WatchOutcome =
  | { kind: "closed"; received: boolean }
  | { kind: "error"; err: Error; received: boolean }
  | { kind: "gone" }
  | { kind: "silent" }
  | { kind: "stopped" };

/** What changes the loop's view of an object; status-only and unrelated metadata writes do not wake it. */
function fingerprint(obj: GameRuntimeObject): string {
  return JSON.stringify([
    obj.metadata.uid ?? "",
    obj.metadata.generation ?? 0,
    obj.metadata.annotations?.[ANNOTATION_GENERATION_BASE] ?? "",
    isDeleting(obj),
    hasFinalizer(obj),
  ]);
}

export class KubernetesDeclarationSource implements DeclarationSource, Finalizer {
  readonly api: GameRuntimeApi;
  private readonly namespace: string | undefined;
  private readonly createNamespace: string;
  private readonly logger: Logger;
  private readonly locks = new KeyedLock();
  private readonly watchClient: Watch;
  private readonly handlers = new Set<DeclarationWatch>();
  private readonly silenceLimitMs: number;
  private readonly backoff: { baseMs: number; maxMs: number };

  /** name -> namespace -> object, as last listed or watched. */
  private index = new Map<string, Map<string, GameRuntimeObject>>();
  private synced = false;
  private resourceVersion = "";
  private lastMessageAt = 0;
  private running: Promise<void> | null = null;
  private stopped = true;
  private endConnection: ((o: WatchOutcome) => void) | null = null;
  private wakeSleeper: (() => void) | null = null;
  private readonly adopting = new Set<string>();

  constructor(private readonly options: KubernetesSourceOptions) {
    this.api = new GameRuntimeApi(options.kubeConfig);
    this.namespace = options.namespace ? options.namespace : undefined;
    this.createNamespace = options.createNamespace || this.namespace || "default";
    this.logger = options.logger.child({ component: "kube-source" });
    this.watchClient = new Watch(options.kubeConfig);
    this.silenceLimitMs = options.silenceLimitMs ?? 5 * 60_000;
    this.backoff = options.backoff ?? { baseMs: 250, maxMs: 30_000 };
  }

  // ---------------------------------------------------------------- reads

  /** The object of a game, fresh from the API server; null when there is none. */
  async read(gameId: string): Promise<GameRuntimeObject | null> {
    if (!GameIdSchema.safeParse(gameId).success) return null;
    try {
      if (this.namespace !== undefined) return await this.api.get({ namespace: this.namespace, name: gameId });
      const { items } = await this.api.list(undefined, `metadata.name=${gameId}`);
      const matching = items.filter((o) => o.metadata.name === gameId);
      if (matching.length > 1) {
        const where = matching.map((o) => o.metadata.namespace).join(", ");
        throw new RtmError("start_config_invalid", `game ${gameId} is declared by GameRuntime objects in several namespaces (${where}); delete all but one`, {
          gameId,
        });
      }
      return matching[0] ?? null;
    } catch (err) {
      throw toApiRtmError(err, `reading GameRuntime ${gameId}`);
    }
  }

  /** The object as last seen by the watch (undefined: not watching, or not seen). */
  cached(gameId: string): GameRuntimeObject | undefined {
    const byNs = this.index.get(gameId);
    if (!byNs || byNs.size !== 1) return undefined;
    return [...byNs.values()][0];
  }

  async get(gameId: string): Promise<Declaration | null> {
    const obj = await this.read(gameId);
    if (!obj) return null;
    return declarationOf(await this.adopt(obj));
  }

  async listGameIds(): Promise<string[]> {
    if (this.synced && !this.stopped) return [...this.index.keys()].sort();
    try {
      const { items } = await this.api.list(this.namespace);
      return [...new Set(items.map((o) => o.metadata.name))].sort();
    } catch (err) {
      throw toApiRtmError(err, "listing GameRuntime objects");
    }
  }

  /** Seconds since the watch last delivered anything (event or bookmark); null when not watching. */
  lastWatchMessageAgeSeconds(): number | null {
    if (this.stopped || this.lastMessageAt === 0) return null;
    return (Date.now() - this.lastMessageAt) / 1000;
  }

  // ---------------------------------------------------------------- writes

  async mutate(gameId: string, mutate: DeclarationMutator, meta: WriteMeta): Promise<{ declaration: Declaration | null; changed: boolean }> {
    const id = GameIdSchema.safeParse(gameId);
    if (!id.success) throw new RtmError("invalid_request", id.error.issues[0]?.message ?? "invalid game_id");
    const attempts = this.options.mutateAttempts ?? 5;
    return this.locks.run(gameId, async () => {
      for (let attempt = 1; ; attempt++) {
        let obj = await this.read(gameId);
        if (obj) obj = await this.adoptLocked(obj);
        const current = obj ? declarationOf(obj) : null;
        const next = mutate(current);
        if (next === null) return { declaration: current, changed: false };

        const spec = checkedSpecFor(gameId, next);
        if (current && sameSpec(specOf(current), spec)) return { declaration: current, changed: false };
        if (obj && isDeleting(obj)) {
          throw new RtmError("conflict", `GameRuntime ${obj.metadata.namespace}/${gameId} is being deleted; start it again once it is gone`);
        }

        try {
          const written = obj ? await this.replaceSpec(obj, spec, meta) : await this.createObject(gameId, spec, meta);
          return { declaration: declarationOf(written), changed: true };
        } catch (err) {
          // 409: stale resourceVersion (replace) or created meanwhile (create). Read again and decide again.
          if (httpStatusOf(err) === 409 && attempt < attempts) {
            this.logger.debug({ gameId, attempt }, "GameRuntime changed under a write; retrying");
            await sleep(Math.random() * 50 * attempt);
            continue;
          }
          if (httpStatusOf(err) === 409) {
            throw new RtmError("conflict", `GameRuntime ${gameId} kept changing during ${attempts} write attempts; retry`, { gameId }, { cause: err });
          }
          throw toApiRtmError(err, `writing GameRuntime ${gameId}`);
        }
      }
    });
  }

  private opAnnotations(meta: WriteMeta, nextObjectGeneration: number): Record<string, string> {
    return {
      [ANNOTATION_OP_ID]: meta.opId,
      [ANNOTATION_OP_SOURCE]: meta.opSource,
      [ANNOTATION_OP_GENERATION]: String(nextObjectGeneration),
    };
  }

  private async createObject(gameId: string, spec: RuntimeSpec, meta: WriteMeta): Promise<GameRuntimeObject> {
    const base = await this.floor(gameId);
    return this.api.create({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {
        name: gameId,
        namespace: this.createNamespace,
        finalizers: [FINALIZER],
        annotations: { ...this.opAnnotations(meta, 1), [ANNOTATION_GENERATION_BASE]: String(base) },
      },
      spec: canonicalSpec(spec),
    });
  }

  private async replaceSpec(obj: GameRuntimeObject, spec: RuntimeSpec, meta: WriteMeta): Promise<GameRuntimeObject> {
    const { managedFields: _m, ...metadata } = obj.metadata;
    return this.api.replace({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        ...metadata,
        annotations: { ...obj.metadata.annotations, ...this.opAnnotations(meta, (obj.metadata.generation ?? 1) + 1) },
      },
      spec: canonicalSpec(spec),
    });
  }

  async delete(gameId: string): Promise<boolean> {
    const obj = await this.read(gameId);
    if (!obj) return false;
    try {
      return await this.api.delete({ namespace: obj.metadata.namespace, name: gameId });
    } catch (err) {
      throw toApiRtmError(err, `deleting GameRuntime ${gameId}`);
    }
  }

  // ---------------------------------------------------------------- finalizer

  private async floor(gameId: string): Promise<number> {
    if (!this.options.generationFloor) return 0;
    const n = await this.options.generationFloor(gameId);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }

  /** Adds the finalizer and the generation base to an object that lacks them. */
  private adopt(obj: GameRuntimeObject): Promise<GameRuntimeObject> {
    if (isAdopted(obj) || isDeleting(obj)) return Promise.resolve(obj);
    return this.locks.run(obj.metadata.name, () => this.adoptLocked(obj));
  }

  private async adoptLocked(first: GameRuntimeObject): Promise<GameRuntimeObject> {
    let obj: GameRuntimeObject | null = first;
    for (let attempt = 1; obj && !isAdopted(obj) && !isDeleting(obj); attempt++) {
      const ref = refOf(obj);
      const annotations: Record<string, string> = {};
      if (obj.metadata.annotations?.[ANNOTATION_GENERATION_BASE] === undefined) {
        annotations[ANNOTATION_GENERATION_BASE] = String(await this.floor(obj.metadata.name));
      }
      const finalizers = hasFinalizer(obj) ? (obj.metadata.finalizers ?? []) : [...(obj.metadata.finalizers ?? []), FINALIZER];
      try {
        // The resourceVersion makes the merge patch conditional: finalizers is a list, replaced whole.
        obj = await this.api.patch(ref, { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers, annotations } });
        this.logger.info({ gameId: ref.name, namespace: ref.namespace }, "GameRuntime adopted (finalizer added)");
      } catch (err) {
        const status = httpStatusOf(err);
        if (status === 404) return first;
        if (status !== 409 || attempt >= 5) throw toApiRtmError(err, `adding the finalizer to GameRuntime ${ref.namespace}/${ref.name}`);
        obj = await this.api.get(ref).catch((e: unknown) => {
          throw toApiRtmError(e, `reading GameRuntime ${ref.namespace}/${ref.name}`);
        });
      }
    }
    return obj ?? first;
  }

  /**
   * Removes the finalizer of a GameRuntime that is being deleted, once its
   * container is gone. Conditional on the resourceVersion read; retried on
   * 409. A missing object (already gone) is fine.
   */
  async finalizeIfDeleting(gameId: string, containerGone: boolean): Promise<void> {
    if (!containerGone) return;
    const seen = this.cached(gameId);
    if (seen && !isDeleting(seen)) return;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const obj = await this.read(gameId);
      if (!obj || !isDeleting(obj) || !hasFinalizer(obj)) return;
      const finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
      try {
        await this.api.patch(refOf(obj), { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers } });
        this.logger.info({ gameId, namespace: obj.metadata.namespace }, "container gone: GameRuntime finalizer removed");
        return;
      } catch (err) {
        const status = httpStatusOf(err);
        if (status === 404) return;
        if (status !== 409 || attempt === 5) throw toApiRtmError(err, `removing the finalizer of GameRuntime ${gameId}`);
      }
    }
  }

  // ---------------------------------------------------------------- informer

  /**
   * Starts the informer (once, shared by all handlers) and waits for its
   * first list, so `listGameIds` answers from the index right after. A first
   * list that fails does not throw: the informer keeps retrying and calls
   * `onResync` when it gets through.
   */
  async watch(handler: DeclarationWatch): Promise<() => Promise<void>> {
    this.handlers.add(handler);
    if (this.stopped) {
      this.stopped = false;
      let firstListDone: () => void = () => {};
      const first = new Promise<void>((resolve) => (firstListDone = resolve));
      this.running = this.run(firstListDone);
      await first;
    }
    return async () => {
      this.handlers.delete(handler);
      if (this.handlers.size === 0) await this.stopInformer();
    };
  }

  private async stopInformer(): Promise<void> {
    this.stopped = true;
    this.endConnection?.({ kind: "stopped" });
    this.wakeSleeper?.();
    await this.running;
    this.running = null;
    this.synced = false;
    this.index = new Map();
    this.lastMessageAt = 0;
  }

  private backoffMs(failures: number): number {
    const exp = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.max(0, failures - 1));
    return exp / 2 + Math.random() * (exp / 2);
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
    let announce = false;
    let failures = 0;
    while (!this.stopped) {
      if (needList !== null) {
        try {
          await this.relist(needList, announce);
          needList = null;
          failures = 0;
        } catch (err) {
          failures++;
          const delay = this.backoffMs(failures);
          this.logger.warn({ err: (err as Error).message, retryInMs: Math.round(delay) }, "listing GameRuntime objects failed");
          this.options.hooks?.onWatchError?.(err as Error);
          needList = "retry";
        }
        if (announce === false) firstListDone();
        // Every list after the one watch() waited for fills a gap: announce it.
        announce = true;
        if (needList !== null) {
          await this.pause(this.backoffMs(failures));
          continue;
        }
      }
      const outcome = await this.watchOnce();
      switch (outcome.kind) {
        case "stopped":
          return;
        case "gone":
          this.logger.info({ resourceVersion: this.resourceVersion }, "GameRuntime watch expired (410 Gone); re-listing");
          needList = "gone";
          break;
        case "silent":
          this.logger.warn({ silenceLimitMs: this.silenceLimitMs }, "GameRuntime watch silent too long; re-listing");
          needList = "silence";
          break;
        case "closed":
          // The API server ends watches at timeoutSeconds; reconnect at once from where we are.
          if (outcome.received) failures = 0;
          else {
            failures++;
            await this.pause(this.backoffMs(failures));
          }
          break;
        case "error": {
          failures = outcome.received ? 1 : failures + 1;
          const delay = this.backoffMs(failures);
          this.logger.warn({ err: outcome.err.message, retryInMs: Math.round(delay), resourceVersion: this.resourceVersion }, "GameRuntime watch dropped; reconnecting");
          this.options.hooks?.onWatchError?.(outcome.err);
          await this.pause(delay);
          break;
        }
      }
    }
  }

  private async relist(why: string, announce: boolean): Promise<void> {
    const { items, resourceVersion } = await this.api.list(this.namespace);
    const previous = this.index;
    const next = new Map<string, Map<string, GameRuntimeObject>>();
    for (const obj of items) {
      const byNs = next.get(obj.metadata.name) ?? new Map<string, GameRuntimeObject>();
      byNs.set(obj.metadata.namespace, obj);
      next.set(obj.metadata.name, byNs);
    }
    this.index = next;
    this.resourceVersion = resourceVersion;
    this.synced = true;
    this.lastMessageAt = Date.now();
    this.options.hooks?.onRelist?.(why);
    this.logger.debug({ why, objects: items.length, resourceVersion }, "GameRuntime list");
    for (const obj of items) this.adoptInBackground(obj);
    if (!announce) return;
    // Whatever changed while we were not watching: each key once, then a full resync.
    const changed = new Set<string>();
    for (const name of new Set([...previous.keys(), ...next.keys()])) {
      const a = previous.get(name);
      const b = next.get(name);
      const rvs = (m: Map<string, GameRuntimeObject> | undefined) =>
        JSON.stringify([...(m ?? new Map<string, GameRuntimeObject>()).values()].map((o) => [o.metadata.namespace, o.metadata.resourceVersion]).sort());
      if (rvs(a) !== rvs(b)) changed.add(name);
    }
    for (const name of changed) this.emitChange(name);
    for (const h of this.handlers) h.onResync();
  }

  private emitChange(gameId: string): void {
    for (const h of this.handlers) h.onChange(gameId);
  }

  private adoptInBackground(obj: GameRuntimeObject): void {
    if (isAdopted(obj) || isDeleting(obj)) return;
    const key = `${obj.metadata.namespace}/${obj.metadata.name}`;
    if (this.adopting.has(key)) return;
    this.adopting.add(key);
    void this.adopt(obj)
      .catch((err: unknown) => this.logger.warn({ gameId: obj.metadata.name, err: (err as Error).message }, "could not add the finalizer; get() retries"))
      .finally(() => this.adopting.delete(key));
  }

  private applyEvent(type: "ADDED" | "MODIFIED" | "DELETED", obj: GameRuntimeObject): void {
    const { name, namespace } = obj.metadata;
    const byNs = this.index.get(name) ?? new Map<string, GameRuntimeObject>();
    const before = byNs.get(namespace);
    if (type === "DELETED") {
      byNs.delete(namespace);
      if (byNs.size === 0) this.index.delete(name);
      this.emitChange(name);
      return;
    }
    byNs.set(namespace, obj);
    this.index.set(name, byNs);
    if (type === "ADDED" || !before || fingerprint(before) !== fingerprint(obj)) this.emitChange(name);
    this.adoptInBackground(obj);
  }

  private watchOnce(): Promise<WatchOutcome> {
    if (this.stopped) return Promise.resolve({ kind: "stopped" });
    return new Promise<WatchOutcome>((resolve) => {
      let settled = false;
      let received = false;
      let controller: AbortController | null = null;
      this.lastMessageAt = Date.now();
      const silence = setInterval(
        () => {
          if (Date.now() - this.lastMessageAt > this.silenceLimitMs) finish({ kind: "silent" });
        },
        Math.max(10, Math.min(this.silenceLimitMs / 4, 10_000)),
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
          this.api.watchPath(this.namespace),
          { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          (type: string, apiObj: unknown) => {
            if (settled) return;
            received = true;
            this.lastMessageAt = Date.now();
            this.options.hooks?.onWatchMessage?.(type);
            if (type === "ERROR") {
              const status = apiObj as { code?: unknown; message?: unknown };
              if (status?.code === 410) finish({ kind: "gone" });
              else finish({ kind: "error", err: new Error(`watch ERROR event: ${String(status?.message ?? JSON.stringify(apiObj))}`), received });
              return;
            }
            const rv = (apiObj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
            if (type === "BOOKMARK") {
              if (typeof rv === "string" && rv !== "") this.resourceVersion = rv;
              return;
            }
            if ((type === "ADDED" || type === "MODIFIED" || type === "DELETED") && isGameRuntimeObject(apiObj)) {
              if (typeof rv === "string" && rv !== "") this.resourceVersion = rv;
              this.applyEvent(type, apiObj);
            }
          },
          (err: unknown) => {
            if (err === null || err === undefined) finish({ kind: "closed", received });
            else if (httpStatusOf(err) === 410) finish({ kind: "gone" });
            else finish({ kind: "error", err: err instanceof Error ? err : new Error(String(err)), received });
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) c.abort();
          },
          (err: unknown) => finish({ kind: "error", err: err instanceof Error ? err : new Error(String(err)), received }),
        );
    });
  }
}

function refOf(obj: GameRuntimeObject): ObjectRef {
  return { namespace: obj.metadata.namespace, name: obj.metadata.name };
}
