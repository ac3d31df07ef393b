/**
 * The contract's lifecycle verbs as declaration writes plus a wait (each
 * verb's rule is its row in ./verbs.ts; this file runs every row the same way):
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
import type { Declaration } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import type { DeclarationSource, RuntimePort, StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { withTimeout } from "../model/timeout.js";
import type { OpSource, StopReason } from "../model/status.js";
import { verbSpec, type VerbBody, type VerbName } from "../model/verbs.js";
import { isQuarantineRefusal, type Quarantine } from "./quarantine.js";
import { LogThrottle } from "./growth.js";
import { checkGameId, notFound, VERB_RULES, type Prepared, type VerbRule } from "./verbs.js";
import type { RecordCache } from "./recordCache.js";
import type { RecordWaiters } from "./waiters.js";
import type { Lane } from "./queue.js";

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
  /** Wakes this process's loop at once when it leads, in `lane`; the store's notification covers other replicas. */
  enqueue(gameId: string, lane: Lane): void;
  /** Before a write that will wake the game in a lane other than high: the declaration watch's report of it goes there too. */
  expectWrite?(gameId: string, lane: Lane): void;
  opTimeoutMs: number;
  /** Serves the reads from memory when given (see RecordCache). */
  records?: RecordCache;
  /** Patches to a quarantined image are refused before anything is written (quarantine.ts). */
  quarantines?: { find(imageRef: string): Promise<Quarantine | null> };
  /** RTMANAGER_MAX_GAMES: a REST start of a new game past it is a conflict. */
  maxGames?: number;
}

/** One verb request as it goes through run: its row, its body, and what the operation log records of it. */
interface Op<B> {
  verb: VerbName;
  gameId: string;
  body: B;
  ctx: OpContext;
  rule: VerbRule<B>;
  logged: { imageRef: string | null; stopReason: StopReason | null };
}

const NOTHING_PREPARED: Prepared = { quarantine: null };

export class RuntimeOperations {
  private readonly unchangedRows = new LogThrottle();
  /** The runtime ping in flight, shared by the calls that arrive while it runs. */
  private pinging: Promise<void> | null = null;

  constructor(private readonly deps: OperationsDeps) {}

  /**
   * One ping at a time: calls arriving while one is in flight take its
   * answer. A fleet patch is 1,000 calls at once; each pinging on its own (a
   * Pod list on Kubernetes) queued a start sent a second later behind 1,000
   * pings, 5.3 s of its 7.3 s (docs/BENCHMARKS.md).
   */
  private ping(): Promise<void> {
    this.pinging ??= this.deps.runtime.ping().finally(() => {
      this.pinging = null;
    });
    return this.pinging;
  }

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

  start(gameId: string, imageRef: string, ctx: OpContext): Promise<OpResult> {
    return this.perform("start", gameId, { image_ref: imageRef }, ctx);
  }

  stop(gameId: string, reason: StopReason, ctx: OpContext): Promise<OpResult> {
    return this.perform("stop", gameId, { reason }, ctx);
  }

  restart(gameId: string, ctx: OpContext): Promise<OpResult> {
    return this.perform("restart", gameId, undefined, ctx);
  }

  patch(gameId: string, imageRef: string, ctx: OpContext): Promise<OpResult> {
    return this.perform("patch", gameId, { image_ref: imageRef }, ctx);
  }

  cleanup(gameId: string, ctx: OpContext): Promise<OpResult> {
    return this.perform("cleanup", gameId, undefined, ctx);
  }

  /** Any lifecycle verb, by its rows in the verb table (src/model/verbs.ts, ./verbs.ts). */
  async perform<V extends VerbName>(verb: V, gameId: string, body: VerbBody<V>, ctx: OpContext): Promise<OpResult> {
    const rule = VERB_RULES[verb] as VerbRule<VerbBody<V>>;
    const op: Op<VerbBody<V>> = { verb, gameId, body, ctx, rule, logged: verbSpec(verb).logged(body) };
    checkGameId(gameId, rule.badGameIdAs);
    rule.validate?.(body);
    if (rule.admit) {
      await rule.admit(this.deps, gameId, body).catch(async (err: unknown) => {
        if (err instanceof RtmError) await this.logRefusal(op, err);
        throw err;
      });
    }
    return this.run(op);
  }

  /**
   * The shared shape of every verb: within one budget, ping the runtime, read
   * the record, let the rule decide the next spec inside the store's write,
   * then answer at once (replay) or wait for the loop to finish that generation.
   */
  private async run<B>(op: Op<B>): Promise<OpResult> {
    const { source, state, runtime } = this.deps;
    const { gameId, rule, ctx } = op;
    // One budget for the whole request, not only for the wait: a slow ping or
    // store must not stretch an answer past RTMANAGER_OP_TIMEOUT either.
    const deadline = Date.now() + this.deps.opTimeoutMs;
    // The engine runtime down: refuse before writing, so a 503 leaves nothing half-declared.
    await this.within(deadline, `the ${runtime.name} runtime's ping`, this.ping());
    const record = await this.within(deadline, "reading the runtime record", state.getRecord(gameId));
    const prepared = rule.prepare ? await this.within(deadline, "reading the image quarantines", rule.prepare(this.deps, op.body)) : NOTHING_PREPARED;
    const call = { gameId, body: op.body, opId: ctx.opId, prepared };
    const lane = rule.wakeLane ?? "high";
    if (lane !== "high") this.deps.expectWrite?.(gameId, lane);
    let result: { declaration: Declaration | null; changed: boolean };
    try {
      result = await this.within(
        deadline,
        "writing the declaration (it may still land; the loop converges whatever was written)",
        source.mutate(gameId, (current) => rule.decide(call, current, record), { opId: ctx.opId, opSource: ctx.opSource }),
      );
    } catch (err) {
      if (err instanceof RtmError && (err.code === "conflict" || err.code === "semver_patch_only" || isQuarantineRefusal(err))) await this.logRefusal(op, err);
      throw err;
    }
    const replay = await this.replayOf(op, record, result);
    if (replay) return replay;
    this.deps.enqueue(gameId, lane);
    const after = await this.waitForGeneration(gameId, result.declaration!.generation, deadline);
    if (rule.alreadyDone?.(record)) {
      await this.logReplay(op, after.currentImageRef);
      return { record: after, replay: true };
    }
    return { record: after, replay: false };
  }

  /** The answer when there is nothing to wait for; null when the loop has work to finish first. */
  private async replayOf<B>(op: Op<B>, record: RuntimeRecord | null, result: { declaration: Declaration | null; changed: boolean }): Promise<OpResult | null> {
    const declaration = result.declaration;
    if (!declaration) {
      // A record whose declaration was deleted (plain SQL, or a GameRuntime
      // gone): GET shows it, so stop and cleanup of it are replays, not 404s.
      if (record && record.status !== "running" && op.rule.replayWithoutDeclaration) {
        await this.logReplay(op, record.currentImageRef);
        return { record, replay: true };
      }
      throw notFound(op.gameId);
    }
    if (result.changed || !record) return null;
    const settled = record.observedGeneration >= declaration.generation && record.lastErrorGeneration !== declaration.generation;
    if (!settled || !(op.rule.settled?.(record) ?? true)) return null;
    await this.logReplay(op, op.logged.imageRef ?? record.currentImageRef);
    op.ctx.logger.info({ kind: op.verb }, "replay_no_op");
    return { record, replay: true };
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

  private logReplay<B>(op: Op<B>, imageRef: string | null): Promise<void> {
    return this.logFinished(op, imageRef, "no_op", new RtmError("replay_no_op", "already in the requested state"));
  }

  private async logRefusal<B>(op: Op<B>, err: RtmError): Promise<void> {
    try {
      await this.logFinished(op, op.logged.imageRef, "failure", err);
    } catch (logErr) {
      op.ctx.logger.warn({ err: logErr }, "could not log a refused operation");
    }
  }

  /** One operation-log row for a request the loop never saw (a replay or a refusal). */
  private async logFinished<B>(op: Op<B>, imageRef: string | null, outcome: "no_op" | "failure", why: RtmError): Promise<void> {
    const { gameId, verb: kind, ctx } = op;
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
      stopReason: op.logged.stopReason,
      startedAt: now,
    });
    await this.deps.state.finishOperation(id, { outcome, errorCode: why.code, message: why.message, finishedAt: now });
  }
}
