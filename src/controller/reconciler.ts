/**
 * One reconcile of one game, top to bottom (controller-runtime's Reconcile):
 *   1. observe: the declaration, this game's containers and the record;
 *   2. plan (pure, planner.ts);
 *   3. open an operation-log row (or carry on with the open gate's) and
 *      execute the plan's actions (actions.ts);
 *   4. when the plan has a health gate, one check of it (rollout.ts): still
 *      open, then write the interim record and requeue in the gate lane; or
 *      its verdict, with the plan's rollback when it failed;
 *   5. observe the containers again, derive the record (recordDerivation.ts);
 *   6. append events, close the operation-log row, write the record last.
 * It returns one outcome and never throws: done, requeue after a delay, or an
 * error that says whether retrying the same declaration can help. The queue
 * guarantees one reconcile per game at a time. Nothing here waits for an
 * engine: a gate is looked at again by a later reconcile. Every call goes
 * through the reconcile's scope (reconcileScope.ts): once its signal fired
 * (lost leadership, shutdown), nothing more is written.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../log.js";
import type { Declaration } from "../model/declaration.js";
import { PERMANENT_CODES, RtmError, toRtmError } from "../model/errors.js";
import type { DeclarationSource, ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { executeActions, recordLocationOf, type ExecutorSettings } from "./actions.js";
import { FailureReports } from "./failureReports.js";
import { SplitReplaces } from "./splitReplaces.js";
import { mayRollOut, type Lane } from "./queue.js";
import type { HealthTracker } from "./health.js";
import { ACCEPTED_RECHECK_MS, isAccepted } from "./plan.js";
import type { FleetView } from "./planFleet.js";
import { plan, splitContainers, type Action, type Plan, type PlannedEvent, type PlannerSettings } from "./planner.js";
import { abortedResult, ReconcileScope, type ReconcileIo, type ScopeDeps } from "./reconcileScope.js";
import type { ReconcileResult } from "./reconcileResult.js";
export type { ReconcileOutcome, ReconcileResult } from "./reconcileResult.js";
import { deriveFailedObservation, deriveRecord, sameRecord, type DeriveInput } from "./recordDerivation.js";
import { isSwap, Rollout, type OpenGate, type RolloutStep, type RolloutVerdict } from "./rollout.js";

export type ReconcilerSettings = PlannerSettings & ExecutorSettings & { probeTimeoutMs: number; /** Where engines attach (a network, a namespace) when the runtime reports none. */ engineNetwork: string };

export interface ReconcileObserver {
  onRecord?(record: RuntimeRecord): void;
  onReconcile?(result: ReconcileResult, seconds: number): void;
}

/** ScopeDeps' fence (`mayAct`) and runtime turns, and what the reconcile itself needs. */
export interface ReconcilerDeps extends ScopeDeps {
  source: DeclarationSource;
  health: HealthTracker;
  settings: ReconcilerSettings;
  logger: Logger;
  observer?: ReconcileObserver;
  clock?: () => Date;
  /** Quarantines and canaries (fleet.ts): read by the plan, told of each plan before any await. */
  fleet?: { view(): FleetView; planned(gameId: string, p: Plan, d: Declaration | null): void };
  /** The queue lane the key was handed out of (absent: not by the queue). A swap runs only out of the rollout lane; out of another it goes there before the fleet (canaries) hears of it. */
  laneOf?(gameId: string): Lane | undefined;
  /** Kubernetes mode: lets a deleted GameRuntime go once its container is removed. */
  finalizer?: { ensureFinalizer(gameId: string): Promise<void>; finalizeIfDeleting(gameId: string, containerGone: boolean): Promise<void> };
}

export function newOpId(): string {
  return randomUUID();
}

export interface Observation {
  declaration: Declaration | null;
  declarationError: RtmError | null;
  record: RuntimeRecord | null;
  containers: ObservedContainer[];
}

/** The error of a result, if it has one. */
export function errorOf(result: ReconcileResult): RtmError | null {
  return result.outcome.type === "error" ? result.outcome.error : null;
}

export class Reconciler {
  private readonly clock: () => Date;
  private readonly rollout: Rollout;
  /**
   * Orphans left in place and already reported, by game: container id and why.
   * In memory only, so each is reported once per process (and again after a
   * restart or failover), not on every resync.
   */
  private readonly reportedOrphans = new Map<string, string>();
  private readonly failureReports = new FailureReports();
  private readonly splitReplaces = new SplitReplaces();

  constructor(private readonly deps: ReconcilerDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.rollout = new Rollout({ settings: deps.settings, clock: this.clock });
  }

  /** A new term of leadership: open gates of an earlier term are resumed from their records. */
  newTerm(): void {
    this.rollout.forgetAll();
  }

  async observe(gameId: string, io: Pick<ReconcileIo, "source" | "state" | "runtime"> = this.deps): Promise<Observation> {
    const { source, state, runtime } = io;
    const readDeclaration = source.get(gameId).then(
      (declaration) => ({ declaration, declarationError: null }),
      (err: unknown) => {
        const e = toRtmError(err);
        if (e.code !== "start_config_invalid") throw e;
        return { declaration: null, declarationError: e };
      },
    );
    const [decl, record, containers] = await Promise.all([readDeclaration, state.getRecord(gameId), runtime.listForGame(gameId)]);
    return { ...decl, record, containers };
  }

  /** What the loop would do now, without doing it (`rtmctl diff`). */
  async preview(gameId: string): Promise<Plan> {
    return this.planFor(gameId, await this.observe(gameId), this.clock());
  }

  /** One reconcile; `signal` ends it (lost leadership, shutdown): then it writes nothing more. */
  async reconcile(gameId: string, signal?: AbortSignal): Promise<ReconcileResult> {
    const started = process.hrtime.bigint();
    const scope = new ReconcileScope(this.deps, signal, this.deps.laneOf?.(gameId) === "rollout");
    const { io } = scope;
    let result: ReconcileResult;
    try {
      // A store write (operation log, events, record) that fails mid-reconcile is an
      // error with its code like any other: the queue backs off and tries again.
      result = io.signal.aborted
        ? abortedResult(gameId, null, io.signal, this.deps.logger)
        : await this.reconcileOnce(gameId, io).catch((err: unknown) => {
            if (io.signal.aborted) return abortedResult(gameId, null, io.signal, this.deps.logger);
            const error = toRtmError(err);
            this.deps.logger.warn({ gameId, code: error.code, err }, "reconcile failed mid-way");
            return failed(gameId, null, null, error);
          });
    } finally {
      scope.dispose();
    }
    this.deps.observer?.onReconcile?.(result, Number(process.hrtime.bigint() - started) / 1e9);
    return result;
  }

  private planFor(gameId: string, o: Observation, now: Date): Plan {
    const { primary } = splitContainers(gameId, o.containers);
    const health = this.deps.health.get(gameId, primary?.id ?? null);
    const replacing = this.splitReplaces.get(gameId, o.declaration);
    return plan({ gameId, ...o, health, now, settings: this.deps.settings, verbs: this.deps.runtime.verbs, fleet: this.deps.fleet?.view(), replacing });
  }

  private async reconcileOnce(gameId: string, io: ReconcileIo): Promise<ReconcileResult> {
    let o: Observation;
    try {
      await this.deps.finalizer?.ensureFinalizer(gameId);
      o = await this.observe(gameId, io);
    } catch (err) {
      if (io.signal.aborted) throw err;
      return this.recordObservationFailure(gameId, toRtmError(err), io);
    }
    const now = this.clock();
    const p = this.planFor(gameId, o, now);
    if (isSwap(p) && !mayRollOut(this.deps.laneOf?.(gameId))) return { gameId, plan: p, record: o.record, outcome: { type: "requeue", afterMs: 0, lane: "rollout" } };
    this.deps.fleet?.planned(gameId, p, o.declaration);
    const open = await this.openGateOf(gameId, o, p, io);
    const opId = open?.opId ?? p.opId ?? newOpId();
    const log = this.deps.logger.child({ gameId, opId });

    const opRow = open ? open.opRow : await this.startOperation(gameId, o, p, opId, now, io);
    if (p.kind !== null && !open) log.info({ kind: p.kind, actions: p.actions.map((a) => a.type), cause: p.restartCause ?? undefined, reason: p.reason }, "reconcile");
    await this.reportOrphan(gameId, p, opId, log, io);

    const { execute, events: actionEvents, touched } = this.executor(gameId, o, io);
    let error: RtmError | null = null;
    let deferred = false;
    try {
      deferred = await execute(p.actions, undefined, "defer");
      this.splitReplaces.after(gameId, o.declaration, p, deferred);
    } catch (err) {
      if (io.signal.aborted) return abortedResult(gameId, p, io.signal, log);
      error = toRtmError(err);
      log.warn({ code: error.code, err: error, kind: p.kind }, "reconcile failed");
    }
    let verdict: RolloutVerdict | undefined;
    // A replace whose create waits for the old engine to go has no new engine to gate yet.
    if (p.gate && o.declaration && !deferred) {
      const before = splitContainers(gameId, o.containers).primary;
      const oldTouched = (!!before && touched.has(before.id)) || (!!error && this.splitReplaces.touchedOld(gameId, o.declaration));
      const step = await this.rollout.run({ gameId, declaration: o.declaration, plan: p, gate: p.gate, actionError: error, oldTouched, now, opId, opRow, execute, log, io }, open);
      if (step.type === "pending") return this.gatePending(gameId, o, p, step, { opId, events: [...p.events, ...actionEvents] }, io);
      verdict = step.verdict;
      error = verdict.error;
      if (verdict.held) this.splitReplaces.drop(gameId);
      actionEvents.push(...verdict.events);
    }
    if (verdict?.aborted || io.signal.aborted) return abortedResult(gameId, p, io.signal, log);

    const containers = p.actions.length > 0 || p.gate ? await io.runtime.listForGame(gameId).catch(() => o.containers) : o.containers;
    const { primary } = splitContainers(gameId, containers);
    const q = this.awaitingStart(o, primary, p, deferred);
    const record = this.derive(gameId, o, primary, q, error, verdict);
    await this.writeOutcome(gameId, o, q, { opId, opRow, record, error, events: [...p.events, ...actionEvents] }, io);
    if (this.deps.finalizer && o.declaration?.desiredState === "removed" && !error) {
      await this.deps.finalizer.finalizeIfDeleting(gameId, primary === null).catch((e: unknown) => log.warn({ err: e }, "finalizer removal failed"));
    }
    if (error) return failed(gameId, q, record, error);
    return { gameId, plan: q, record, outcome: q.requeueAfterMs !== null ? { type: "requeue", afterMs: q.requeueAfterMs } : { type: "done" } };
  }

  /** An engine the runtime only accepted (a Pod not running yet, or one it is deleting, a replace split) has not reached the generation; its watch wakes it sooner. */
  private awaitingStart(o: Observation, primary: ObservedContainer | null, p: Plan, deferred: boolean): Plan {
    const accepted = !!primary && o.declaration?.desiredState === "running" && isAccepted(primary, this.deps.runtime.verbs);
    if (!accepted && !primary?.terminating && !deferred) return p;
    return { ...p, converges: false, requeueAfterMs: p.requeueAfterMs ?? ACCEPTED_RECHECK_MS };
  }

  /**
   * The gate this process holds open for the game, when the plan checks it again. A gate the plan does not
   * continue (a newer declaration, a stop) is left: its row closed as interrupted; its REST call gets the newer record.
   */
  private async openGateOf(gameId: string, o: Observation, p: Plan, io: ReconcileIo): Promise<OpenGate | undefined> {
    const open = this.rollout.continuing(gameId, p, o.declaration?.generation);
    if (open) return open;
    const left = this.rollout.drop(gameId);
    if (left && left.opRow !== null) {
      const message = `the health gate of generation ${left.generation} was left without a verdict: ${p.reason}`;
      await io.state.finishOperation(left.opRow, { outcome: "interrupted", errorCode: null, message, finishedAt: this.clock() });
    }
    return undefined;
  }

  /**
   * The gate is still open: this reconcile's events, and the interim record when the record does not show this gate
   * on this engine yet (so a crash resumes it); the row stays open for the verdict. Requeued in the gate lane.
   */
  private async gatePending(
    gameId: string,
    o: Observation,
    p: Plan,
    step: Extract<RolloutStep, { type: "pending" }>,
    w: { opId: string; events: PlannedEvent[] },
    io: ReconcileIo,
  ): Promise<ReconcileResult> {
    // A fresh gate always writes its own interim record: the record may still show an earlier gate on the same
    // engine (a patch in place into a restart's open gate), whose rollback target is not this one's.
    const fresh = !p.gate?.resumed;
    const shown = !fresh && !!o.record?.rolloutStartedAt && o.record.currentContainerId === step.engine.id;
    const gateOpen = { since: step.since, rollbackTo: p.gate?.rollbackTo ?? null, fresh };
    const record = shown && o.record ? o.record : this.derive(gameId, o, step.engine, p, null, undefined, gateOpen);
    await this.writeOutcome(gameId, o, p, { opId: w.opId, opRow: null, record, error: null, events: w.events }, io);
    return { gameId, plan: p, record, outcome: { type: "requeue", afterMs: step.afterMs, lane: "gate" } };
  }

  /**
   * The reconcile's executor: runs actions through the runtime, collects the
   * events they cause, and remembers which containers a stop or remove was
   * tried on (a failed stop may still have stopped one): a rollout rolls back
   * only when the engine that ran before was touched.
   */
  private executor(gameId: string, o: Observation, io: ReconcileIo) {
    const events: PlannedEvent[] = [];
    const touched = new Set<string>();
    const { settings } = this.deps;
    const execute = (actions: readonly Action[], beforeAction?: (a: Action) => void, afterDeletion: "defer" | "wait" = "wait") =>
      executeActions(actions, {
        afterDeletion,
        runtime: io.runtime,
        declaration: o.declaration,
        gameId,
        settings,
        observer: {
          onAction: (type, data) => events.push({ type, data }),
          beforeAction: (a) => {
            if (a.type === "stop" || a.type === "remove") touched.add(a.containerId);
            beforeAction?.(a);
          },
        },
      });
    return { execute, events, touched };
  }

  private derive(gameId: string, o: Observation, container: ObservedContainer | null, p: Plan, error: RtmError | null, verdict?: RolloutVerdict, gateOpen?: DeriveInput["gateOpen"]): RuntimeRecord {
    const { settings } = this.deps;
    return deriveRecord({
      gameId,
      previous: o.record,
      declaration: o.declaration,
      container,
      plan: p,
      error,
      health: this.deps.health.get(gameId, container?.id ?? null),
      now: this.clock(),
      ...recordLocationOf(this.deps.runtime, settings, gameId),
      verdict,
      gateOpen,
    });
  }

  private async startOperation(gameId: string, o: Observation, p: Plan, opId: string, now: Date, io: ReconcileIo): Promise<number | null> {
    if (p.kind === null) return null;
    return io.state.startOperation({
      opId,
      gameId,
      kind: p.kind,
      opSource: p.opSource,
      imageRef: p.imageRef,
      generation: o.declaration?.generation ?? null,
      errorCode: null,
      message: p.reason,
      stopReason: p.stopReason,
      startedAt: now,
    });
  }

  /** Events, the end of the operation-log row and the record, in one transaction: waiters wake on the record, and by then the log is complete. */
  private async writeOutcome(
    gameId: string,
    o: Observation,
    p: Plan,
    w: { opId: string; opRow: number | null; record: RuntimeRecord; error: RtmError | null; events: PlannedEvent[] },
    io: ReconcileIo,
  ): Promise<void> {
    const { state } = io;
    const { error, record } = w;
    const engine = splitContainers(gameId, o.containers).primary?.id ?? null;
    const events = [...w.events, ...this.failureReports.eventsFor(gameId, engine, p, o.record, error, record.lastErrorMessage !== null)];
    const failure = error ?? (p.hold ? new RtmError(p.hold.code, p.hold.message) : null);
    const finishOperation = w.opRow === null ? null : {
      id: w.opRow,
      result: {
        outcome: failure ? ("failure" as const) : p.actions.length > 0 || p.events.length > 0 || p.gate ? ("success" as const) : ("no_op" as const),
        errorCode: failure?.code ?? null,
        message: failure?.message ?? p.reason,
        imageRef: record.currentImageRef ?? p.imageRef,
        finishedAt: this.clock(),
      },
    };
    // A container with neither a declaration nor a record gets no record: writing one
    // would make a store that never knew the game look as if it had created it, and the
    // next pass would remove the engine as an ordinary orphan.
    const recordNeeded = (o.declaration !== null || o.record !== null) && !sameRecord(o.record, record);
    if (events.length === 0 && !finishOperation && !recordNeeded) return;
    // One transaction: the record never shows without its log and events, and NOTIFYs go out at commit.
    await state.commitReconcile({ events: events.map((ev) => ({ gameId, type: ev.type, opId: w.opId, data: ev.data })), finishOperation, record: recordNeeded ? record : null });
    if (recordNeeded) this.deps.observer?.onRecord?.(record);
  }

  /** An orphan left in place (dry run, or never recorded) is reported once per container: a log line and an event. */
  private async reportOrphan(gameId: string, p: Plan, opId: string, log: Logger, io: ReconcileIo): Promise<void> {
    const report = p.orphanReport;
    if (!report) {
      this.reportedOrphans.delete(gameId);
      return;
    }
    const key = `${report.containerId}:${report.why}`;
    if (this.reportedOrphans.get(gameId) === key) return;
    this.reportedOrphans.set(gameId, key);
    log.warn({ containerId: report.containerId, container: report.containerName, imageRef: report.imageRef, why: report.why, reason: p.reason }, "orphan left in place");
    await io.state.appendEvent({
      gameId,
      type: "orphan_reported",
      opId,
      data: { containerId: report.containerId, container: report.containerName, imageRef: report.imageRef, why: report.why, message: p.reason },
    });
  }

  /** The runtime or the store did not answer: tell waiters through the record, then let the queue back off. */
  private async recordObservationFailure(gameId: string, error: RtmError, io: ReconcileIo): Promise<ReconcileResult> {
    const { settings } = this.deps;
    const { state } = io;
    let record: RuntimeRecord | null = null;
    try {
      const [previous, declaration] = await Promise.all([state.getRecord(gameId), io.source.get(gameId).catch(() => null)]);
      if (previous || declaration) {
        record = deriveFailedObservation({
          gameId,
          previous,
          declaration,
          error,
          now: this.clock(),
          ...recordLocationOf(this.deps.runtime, settings, gameId),
        });
        await state.putRecord(record);
        this.deps.observer?.onRecord?.(record);
      }
    } catch (err) {
      // Aborted: the caller reports it. Else the store is down too; the queue's backoff and the next resync take it from here.
      if (io.signal.aborted) throw err;
    }
    this.deps.logger.warn({ gameId, code: error.code, err: error }, "reconcile could not observe");
    return failed(gameId, null, record, error);
  }
}

function failed(gameId: string, p: Plan | null, record: RuntimeRecord | null, error: RtmError): ReconcileResult {
  return { gameId, plan: p, record, outcome: { type: "error", error, terminal: PERMANENT_CODES.has(error.code) } };
}
