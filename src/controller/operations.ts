/**
 * The contract's lifecycle operations as declaration writes plus a wait:
 * validate against the current declaration and record, write the new spec
 * (bumping the generation), wake the loop, and wait until the loop has
 * reconciled that generation or recorded a failure for it.
 *
 * A refused request (400, 404, 409) writes nothing. A replay (start of the
 * running image, stop of a stopped runtime) writes nothing either and is
 * logged with error_code replay_no_op, once a minute per game, kind and code
 * (growth.ts).
 */
import type { Logger } from "../log.js";
import { specOf, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import { assertPatchAllowed, IMAGE_REF_MAX_LENGTH, IMAGE_REF_PATTERN } from "../model/imageRef.js";
import type { DeclarationSource, RuntimePort, StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { withTimeout } from "../model/timeout.js";
import type { OpKind, OpSource, StopReason } from "../model/status.js";
import { isQuarantineRefusal, quarantineError, type Quarantine } from "./quarantine.js";
import { admitNewGame, LogThrottle } from "./growth.js";
import type { RecordCache } from "./recordCache.js";
import type { RecordWaiters } from "./waiters.js";

export interface OpContext {
  opId: string;
  opSource: OpSource;
  logger: Logger;
}

export interface OpResult {
  record: RuntimeRecord;
  /** True when nothing had to change (replay_no_op). */
  replay: boolean;
}

export interface OperationsDeps {
  source: DeclarationSource;
  state: StateStore;
  runtime: RuntimePort;
  waiters: RecordWaiters;
  /** Wakes this process's loop at once when it leads; the store's notification covers other replicas. */
  enqueue(gameId: string): void;
  opTimeoutMs: number;
  /** Serves the reads from memory when given (see RecordCache). */
  records?: RecordCache;
  /** Patches to a quarantined image are refused before anything is written (quarantine.ts). */
  quarantines?: { find(imageRef: string): Promise<Quarantine | null> };
  /** RTMANAGER_MAX_GAMES: a REST start of a new game past it is a conflict. */
  maxGames?: number;
}

/** Validates a path game id: 400 for operations whose contract has a 400, else 404 (no such runtime can exist). */
export function checkGameId(gameId: string, invalidAs: "invalid_request" | "not_found"): void {
  const parsed = GameIdSchema.safeParse(gameId);
  if (!parsed.success) {
    const why = parsed.error.issues[0]?.message ?? "invalid game_id";
    throw invalidAs === "not_found" ? new RtmError("not_found", `runtime record not found (${why})`) : new RtmError("invalid_request", why);
  }
}

export function checkImageRef(imageRef: string): void {
  if (imageRef.length === 0 || imageRef.length > IMAGE_REF_MAX_LENGTH || !IMAGE_REF_PATTERN.test(imageRef)) {
    throw new RtmError("invalid_request", `image_ref ${JSON.stringify(imageRef.slice(0, 300))} is not an image reference such as registry/galaxy/engine:1.4.2`);
  }
}

const notFound = (gameId: string) => new RtmError("not_found", `runtime record not found for game ${gameId}`);

export class RuntimeOperations {
  private readonly unchangedRows = new LogThrottle();

  constructor(private readonly deps: OperationsDeps) {}

  async get(gameId: string): Promise<RuntimeRecord> {
    checkGameId(gameId, "not_found");
    const record = await (this.deps.records ?? this.deps.state).getRecord(gameId);
    if (!record) throw notFound(gameId);
    return record;
  }

  async list(): Promise<RuntimeRecord[]> {
    return this.deps.records ? this.deps.records.list() : this.deps.state.listRecords();
  }

  /**
   * `get` and `list` without a promise, when the record cache can answer from
   * memory; undefined means call them. A hot read then costs no microtask hop,
   * which under load is worth more than it looks (see docs/BENCHMARKS.md).
   */
  peek(gameId: string): RuntimeRecord | undefined {
    return this.deps.records?.peek(gameId);
  }

  peekList(): RuntimeRecord[] | undefined {
    return this.deps.records?.peekList();
  }

  async start(gameId: string, imageRef: string, ctx: OpContext): Promise<OpResult> {
    checkGameId(gameId, "invalid_request");
    checkImageRef(imageRef);
    if (this.deps.maxGames !== undefined) {
      await admitNewGame(gameId, this.deps.maxGames, this.deps.source, this.deps.state).catch(async (err: unknown) => {
        if (err instanceof RtmError) await this.logRefusal(gameId, "start", ctx, imageRef, null, err);
        throw err;
      });
    }
    return this.run(gameId, "start", ctx, imageRef, null, (d, r) => {
      const running = r?.status === "running";
      if (d?.desiredState === "running" && d.imageRef === imageRef) return null;
      if (running && r?.currentImageRef && r.currentImageRef !== imageRef) {
        throw new RtmError("conflict", `runtime is running ${r.currentImageRef}; use patch to change the image, or stop it first`);
      }
      return {
        gameId,
        imageRef,
        desiredState: "running",
        restartPolicy: d?.restartPolicy ?? "on-failure",
        resources: d?.resources,
        env: d?.env,
        restartToken: d?.restartToken,
      };
    });
  }

  stop(gameId: string, reason: StopReason, ctx: OpContext): Promise<OpResult> {
    checkGameId(gameId, "invalid_request");
    return this.run(
      gameId,
      "stop",
      ctx,
      null,
      reason,
      (d, r) => {
        if (!d && !r) throw notFound(gameId);
        if (!d || d.desiredState !== "running") return null;
        return { ...specOf(d), desiredState: "stopped", stopReason: reason };
      },
      // An engine that already exited: the declaration still changes (so the loop will not
      // restart it), but there was nothing to stop.
      (r) => r !== null && r.status !== "running",
    );
  }

  restart(gameId: string, ctx: OpContext): Promise<OpResult> {
    checkGameId(gameId, "not_found");
    return this.run(gameId, "restart", ctx, null, null, (d, r) => {
      if (!d || !r) throw notFound(gameId);
      if (r.status === "removed" || d.desiredState === "removed") {
        throw new RtmError("conflict", "runtime has no container to restart (status removed); start it instead");
      }
      // A fresh token is what asks the loop to recreate the container.
      return { ...specOf(d), desiredState: "running", stopReason: undefined, restartToken: ctx.opId.slice(0, 64) };
    });
  }

  patch(gameId: string, imageRef: string, ctx: OpContext): Promise<OpResult> {
    checkGameId(gameId, "invalid_request");
    checkImageRef(imageRef);
    let quarantine: Quarantine | null = null;
    const readQuarantine = async () => {
      quarantine = (await this.deps.quarantines?.find(imageRef)) ?? null;
    };
    return this.run(
      gameId,
      "patch",
      ctx,
      imageRef,
      null,
      (d, r) => {
        if (!d || !r) throw notFound(gameId);
        if (r.status !== "running" || d.desiredState !== "running") {
          throw new RtmError("conflict", `runtime is ${r.status}; patch replaces a running engine, start it with the new image instead`);
        }
        const current = r.currentImageRef ?? d.imageRef;
        assertPatchAllowed(current, imageRef);
        if (d.imageRef === imageRef) return null;
        // Refused at once, without a gate: the image already failed it on enough games.
        if (quarantine) throw quarantineError(quarantine);
        return { ...specOf(d), imageRef };
      },
      undefined,
      readQuarantine,
    );
  }

  cleanup(gameId: string, ctx: OpContext): Promise<OpResult> {
    checkGameId(gameId, "not_found");
    return this.run(gameId, "cleanup", ctx, null, null, (d, r) => {
      if (!d && !r) throw notFound(gameId);
      if (r?.status === "running" || (d?.desiredState === "running" && r?.status !== "removed")) {
        throw new RtmError("conflict", "runtime is running; stop it before removing its container");
      }
      if (r?.status === "removed" && (!d || d.desiredState === "removed")) return null;
      const base = d ? specOf(d) : { gameId, imageRef: r?.currentImageRef ?? "unknown:0.0.0", restartPolicy: "on-failure" as const };
      return { ...base, desiredState: "removed" };
    });
  }

  /**
   * The shared shape of every mutation. `decide` sees the declaration and the
   * record; it returns the next spec, null for "nothing to change", or throws
   * to refuse.
   */
  private async run(
    gameId: string,
    kind: OpKind,
    ctx: OpContext,
    imageRef: string | null,
    stopReason: StopReason | null,
    decide: (d: Declaration | null, r: RuntimeRecord | null) => RuntimeSpec | null,
    alreadyDone: (r: RuntimeRecord | null) => boolean = () => false,
    prepare?: () => Promise<void>,
  ): Promise<OpResult> {
    const { source, state, runtime } = this.deps;
    // One budget for the whole request, not only for the wait: a slow ping or
    // store must not stretch an answer past RTMANAGER_OP_TIMEOUT either.
    const deadline = Date.now() + this.deps.opTimeoutMs;
    // The engine runtime down: refuse before writing, so a 503 leaves nothing half-declared.
    await this.within(deadline, `the ${runtime.name} runtime's ping`, runtime.ping());
    const record = await this.within(deadline, "reading the runtime record", state.getRecord(gameId));
    if (prepare) await this.within(deadline, "reading the image quarantines", prepare());
    let refused: RtmError | null = null;
    let result: { declaration: Declaration | null; changed: boolean };
    try {
      result = await this.within(
        deadline,
        "writing the declaration (it may still land; the loop converges whatever was written)",
        source.mutate(gameId, (current) => decide(current, record), { opId: ctx.opId, opSource: ctx.opSource }),
      );
    } catch (err) {
      if (err instanceof RtmError && (err.code === "conflict" || err.code === "semver_patch_only" || isQuarantineRefusal(err))) refused = err;
      if (refused) await this.logRefusal(gameId, kind, ctx, imageRef, stopReason, refused);
      throw err;
    }
    const declaration = result.declaration;
    if (!declaration) {
      // A record whose declaration was deleted (plain SQL, or a GameRuntime
      // gone): GET shows it, so stop and cleanup of it are replays, not 404s.
      if (record && record.status !== "running" && (kind === "stop" || kind === "cleanup")) {
        await this.logReplay(gameId, kind, ctx, record.currentImageRef, stopReason);
        return { record, replay: true };
      }
      throw notFound(gameId);
    }

    if (!result.changed) {
      const settled = record && record.observedGeneration >= declaration.generation && record.lastErrorGeneration !== declaration.generation;
      const replay = settled && (kind !== "stop" || record.status !== "running");
      if (replay && record) {
        await this.logReplay(gameId, kind, ctx, imageRef ?? record.currentImageRef, stopReason);
        ctx.logger.info({ kind }, "replay_no_op");
        return { record, replay: true };
      }
    }
    this.deps.enqueue(gameId);
    const after = await this.waitForGeneration(gameId, declaration.generation, deadline);
    if (alreadyDone(record)) {
      await this.logReplay(gameId, kind, ctx, after.currentImageRef, stopReason);
      return { record: after, replay: true };
    }
    return { record: after, replay: false };
  }

  /** Past the deadline: the same 503 a slow loop gets, naming the step that was slow. */
  private within<T>(deadline: number, step: string, work: Promise<T>): Promise<T> {
    return withTimeout(
      work,
      deadline - Date.now(),
      () => new RtmError("service_unavailable", `${step} did not finish within RTMANAGER_OP_TIMEOUT (${Math.round(this.deps.opTimeoutMs / 1000)}s)`),
    );
  }

  private async waitForGeneration(gameId: string, generation: number, deadline: number): Promise<RuntimeRecord> {
    const outcome = await this.deps.waiters.waitFor(
      gameId,
      async () => {
        const r = await this.deps.state.getRecord(gameId);
        if (!r) return undefined;
        // What this call answers with is what a GET right after it must see.
        this.deps.records?.put(r);
        if (r.lastErrorGeneration !== null && r.lastErrorGeneration >= generation && r.lastErrorCode) return { ok: false as const, record: r };
        if (r.observedGeneration >= generation) return { ok: true as const, record: r };
        return undefined;
      },
      Math.max(0, deadline - Date.now()),
    );
    if (!outcome) {
      throw new RtmError(
        "service_unavailable",
        `the loop did not finish generation ${generation} of ${gameId} within RTMANAGER_OP_TIMEOUT (${Math.round(this.deps.opTimeoutMs / 1000)}s); the declaration stays and the loop keeps working on it`,
      );
    }
    const r = outcome.record;
    if (!outcome.ok) throw new RtmError(r.lastErrorCode ?? "internal_error", r.lastErrorMessage ?? "reconcile failed");
    return r;
  }

  private logReplay(gameId: string, kind: OpKind, ctx: OpContext, imageRef: string | null, stopReason: StopReason | null): Promise<void> {
    return this.logFinished(gameId, kind, ctx, imageRef, stopReason, "no_op", new RtmError("replay_no_op", "already in the requested state"));
  }

  private async logRefusal(gameId: string, kind: OpKind, ctx: OpContext, imageRef: string | null, stopReason: StopReason | null, err: RtmError): Promise<void> {
    try {
      await this.logFinished(gameId, kind, ctx, imageRef, stopReason, "failure", err);
    } catch (logErr) {
      ctx.logger.warn({ err: logErr }, "could not log a refused operation");
    }
  }

  /** One operation-log row for a request the loop never saw (a replay or a refusal). */
  private async logFinished(
    gameId: string,
    kind: OpKind,
    ctx: OpContext,
    imageRef: string | null,
    stopReason: StopReason | null,
    outcome: "no_op" | "failure",
    why: RtmError,
  ): Promise<void> {
    // Nothing changed: a flood of these must not grow the table (one row a minute per game, kind and code).
    if (!this.unchangedRows.take(`${gameId}\u0000${kind}\u0000${why.code}`)) {
      ctx.logger.debug({ kind, code: why.code }, "unchanged-state request not logged again within the minute");
      return;
    }
    const now = new Date();
    const id = await this.deps.state.startOperation({
      opId: ctx.opId,
      gameId,
      kind,
      opSource: ctx.opSource,
      imageRef,
      generation: null,
      errorCode: why.code,
      message: why.message,
      stopReason,
      startedAt: now,
    });
    await this.deps.state.finishOperation(id, { outcome, errorCode: why.code, message: why.message, finishedAt: now });
  }
}
