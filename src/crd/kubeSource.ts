/**
 * RTMANAGER_SOURCE=kubernetes: desired state lives in GameRuntime objects.
 *
 * - Reads (`get`, `listGameIds`, the status writer, the event recorder) come
 *   from a reflector's store (reflector.ts), started by the first read or
 *   watch and kept until `close()`. A read never writes.
 * - Read-your-writes: every write's response goes into the store before the
 *   write returns (when it is newer than what the store holds), so the
 *   reconcile that follows a REST write sees that write.
 * - `mutate` is read, decide, then create or replace with the resourceVersion
 *   it read: a concurrent writer makes the API server answer 409, and the
 *   read-decide-write runs again on a fresh GET. Nothing is written blindly.
 * - The finalizer `galaxy.io/runtime-cleanup` and the generation base are
 *   added by `ensureFinalizer`, a reconcile step. While an object is being
 *   deleted it is declared `removed`; `finalizeIfDeleting` lets it go once its
 *   container is gone.
 * - One owner per game id (owner.ts): every read answers the recorded owner's
 *   object only; `ensureFinalizer` claims the id in the store before it
 *   adopts. Objects a read passes over are reported to the picker's
 *   listeners (a Warning Event, the Conflict status), never written here.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { jitteredBackoff, type BackoffSettings } from "../model/backoff.js";
import { checkedSpecFor, specOf, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import type { GameOwners } from "../model/owner.js";
import type { DeclarationMutator, DeclarationSource, DeclarationWatch, WriteMeta } from "../model/ports.js";
import {
  ANNOTATION_GENERATION_BASE,
  ANNOTATION_OP_GENERATION,
  ANNOTATION_OP_ID,
  ANNOTATION_OP_SOURCE,
  API_VERSION,
  FINALIZER,
  GameRuntimeApi,
  isGameRuntimeObject,
  KIND,
  toApiRtmError,
  type GameRuntimeObject,
  type ObjectRef,
} from "./api.js";
import { KeyedLock } from "./keyedLock.js";
import { OwnerPicker } from "./owner.js";
import { annotatedGenerationBase, canonicalSpec, declarationOf, fingerprint, hasFinalizer, isAdopted, isDeleting, sameSpec, specForObject } from "./gameRuntimeMapping.js";
import { httpStatusOf } from "../kube/api.js";
import { Reflector, type ReflectorHooks } from "../kube/reflector.js";

export { canonicalSpec, declarationOf, generationBaseOf, isDeleting, toDate } from "./gameRuntimeMapping.js";

/**
 * The reconciler's hooks into the object's lifecycle. `ensureFinalizer` runs
 * before a reconcile reads the declaration; `finalizeIfDeleting` after each
 * reconcile of a game declared `removed`.
 */
export interface Finalizer {
  ensureFinalizer(gameId: string): Promise<void>;
  finalizeIfDeleting(gameId: string, containerGone: boolean): Promise<void>;
}

export type KubernetesSourceHooks = ReflectorHooks;

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
  backoff?: BackoffSettings;
  /** Read-decide-write attempts of `mutate` before giving up on a game that keeps changing. Default 5. */
  mutateAttempts?: number;
  /** How long a read waits for the first list before answering service_unavailable. Default 10 s. */
  syncTimeoutMs?: number;
  /** Server-side timeout asked of each watch request. Default: random 5..10 min, like client-go. */
  watchTimeoutSeconds?: () => number;
  hooks?: KubernetesSourceHooks;
  /** The store's record of game id owners (owner.ts). Absent: owners are picked in memory only, as before migration 6. */
  owners?: GameOwners;
}

/** 409 retries of one write: a short jittered pause so two writers do not collide again at once. */
const CONFLICT_BACKOFF: BackoffSettings = { baseMs: 25, maxMs: 400 };
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function refOf(obj: GameRuntimeObject): ObjectRef {
  return { namespace: obj.metadata.namespace, name: obj.metadata.name };
}

export class KubernetesDeclarationSource implements DeclarationSource, Finalizer {
  readonly api: GameRuntimeApi;
  private readonly namespace: string | undefined;
  private readonly createNamespace: string;
  private readonly logger: Logger;
  private readonly locks = new KeyedLock();
  private readonly handlers = new Set<DeclarationWatch>();
  private readonly reflector: Reflector<GameRuntimeObject>;
  /** Who owns a game id several namespaces name; `owners.onConflict` hears of each ignored claimer. */
  readonly owners: OwnerPicker;

  constructor(private readonly options: KubernetesSourceOptions) {
    this.api = new GameRuntimeApi(options.kubeConfig);
    this.namespace = options.namespace ? options.namespace : undefined;
    this.createNamespace = options.createNamespace || this.namespace || "default";
    this.logger = options.logger.child({ component: "kube-source" });
    this.owners = new OwnerPicker(this.logger, options.owners ?? null);
    this.reflector = new Reflector<GameRuntimeObject>({
      kind: KIND,
      kubeConfig: options.kubeConfig,
      lister: { list: () => this.api.list(this.namespace), watchPath: this.api.watchPath(this.namespace), isObject: isGameRuntimeObject },
      logger: this.logger,
      silenceLimitMs: options.silenceLimitMs ?? 5 * 60_000,
      backoff: options.backoff ?? { baseMs: 250, maxMs: 30_000 },
      watchTimeoutSeconds: options.watchTimeoutSeconds,
      hooks: options.hooks,
      listener: {
        onEvent: (type, obj, before) => {
          if (type !== "MODIFIED" || !before || fingerprint(before) !== fingerprint(obj)) this.emitChange(obj.metadata.name);
        },
        onReplace: (_why, changes, first) => {
          // Every list after the first fills a gap: each changed game once, then a full resync.
          if (first) return;
          for (const name of new Set(changes.map((c) => (c.after ?? c.before)!.metadata.name))) this.emitChange(name);
          for (const h of this.handlers) h.onResync();
        },
      },
    });
  }

  // ---------------------------------------------------------------- reads (from the store)

  /** Starts the reflector if it is not running, and waits (bounded) for its first list. */
  private async synced(): Promise<void> {
    if (!this.reflector.isRunning) await this.reflector.start();
    if (this.reflector.hasSynced) return;
    if (!(await this.reflector.waitForSync(this.options.syncTimeoutMs ?? 10_000))) {
      throw new RtmError("service_unavailable", "Kubernetes API unreachable: GameRuntime objects could not be listed yet");
    }
  }

  /** The store's object for a game: its owner when several namespaces name it (owner.ts). */
  private lookup(gameId: string): GameRuntimeObject | null {
    return this.owners.pick(gameId, this.reflector.store.byName(gameId));
  }

  /** The object of a game as the store holds it; null when there is none. */
  async read(gameId: string): Promise<GameRuntimeObject | null> {
    if (!GameIdSchema.safeParse(gameId).success) return null;
    await this.synced();
    await this.owners.load(gameId);
    return this.lookup(gameId);
  }

  /** The object as the store holds it now, without waiting (undefined: not synced, not seen, or ambiguous). */
  cached(gameId: string): GameRuntimeObject | undefined {
    try {
      return this.lookup(gameId) ?? undefined;
    } catch {
      return undefined;
    }
  }

  async get(gameId: string): Promise<Declaration | null> {
    const obj = await this.read(gameId);
    if (!obj) return null;
    // Not adopted yet: the base ensureFinalizer would write now, so the generation does not jump when it does.
    const base = annotatedGenerationBase(obj) === undefined ? await this.floor(gameId) : 0;
    return declarationOf(obj, base);
  }

  async listGameIds(): Promise<string[]> {
    await this.synced();
    return this.reflector.store.allNames().sort();
  }

  /** Seconds since the watch last delivered anything (event or bookmark); null when not watching. */
  lastWatchMessageAgeSeconds(): number | null {
    return this.reflector.lastMessageAgeSeconds();
  }

  // ---------------------------------------------------------------- writes

  /**
   * A GET from the API server, for a retry after 409. What it finds, like the
   * response of every write, goes into the store (`reflector.apply`), so the
   * next read sees it.
   */
  private async fresh(gameId: string): Promise<GameRuntimeObject | null> {
    try {
      if (this.namespace !== undefined) {
        const obj = await this.api.get({ namespace: this.namespace, name: gameId });
        return obj ? this.reflector.apply(obj) : null;
      }
      for (const o of (await this.api.list(undefined, `metadata.name=${gameId}`)).items) if (o.metadata.name === gameId) this.reflector.apply(o);
      return this.lookup(gameId);
    } catch (err) {
      throw toApiRtmError(err, `reading GameRuntime ${gameId}`);
    }
  }

  async mutate(gameId: string, mutate: DeclarationMutator, meta: WriteMeta): Promise<{ declaration: Declaration | null; changed: boolean }> {
    const id = GameIdSchema.safeParse(gameId);
    if (!id.success) throw new RtmError("invalid_request", id.error.issues[0]?.message ?? "invalid game_id");
    const attempts = this.options.mutateAttempts ?? 5;
    return this.locks.run(gameId, async () => {
      for (let attempt = 1; ; attempt++) {
        const obj = attempt === 1 ? await this.read(gameId) : await this.fresh(gameId);
        const base = obj && annotatedGenerationBase(obj) === undefined ? await this.floor(gameId) : 0;
        const current = obj ? declarationOf(obj, base) : null;
        const next = mutate(current);
        if (next === null) return { declaration: current, changed: false };

        const spec = checkedSpecFor(gameId, next);
        if (current && sameSpec(specOf(current), spec)) return { declaration: current, changed: false };
        if (obj && isDeleting(obj)) {
          throw new RtmError("conflict", `GameRuntime ${obj.metadata.namespace}/${gameId} is being deleted; start it again once it is gone`);
        }
        if (!obj) this.owners.assertCreatable(gameId, this.createNamespace);

        try {
          const written = obj ? await this.replaceSpec(obj, spec, meta, base) : await this.createObject(gameId, spec, meta);
          return { declaration: declarationOf(this.reflector.apply(written)), changed: true };
        } catch (err) {
          // 409: stale resourceVersion (replace) or created meanwhile (create). Read again and decide again.
          if (httpStatusOf(err) === 409 && attempt < attempts) {
            this.logger.debug({ gameId, attempt }, "GameRuntime changed under a write; retrying");
            await sleep(jitteredBackoff(attempt, CONFLICT_BACKOFF));
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
      spec: specForObject(canonicalSpec(spec)),
    });
  }

  /** PUT of the new spec; adopts the object in the same write when it was not yet. */
  private async replaceSpec(obj: GameRuntimeObject, spec: RuntimeSpec, meta: WriteMeta, base: number): Promise<GameRuntimeObject> {
    const { managedFields: _m, ...metadata } = obj.metadata;
    const adoption: Record<string, string> = annotatedGenerationBase(obj) === undefined ? { [ANNOTATION_GENERATION_BASE]: String(base) } : {};
    return this.api.replace({
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: {
        ...metadata,
        finalizers: hasFinalizer(obj) ? metadata.finalizers : [...(metadata.finalizers ?? []), FINALIZER],
        annotations: { ...obj.metadata.annotations, ...adoption, ...this.opAnnotations(meta, (obj.metadata.generation ?? 1) + 1) },
      },
      spec: specForObject(canonicalSpec(spec)),
    });
  }

  async delete(gameId: string): Promise<boolean> {
    const obj = (await this.read(gameId)) ?? (await this.fresh(gameId));
    if (!obj) return false;
    try {
      return await this.api.delete(refOf(obj));
    } catch (err) {
      throw toApiRtmError(err, `deleting GameRuntime ${gameId}`);
    }
  }

  /** JSON merge patch of an object's status subresource; the response goes into the store. False: the object is gone. */
  async patchStatus(ref: ObjectRef, body: object): Promise<boolean> {
    try {
      this.reflector.apply(await this.api.patchStatus(ref, body));
      return true;
    } catch (err) {
      if (httpStatusOf(err) === 404) return false;
      throw err;
    }
  }

  // ---------------------------------------------------------------- finalizer

  private async floor(gameId: string): Promise<number> {
    if (!this.options.generationFloor) return 0;
    const n = await this.options.generationFloor(gameId);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }

  /**
   * Conditional merge patches of one object, each computed from the object
   * as last read, retried on a fresh GET after 409. `patchFor` answers null
   * when nothing (more) is to be written.
   */
  private async patchLoop(gameId: string, what: string, patchFor: (obj: GameRuntimeObject) => Promise<object | null>): Promise<GameRuntimeObject | null> {
    let obj = await this.read(gameId);
    for (let attempt = 1; obj; attempt++) {
      const patch = await patchFor(obj);
      if (patch === null) return null;
      try {
        // The resourceVersion makes the merge patch conditional: finalizers is a list, replaced whole.
        return this.reflector.apply(await this.api.patch(refOf(obj), { metadata: { resourceVersion: obj.metadata.resourceVersion, ...patch } }));
      } catch (err) {
        const status = httpStatusOf(err);
        if (status === 404) return null;
        if (status !== 409 || attempt >= 5) throw toApiRtmError(err, `${what} GameRuntime ${obj.metadata.namespace}/${gameId}`);
        obj = await this.fresh(gameId);
      }
    }
    return null;
  }

  /** Adds the finalizer and the generation base to a game's object that lacks them. A reconcile step. */
  async ensureFinalizer(gameId: string): Promise<void> {
    if (!GameIdSchema.safeParse(gameId).success) return;
    // The owner is recorded before anything is adopted: a claim that loses leaves the object ignored, never adopted.
    await this.synced();
    await this.owners.load(gameId);
    await this.owners.claim(gameId, this.reflector.store.byName(gameId));
    const obj = this.lookup(gameId);
    if (!obj || isAdopted(obj) || isDeleting(obj)) return;
    await this.locks.run(gameId, async () => {
      const adopted = await this.patchLoop(gameId, "adding the finalizer to", async (o) => {
        if (isAdopted(o) || isDeleting(o)) return null;
        const annotations = annotatedGenerationBase(o) === undefined ? { [ANNOTATION_GENERATION_BASE]: String(await this.floor(gameId)) } : {};
        return { finalizers: hasFinalizer(o) ? (o.metadata.finalizers ?? []) : [...(o.metadata.finalizers ?? []), FINALIZER], annotations };
      });
      if (adopted) this.logger.info({ gameId, namespace: adopted.metadata.namespace }, "GameRuntime adopted (finalizer added)");
    });
  }

  /**
   * Removes the finalizer of a GameRuntime that is being deleted, once its
   * container is gone. A missing object (already gone) is fine.
   */
  async finalizeIfDeleting(gameId: string, containerGone: boolean): Promise<void> {
    if (!containerGone) return;
    const removed = await this.patchLoop(gameId, "removing the finalizer of", async (o) =>
      isDeleting(o) && hasFinalizer(o) ? { finalizers: (o.metadata.finalizers ?? []).filter((f) => f !== FINALIZER) } : null,
    );
    if (removed) this.logger.info({ gameId, namespace: removed.metadata.namespace }, "container gone: GameRuntime finalizer removed");
  }

  // ---------------------------------------------------------------- watch

  /**
   * Registers a handler and waits for the reflector's first list, so
   * `listGameIds` answers from the store right after. A first list that fails
   * does not throw: the reflector keeps retrying and calls `onResync` when it
   * gets through. The reflector keeps running for reads until `close()`.
   */
  async watch(handler: DeclarationWatch): Promise<() => Promise<void>> {
    this.handlers.add(handler);
    if (!this.reflector.isRunning) await this.reflector.start();
    return async () => {
      this.handlers.delete(handler);
    };
  }

  /** Stops the reflector: its watch connection and retries end, the store empties. */
  async close(): Promise<void> {
    await this.reflector.stop();
  }

  private emitChange(gameId: string): void {
    for (const h of this.handlers) h.onChange(gameId);
  }
}
