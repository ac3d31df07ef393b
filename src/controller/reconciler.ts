/**
 * One reconcile of one game, top to bottom:
 *   1. read the declaration, this game's containers and the record;
 *   2. plan (pure);
 *   3. open an operation-log row, execute the actions;
 *   4. observe again and write the record derived from what Docker shows;
 *   5. append events, close the operation-log row.
 * The queue guarantees one reconcile per game at a time.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../log.js";
import type { Declaration } from "../model/declaration.js";
import { PERMANENT_CODES, RtmError, toRtmError } from "../model/errors.js";
import type { DeclarationSource, DockerPort, HealthProber, ObservedContainer, StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { EventType } from "../model/status.js";
import { executeActions, statePathOf, type ExecutorSettings } from "./actions.js";
import { probeUrl, type HealthTracker } from "./health.js";
import { isRunning, plan, removeActions, splitContainers, type Action, type HealthGate, type Plan, type PlannedEvent, type PlannerSettings } from "./planner.js";
import { deriveRecord } from "./recordDerivation.js";

export type ReconcilerSettings = PlannerSettings & ExecutorSettings & { probeTimeoutMs: number };

/** How often the health gate probes the new engine. */
const GATE_PROBE_INTERVAL_MS = 250;

export interface ReconcileObserver {
  onRecord?(record: RuntimeRecord): void;
  onReconcile?(result: ReconcileResult, seconds: number): void;
}

export interface ReconcileResult {
  gameId: string;
  plan: Plan;
  record: RuntimeRecord | null;
  error: RtmError | null;
  /** True when retrying the same declaration cannot help. */
  permanent: boolean;
}

export interface ReconcilerDeps {
  source: DeclarationSource;
  state: StateStore;
  docker: DockerPort;
  prober: HealthProber;
  health: HealthTracker;
  settings: ReconcilerSettings;
  logger: Logger;
  observer?: ReconcileObserver;
  clock?: () => Date;
  mayAct?: () => boolean;
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

export class Reconciler {
  private readonly clock: () => Date;
  /**
   * Orphans left in place and already reported, by game: container id and why.
   * In memory only, so each is reported once per process (and again after a
   * restart or failover), not on every resync.
   */
  private readonly reportedOrphans = new Map<string, string>();

  constructor(private readonly deps: ReconcilerDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  async observe(gameId: string): Promise<Observation> {
    const { source, state, docker } = this.deps;
    const readDeclaration = source.get(gameId).then(
      (declaration) => ({ declaration, declarationError: null }),
      (err: unknown) => {
        const e = toRtmError(err);
        if (e.code !== "start_config_invalid") throw e;
        return { declaration: null, declarationError: e };
      },
    );
    const [decl, record, containers] = await Promise.all([readDeclaration, state.getRecord(gameId), docker.listForGame(gameId)]);
    return { ...decl, record, containers };
  }

  /** What the loop would do now, without doing it (`rtmctl diff`). */
  async preview(gameId: string): Promise<Plan> {
    const o = await this.observe(gameId);
    return this.planFor(gameId, o, this.clock());
  }

  private planFor(gameId: string, o: Observation, now: Date): Plan {
    const { primary } = splitContainers(gameId, o.containers);
    return plan({
      gameId,
      declaration: o.declaration,
      declarationError: o.declarationError,
      containers: o.containers,
      record: o.record,
      health: this.deps.health.get(gameId, primary?.id ?? null),
      now,
      settings: this.deps.settings,
    });
  }

  async reconcile(gameId: string): Promise<ReconcileResult> {
    const started = process.hrtime.bigint();
    let result: ReconcileResult | null = null;
    try {
      result = await this.reconcileOnce(gameId);
      return result;
    } catch (err) {
      // A store write (operation log, events, record) failed mid-reconcile: still a
      // reconcile, and an error with its code, as far as the metrics go. The caller
      // gets the original error and backs off.
      const error = toRtmError(err);
      result = { gameId, plan: this.emptyPlan(gameId, error), record: null, error, permanent: false };
      throw err;
    } finally {
      if (result) this.deps.observer?.onReconcile?.(result, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** A plan with nothing in it, for a reconcile that failed before (or without) planning. */
  private emptyPlan(gameId: string, error: RtmError): Plan {
    return plan({
      gameId,
      declaration: null,
      declarationError: error,
      containers: [],
      record: null,
      health: null,
      now: this.clock(),
      settings: this.deps.settings,
    });
  }

  private async reconcileOnce(gameId: string): Promise<ReconcileResult> {
    const { state, docker, settings } = this.deps;
    let o: Observation;
    try {
      await this.deps.finalizer?.ensureFinalizer(gameId);
      o = await this.observe(gameId);
    } catch (err) {
      return this.recordObservationFailure(gameId, toRtmError(err));
    }
    const now = this.clock();
    const p = this.planFor(gameId, o, now);
    const opId = p.opId ?? newOpId();
    const log = this.deps.logger.child({ gameId, opId });

    const opRow =
      p.kind !== null
        ? await state.startOperation({
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
          })
        : null;
    if (p.actions.length > 0 || p.kind !== null) log.info({ kind: p.kind, actions: p.actions.map((a) => a.type), reason: p.reason }, "reconcile");
    await this.reportOrphan(gameId, p, opId, log);

    const actionEvents: PlannedEvent[] = [];
    // Whether the engine that ran before this reconcile was stopped or removed (or a
    // stop/remove of it was attempted): only then is there anything to roll back.
    const before = splitContainers(gameId, o.containers).primary;
    let oldTouched = false;
    const execute = (actions: readonly Action[]) =>
      executeActions(actions, {
        docker,
        declaration: o.declaration,
        gameId,
        settings,
        observer: {
          onAction: (type: EventType, data) => actionEvents.push({ type, data }),
          beforeAction: (a) => {
            if ((a.type === "stop" || a.type === "remove") && a.containerId === before?.id) oldTouched = true;
          },
        },
        mayAct: this.deps.mayAct,
      });
    let error: RtmError | null = null;
    try {
      await execute(p.actions);
    } catch (err) {
      error = toRtmError(err);
      log.warn({ code: error.code, err: error.message, kind: p.kind }, "reconcile failed");
    }

    // The health gate: a patch or restart counts only once the engine proves healthy.
    // A failure before the old engine was touched (the new image could not be pulled,
    // leadership lost before the first action) is not a failed rollout: the old engine
    // still serves, the error is reported as it is, and the queue retries with backoff.
    let held = false;
    let degraded = false;
    const rollbackWanted = !!p.gate?.rollbackTo && oldTouched;
    if (p.gate && (!error || rollbackWanted) && o.declaration && error?.code !== "docker_unavailable") {
      const gateError = error ?? (await this.openGate(gameId, o, p, p.gate, now));
      if (gateError && p.gate.rollbackTo) {
        const target = p.gate.rollbackTo;
        const failed = o.declaration.imageRef;
        log.warn({ from: failed, to: target, err: gateError.message }, "patch failed its health gate: rolling back");
        const rollbackError = await this.rollback(gameId, o, target, opId, execute);
        held = true;
        if (rollbackError) {
          degraded = true;
          actionEvents.push({ type: "rollback_failed", data: { failedImageRef: failed, targetImageRef: target, message: rollbackError.message } });
          error = new RtmError("container_start_failed", `patch to ${failed} failed (${gateError.message}) and the rollback to ${target} failed too (${rollbackError.message}); the runtime is degraded`);
        } else {
          actionEvents.push({ type: "patch_rolled_back", data: { failedImageRef: failed, restoredImageRef: target, reason: gateError.message } });
          error = new RtmError("container_start_failed", `patch to ${failed} failed: ${gateError.message}; rolled back to ${target}`);
        }
      } else if (gateError) {
        error = new RtmError("container_start_failed", `${p.kind ?? "start"} of ${o.declaration.imageRef}: ${gateError.message}; the restart policy takes over`);
      }
    }

    let containers = o.containers;
    if (p.actions.length > 0 || p.gate) {
      containers = await docker.listForGame(gameId).catch(() => o.containers);
    }
    const { primary } = splitContainers(gameId, containers);
    const record = deriveRecord({
      gameId,
      previous: o.record,
      declaration: o.declaration,
      container: primary,
      plan: p,
      error,
      health: this.deps.health.get(gameId, primary?.id ?? null),
      now: this.clock(),
      statePath: statePathOf(settings.stateRoot, gameId),
      dockerNetwork: settings.dockerNetwork,
    });
    if (held && o.declaration) record.heldGeneration = o.declaration.generation;
    if (degraded) record.degraded = true;
    const events = [...p.events, ...actionEvents];
    if (error) events.push({ type: "reconcile_failed", data: { code: error.code, message: error.message, kind: p.kind } });
    else if (p.hold && o.record?.lastErrorCode !== p.hold.code) events.push({ type: "reconcile_failed", data: { code: p.hold.code, message: p.hold.message, kind: p.kind } });
    for (const ev of events) await state.appendEvent({ gameId, type: ev.type, opId, data: ev.data });

    if (opRow !== null) {
      const failure = error ?? (p.hold ? new RtmError(p.hold.code, p.hold.message) : null);
      await state.finishOperation(opRow, {
        outcome: failure ? "failure" : p.actions.length > 0 || p.events.length > 0 ? "success" : "no_op",
        errorCode: failure?.code ?? null,
        message: failure?.message ?? p.reason,
        imageRef: record.currentImageRef ?? p.imageRef,
        finishedAt: this.clock(),
      });
    }
    // The record goes last: waiters wake on it, and by then the log and events are complete.
    // A container with neither a declaration nor a record gets no record: writing one
    // would make a store that never knew the game look as if it had created it, and the
    // next pass would remove the engine as an ordinary orphan.
    const recordNeeded = o.declaration !== null || o.record !== null;
    if (recordNeeded && !sameRecord(o.record, record)) {
      await state.putRecord(record);
      this.deps.observer?.onRecord?.(record);
    }
    if (this.deps.finalizer && o.declaration?.desiredState === "removed" && !error) {
      await this.deps.finalizer.finalizeIfDeleting(gameId, primary === null).catch((e: unknown) => log.warn({ err: String(e) }, "finalizer removal failed"));
    }

    return { gameId, plan: p, record, error, permanent: error ? PERMANENT_CODES.has(error.code) : false };
  }

  /** A warn line the first time an orphan is left in place; forgotten once the game's plan no longer reports it. */
  /** An orphan left in place (dry run, or never recorded) is reported once per container: a log line and an event. */
  private async reportOrphan(gameId: string, p: Plan, opId: string, log: Logger): Promise<void> {
    const report = p.orphanReport;
    if (!report) {
      this.reportedOrphans.delete(gameId);
      return;
    }
    const key = `${report.containerId}:${report.why}`;
    if (this.reportedOrphans.get(gameId) === key) return;
    this.reportedOrphans.set(gameId, key);
    log.warn({ containerId: report.containerId, container: report.containerName, imageRef: report.imageRef, why: report.why, reason: p.reason }, "orphan left in place");
    await this.deps.state.appendEvent({
      gameId,
      type: "orphan_reported",
      opId,
      data: { containerId: report.containerId, container: report.containerName, imageRef: report.imageRef, why: report.why, message: p.reason },
    });
  }

  /**
   * Writes an interim record (so a crash during the wait resumes it), then
   * probes the new engine until it has been healthy for `minHealthyMs`, or
   * the gate times out. Returns null when healthy, else why not.
   */
  private async openGate(gameId: string, o: Observation, p: Plan, gate: HealthGate, now: Date): Promise<RtmError | null> {
    const { docker, state, settings } = this.deps;
    const { primary } = splitContainers(gameId, await docker.listForGame(gameId));
    if (!primary || !isRunning(primary)) return new RtmError("container_start_failed", "the new container is not running");
    const interim = deriveRecord({
      gameId,
      previous: o.record,
      declaration: o.declaration,
      container: primary,
      plan: { ...p, converges: false },
      error: null,
      health: null,
      now,
      statePath: statePathOf(settings.stateRoot, gameId),
      dockerNetwork: settings.dockerNetwork,
    });
    interim.rolloutStartedAt = o.record?.rolloutStartedAt ?? now;
    interim.previousImageRef = gate.rollbackTo ?? interim.previousImageRef;
    await state.putRecord(interim);
    this.deps.observer?.onRecord?.(interim);
    return this.awaitHealthy(gameId, primary.id, gate);
  }

  private async awaitHealthy(gameId: string, containerId: string, gate: HealthGate): Promise<RtmError | null> {
    const { docker, prober, settings } = this.deps;
    const deadline = Date.now() + gate.timeoutMs;
    let healthySince: number | null = null;
    let last = "no probe answered yet";
    for (;;) {
      if (this.deps.mayAct && !this.deps.mayAct()) return new RtmError("service_unavailable", "lost leadership during the health gate");
      const c = (await docker.listForGame(gameId)).find((x) => x.id === containerId);
      if (!c || !isRunning(c)) return new RtmError("container_start_failed", `the engine exited (code ${c?.exitCode ?? "unknown"}) during the health gate`);
      const url = probeUrl(c, settings.enginePublishHost, settings.dockerNetwork);
      if (url) {
        const r = await prober.probe(url, settings.probeTimeoutMs);
        if (r.ok) {
          healthySince ??= Date.now();
          if (Date.now() - healthySince >= gate.minHealthyMs) return null;
        } else {
          healthySince = null;
          last = r.error ?? `HTTP ${r.statusCode}`;
        }
      }
      if (Date.now() >= deadline) {
        return new RtmError(
          "container_start_failed",
          `the engine did not stay healthy for ${gate.minHealthyMs / 1000}s within ${Math.round(gate.timeoutMs / 1000)}s (last /healthz: ${last})`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(GATE_PROBE_INTERVAL_MS, Math.max(1, deadline - Date.now()))));
    }
  }

  /** Recreates the container on the previous image, which must still be local (it is never re-pulled). */
  private async rollback(gameId: string, o: Observation, target: string, opId: string, execute: (a: readonly Action[]) => Promise<void>): Promise<RtmError | null> {
    const { state, docker } = this.deps;
    const row = await state.startOperation({
      opId,
      gameId,
      kind: "rollback",
      opSource: "reconcile",
      imageRef: target,
      generation: o.declaration?.generation ?? null,
      errorCode: null,
      message: `rolling back to ${target}`,
      stopReason: null,
      startedAt: this.clock(),
    });
    let failure: RtmError | null = null;
    try {
      // Check the target before removing anything: without it the failing container
      // is all there is, and removing it would leave nothing running at all.
      if (!(await docker.imagePresent(target))) {
        throw new RtmError(
          "image_pull_failed",
          `rollback target ${target} is no longer present locally (a rollback never pulls); the failing container was left in place`,
          { imageRef: target },
        );
      }
      const current = await docker.listForGame(gameId);
      await execute([
        ...current.flatMap((c) => removeActions(c, null)),
        { type: "ensureImage", imageRef: target, policy: "never" },
        { type: "create", imageRef: target },
        { type: "start", containerId: "created" },
      ]);
    } catch (err) {
      failure = toRtmError(err);
    }
    await state.finishOperation(row, {
      outcome: failure ? "failure" : "success",
      errorCode: failure?.code ?? null,
      message: failure ? failure.message : `restored ${target}`,
      finishedAt: this.clock(),
    });
    return failure;
  }

  /** Docker or the store did not answer: tell waiters through the record, then let the queue back off. */
  private async recordObservationFailure(gameId: string, error: RtmError): Promise<ReconcileResult> {
    const { state } = this.deps;
    const emptyPlan = this.emptyPlan(gameId, error);
    let record: RuntimeRecord | null = null;
    try {
      const [prev, declaration] = await Promise.all([state.getRecord(gameId), this.deps.source.get(gameId).catch(() => null)]);
      if (prev || declaration) {
        record = {
          ...(prev ?? deriveRecord({
            gameId,
            previous: null,
            declaration,
            container: null,
            plan: emptyPlan,
            error,
            health: null,
            now: this.clock(),
            statePath: statePathOf(this.deps.settings.stateRoot, gameId),
            dockerNetwork: this.deps.settings.dockerNetwork,
          })),
          lastErrorCode: error.code,
          lastErrorMessage: error.message,
          lastErrorGeneration: declaration?.generation ?? prev?.lastErrorGeneration ?? null,
          updatedAt: this.clock(),
        };
        await state.putRecord(record);
        this.deps.observer?.onRecord?.(record);
      }
    } catch {
      // The store is down too; the queue's backoff and the next resync take it from here.
    }
    this.deps.logger.warn({ gameId, code: error.code, err: error.message }, "reconcile could not observe");
    return { gameId, plan: emptyPlan, record, error, permanent: false };
  }
}

function sameRecord(a: RuntimeRecord | null, b: RuntimeRecord): boolean {
  if (!a) return false;
  const strip = (r: RuntimeRecord) => JSON.stringify({ ...r, updatedAt: null });
  return strip(a) === strip(b);
}
