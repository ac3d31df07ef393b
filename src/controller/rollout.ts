/**
 * The health gate of a rollout (patch, restart, or a start with
 * RTMANAGER_START_WAIT_HEALTHY): after the plan's actions, the new engine
 * must answer /healthz and stay healthy for `minHealthyMs` within
 * `timeoutMs`. A gate that fails runs the plan's rollback, when it has one.
 *
 * No worker waits in a gate. Each reconcile of a game in an open gate makes
 * one check (one look at the engine, one probe) and returns: `pending`, and
 * the reconcile writes the interim record (so a controller that stops during
 * the gate resumes it: the planner's resumeGate) and requeues the game in the
 * queue's gate lane; or a verdict, which the reconcile writes. What a check
 * needs that the record does not keep (when the engine turned healthy, the
 * operation-log row, the engine an in-place update replaced) is held here, in
 * memory: a controller that restarts, or a new term of leadership, resumes
 * the gate from its record with a fresh healthy window (never a shorter one)
 * and the deadline the record's rolloutStartedAt set.
 *
 * Lost leadership (or a shutdown) is no verdict on the image: a gate (or a
 * rollback) cut short by it is *aborted*: no rollback, no hold, nothing
 * degraded, and the reconcile writes nothing more. Every call here goes
 * through the reconcile's scope (`input.io`, reconcileScope.ts), whose signal
 * fires then and cuts the call in flight short. The new leader finds the
 * interim record and resumes the gate.
 */
import type { Logger } from "../log.js";
import { RUNTIME_UNAVAILABLE, RtmError, toRtmError } from "../model/errors.js";
import type { Declaration } from "../model/declaration.js";
import type { ObservedContainer } from "../model/ports.js";
import { gateEngine, probeUrl, reportedReadiness } from "./health.js";
import type { ReconcileIo } from "./reconcileScope.js";
import { createActions, inVocabulary, isAccepted, isRunning, rollbackActions, splitContainers, type Action, type HealthGate, type Plan, type PlannedEvent } from "./plan.js";

/**
 * How long an open gate waits between two checks of the engine: a fifth of
 * its healthy window, from 250 ms to 1 s. Each check is a reconcile (two
 * store reads, a look at the engine, one probe); at a flat 250 ms a fleet of
 * 1,000 gates of 5 s made 20,000 of them. An engine that exits wakes its game
 * at once through the runtime's events, whatever the interval.
 */
export const GATE_CHECK_MIN_INTERVAL_MS = 250;
export const GATE_CHECK_MAX_INTERVAL_MS = 1_000;

export function gateCheckIntervalMs(minHealthyMs: number): number {
  return Math.min(GATE_CHECK_MAX_INTERVAL_MS, Math.max(GATE_CHECK_MIN_INTERVAL_MS, Math.round(minHealthyMs / 5)));
}

/** The wait before the next check: the interval, but never past the healthy window's end or the deadline. */
function nextCheckAfterMs(gate: HealthGate, open: OpenGate, now: number): number {
  const until = [open.deadline - now];
  if (open.healthySince !== null) until.push(open.healthySince + gate.minHealthyMs - now);
  return Math.max(1, Math.min(gateCheckIntervalMs(gate.minHealthyMs), ...until));
}

export interface RolloutSettings {
  probeTimeoutMs: number;
}

export interface RolloutDeps {
  settings: RolloutSettings;
  clock: () => Date;
}

/**
 * Runs actions with the reconcile's executor; `beforeAction` sees each one before it is tried. Resolves true when a
 * create was left for a later reconcile because the engine it replaces is still being deleted (actions.ts).
 */
export type Execute = (actions: readonly Action[], beforeAction?: (a: Action) => void) => Promise<boolean | void>;

export interface RolloutInput {
  gameId: string;
  declaration: Declaration;
  plan: Plan;
  gate: HealthGate;
  /** Executing the plan's actions failed with this. */
  actionError: RtmError | null;
  /** Whether the engine that ran before was stopped or removed (or a stop or remove of it was tried). */
  oldTouched: boolean;
  /** When this reconcile planned: the gate's deadline is `now + gate.timeoutMs` (the planner measured it from the record). */
  now: Date;
  opId: string;
  /** The operation-log row the verdict closes; kept open while the gate is. */
  opRow: number | null;
  execute: Execute;
  log: Logger;
  /** The reconcile's runtime, store and prober, and the signal that ends it (lost leadership, shutdown). */
  io: Pick<ReconcileIo, "signal" | "runtime" | "state" | "prober">;
}

export interface RolloutVerdict {
  /** The reconcile's error after the gate: null when the engine proved healthy. */
  error: RtmError | null;
  /** This replica lost leadership before a verdict: nothing is known, nothing may be written. */
  aborted: boolean;
  /** The generation is held: rolled back, never retried until the declaration changes. */
  held: boolean;
  /** The rollback failed too. */
  degraded: boolean;
  events: PlannedEvent[];
}

/** One check of a gate: still open (look again after `afterMs`; the record shows `engine`, the gate open `since`), or its verdict. */
export type RolloutStep = { type: "pending"; afterMs: number; engine: ObservedContainer; since: Date } | { type: "verdict"; verdict: RolloutVerdict };

/**
 * What an open gate keeps between its checks, in this process only. Lost on
 * a restart, and then resumed conservatively: the healthy window starts again.
 */
export interface OpenGate {
  generation: number;
  opId: string;
  opRow: number | null;
  /** The engine the gate watches, once its first check found it (a runtime that restarts it in place reports new ids: see gateEngine). */
  containerId: string | null;
  /** The engine an in-place update stopped; null when there was none, or once it was recreated. */
  replacedId: string | null;
  /** Clock ms by which the engine must have proved healthy: a full timeout after a fresh gate opened, else the record's. */
  deadline: number;
  /** Clock ms since when every probe answered healthy; null after a failure. */
  healthySince: number | null;
  lastProbe: string;
}

/**
 * What one check found. `replaced_finished`: the engine that ran the image
 * before an in-place update was stopped for it and the runtime will not
 * start it again (a Pod's kubelet: restartPolicy OnFailure or Never, once the
 * start of the new image failed after the old container exited 0). That is
 * no exit of the new image, which never ran.
 */
type Check =
  | { kind: "healthy" }
  | { kind: "pending"; engine: ObservedContainer }
  | { kind: "failed"; error: RtmError }
  | { kind: "aborted" }
  | { kind: "replaced_finished"; engine: ObservedContainer };

export class Rollout {
  /** The gates this process has open, by game. */
  private readonly gates = new Map<string, OpenGate>();

  constructor(private readonly deps: RolloutDeps) {}

  /** The gate this process holds open for the game's generation, when the plan continues it. */
  continuing(gameId: string, p: Plan, generation: number | undefined): OpenGate | undefined {
    const open = this.gates.get(gameId);
    return open && p.gate?.resumed && open.generation === generation ? open : undefined;
  }

  /** Forgets the game's open gate (the declaration moved on, or the gate was left); returns it, so its row can be closed. */
  drop(gameId: string): OpenGate | undefined {
    const open = this.gates.get(gameId);
    this.gates.delete(gameId);
    return open;
  }

  /** A new term of leadership: the gates of an earlier one resume from their records (their rows were marked interrupted). */
  forgetAll(): void {
    this.gates.clear();
  }

  /**
   * One step of the gate: the verdict on a failure of the plan's actions, or
   * one check of the engine. A failure before the old engine was touched (the
   * new image could not be pulled, leadership lost before the first action)
   * is not a failed rollout: the old engine still serves, the error stands as
   * it is, and the queue retries with backoff. The runtime not answering is no
   * verdict on the image.
   */
  async run(input: RolloutInput, continued?: OpenGate): Promise<RolloutStep> {
    const { gameId, gate, actionError } = input;
    const verdict = (v: RolloutVerdict): RolloutStep => {
      this.gates.delete(gameId);
      return { type: "verdict", verdict: v };
    };
    if (actionError) return verdict(await this.afterActionError(input, actionError));
    // A fresh gate opens now, after the plan's actions; a resumed one keeps the deadline its record set.
    const openedAt = gate.resumed ? input.now.getTime() : this.deps.clock().getTime();
    const open: OpenGate = continued ?? {
      generation: input.declaration.generation,
      opId: input.opId,
      opRow: input.opRow,
      containerId: null,
      replacedId: replacedEngineId(input.plan),
      deadline: openedAt + gate.timeoutMs,
      healthySince: null,
      lastProbe: "no probe answered yet",
    };
    let check = await this.check(input, open);
    if (check.kind === "replaced_finished") {
      // The recreated engine has a new id: the in-place rollback that named the old one cannot restore it.
      input = { ...input, gate: { ...gate, rollback: gate.rollbackTo ? inVocabulary(rollbackActions(gate.rollbackTo, null), input.io.runtime.verbs) : [] } };
      check = await this.recreate(input, open, check.engine);
    }
    switch (check.kind) {
      case "pending": {
        this.gates.set(gameId, open);
        return { type: "pending", afterMs: nextCheckAfterMs(gate, open, this.deps.clock().getTime()), engine: check.engine, since: new Date(openedAt) };
      }
      case "healthy":
        return verdict(noVerdict(null));
      case "aborted":
        return verdict({ ...noVerdict(null), aborted: true });
      case "failed":
        return verdict(await this.failed(input, check.error));
    }
  }

  private async afterActionError(input: RolloutInput, actionError: RtmError): Promise<RolloutVerdict> {
    // The actions stopped because leadership went (the scope's fence check runs before each runtime call).
    if (input.io.signal.aborted) return { ...noVerdict(actionError), aborted: true };
    const rollbackWanted = !!input.gate.rollbackTo && input.oldTouched;
    if (!rollbackWanted || actionError.code === RUNTIME_UNAVAILABLE) return noVerdict(actionError);
    return this.failed(input, actionError);
  }

  /**
   * One look at the engine and one probe. The deadline of a resumed gate is
   * the planner's (measured from the record's rolloutStartedAt); the healthy
   * window is this process's own, so a resumed gate starts it again.
   */
  private async check(input: RolloutInput, open: OpenGate): Promise<Check> {
    const { settings, clock } = this.deps;
    const { runtime, prober, signal } = input.io;
    const { gameId, gate } = input;
    const failed = (message: string): Check => ({ kind: "failed", error: new RtmError("container_start_failed", message) });
    // A call cut short by the signal rejects; one that ignored it may still have answered after it fired.
    const engines = await runtime.listForGame(gameId);
    if (signal.aborted) return { kind: "aborted" };
    const c = open.containerId ? gateEngine(engines, gameId, open.containerId, runtime.verbs) : (splitContainers(gameId, engines).primary ?? undefined);
    if (c && isReplacedAndFinished(c, open.replacedId)) return { kind: "replaced_finished", engine: c };
    // Accepted and not running yet (a Pod being scheduled or pulled): nothing to probe before the deadline.
    if (c && isAccepted(c, runtime.verbs)) return this.pastDeadline(input, open) ?? { kind: "pending", engine: c };
    if (!c || !isRunning(c)) {
      if (!open.containerId) return failed("the new container is not running");
      // The runtime's own reason (a Pod's ErrImagePull) says more than an exit code it never had.
      return failed(c?.problem ? `the engine stopped running during the health gate: ${c.problem.reason} (${c.problem.message})` : `the engine exited (code ${c?.exitCode ?? "unknown"}) during the health gate`);
    }
    open.containerId ??= c.id;
    // A runtime that reports readiness itself (a Pod's Ready condition) is asked; otherwise /healthz is probed.
    const reported = reportedReadiness(c);
    const url = reported ? null : probeUrl(runtime, c);
    const r = reported ?? (url ? await prober.probe(url, settings.probeTimeoutMs) : null);
    if (signal.aborted) return { kind: "aborted" };
    const now = clock().getTime();
    if (r?.ok) {
      open.healthySince ??= now;
      if (now - open.healthySince >= gate.minHealthyMs) return { kind: "healthy" };
    } else if (r) {
      open.healthySince = null;
      open.lastProbe = r.error ?? `HTTP ${r.statusCode}`;
    }
    return this.pastDeadline(input, open) ?? { kind: "pending", engine: c };
  }

  private pastDeadline(input: RolloutInput, open: OpenGate): Check | null {
    const { gate } = input;
    if (this.deps.clock().getTime() < open.deadline) return null;
    const message = `the engine did not stay healthy for ${gate.minHealthyMs / 1000}s within ${Math.round(gate.timeoutMs / 1000)}s (last /healthz: ${open.lastProbe})`;
    return { kind: "failed", error: new RtmError("container_start_failed", message) };
  }

  /**
   * The engine stopped for an in-place update will never run the new image:
   * recreate it on that image (as the runtime would an evicted engine), once;
   * the gate goes on with the new engine.
   */
  private async recreate(input: RolloutInput, open: OpenGate, finished: ObservedContainer): Promise<Exclude<Check, { kind: "replaced_finished" }>> {
    const d = input.declaration;
    const failed = (message: string) => ({ kind: "failed" as const, error: new RtmError("container_start_failed", message) });
    input.log.warn({ containerId: finished.id, exitCode: finished.exitCode, imageRef: d.imageRef }, "the engine stopped for the in-place update will not be started again: recreating it on the new image");
    try {
      await input.execute(inVocabulary([{ type: "removeAll", reason: null }, ...createActions(d.imageRef)], input.io.runtime.verbs));
    } catch (err) {
      if (input.io.signal.aborted) return { kind: "aborted" };
      const e = toRtmError(err);
      return { kind: "failed", error: new RtmError(e.code, `the runtime did not start ${d.imageRef} after stopping the old engine, and recreating it failed: ${e.message}`) };
    }
    // Without a replaced id the gate cannot find a replaced engine again.
    Object.assign(open, { containerId: null, replacedId: null, healthySince: null });
    const { primary } = splitContainers(input.gameId, await input.io.runtime.listForGame(input.gameId));
    if (!primary || (!isRunning(primary) && !isAccepted(primary, input.io.runtime.verbs))) return failed("the recreated engine is not running");
    open.containerId = primary.id;
    return { kind: "pending", engine: primary };
  }

  /** The gate failed: the plan's rollback when it has one; without one (a restart) the restart policy takes over. */
  private async failed(input: RolloutInput, gateError: RtmError): Promise<RolloutVerdict> {
    const d = input.declaration;
    const verdict = noVerdict(gateError);
    const target = input.gate.rollbackTo;
    if (!target) {
      verdict.error = new RtmError("container_start_failed", `${input.plan.kind ?? "start"} of ${d.imageRef}: ${gateError.message}; the restart policy takes over`);
      return verdict;
    }
    input.log.warn({ from: d.imageRef, to: target, err: gateError }, "patch failed its health gate: rolling back");
    const rollbackError = await this.rollback(input, target);
    if (rollbackError === "aborted") return { ...noVerdict(null), aborted: true };
    verdict.held = true;
    if (rollbackError) {
      verdict.degraded = true;
      verdict.events.push({ type: "rollback_failed", data: { failedImageRef: d.imageRef, targetImageRef: target, message: rollbackError.message } });
      verdict.error = new RtmError(
        "container_start_failed",
        `patch to ${d.imageRef} failed (${gateError.message}) and the rollback to ${target} failed too (${rollbackError.message}); the runtime is degraded`,
      );
    } else {
      verdict.events.push({ type: "patch_rolled_back", data: { failedImageRef: d.imageRef, restoredImageRef: target, reason: gateError.message } });
      verdict.error = new RtmError("container_start_failed", `patch to ${d.imageRef} failed: ${gateError.message}; rolled back to ${target}`);
    }
    return verdict;
  }

  /**
   * The plan's rollback, as its own operation-log row. Returns null when the
   * previous image runs again, "aborted" when leadership went before or during it.
   */
  private async rollback(input: RolloutInput, target: string): Promise<RtmError | null | "aborted"> {
    const { clock } = this.deps;
    const { state, signal } = input.io;
    if (signal.aborted) return "aborted";
    const row = await state.startOperation({
      opId: input.opId,
      gameId: input.gameId,
      kind: "rollback",
      opSource: "reconcile",
      imageRef: target,
      generation: input.declaration.generation,
      errorCode: null,
      message: `rolling back to ${target}`,
      stopReason: null,
      startedAt: clock(),
    });
    let failure: RtmError | null = null;
    // The rollback checks its image before it removes anything: without the target, the
    // failing container is all there is, and removing it would leave nothing running.
    let removed = false;
    try {
      await input.execute(input.gate.rollback, (a) => {
        if (a.type === "removeAll") removed = true;
      });
    } catch (err) {
      // Stopped by lost leadership, not by the runtime: the new leader takes the rollout over.
      if (signal.aborted) return "aborted";
      failure = toRtmError(err);
      if (!removed && failure.code === "image_pull_failed") {
        failure = new RtmError(
          "image_pull_failed",
          `rollback target ${target} is no longer present locally (a rollback never pulls); the failing container was left in place`,
          { imageRef: target },
        );
      }
    }
    await state.finishOperation(row, {
      outcome: failure ? "failure" : "success",
      errorCode: failure?.code ?? null,
      message: failure ? failure.message : `restored ${target}`,
      finishedAt: clock(),
    });
    return failure;
  }
}

/**
 * A patch that swaps a running engine now (not the next check of its gate):
 * the work a fleet rollout is made of, which holds a worker for seconds (a
 * stop, a remove, a create and a start on an imperative runtime). The queue
 * runs these out of its rollout lane, a few at a time, behind fresh changes.
 */
export function isSwap(p: Plan): boolean {
  return p.kind === "patch" && !!p.gate && !p.gate.resumed && p.actions.length > 0;
}

/** The engine an in-place update swaps the image of: the container that ran the image before. */
function replacedEngineId(plan: Plan): string | null {
  for (const a of plan.actions) if (a.type === "updateImage") return a.containerId;
  return null;
}

/**
 * The container that ran the old image, stopped (exit 0 on SIGTERM) and left
 * stopped by the runtime (exited: it will not restart it). A termination of
 * any other container, or one the runtime restarts (running, restarting), or
 * an image it cannot pull (pending, pull_failed), stays the gate's verdict as
 * before.
 */
function isReplacedAndFinished(c: ObservedContainer, replacedId: string | null): boolean {
  return replacedId !== null && c.id === replacedId && c.phase === "exited";
}

function noVerdict(error: RtmError | null): RolloutVerdict {
  return { error, aborted: false, held: false, degraded: false, events: [] };
}
