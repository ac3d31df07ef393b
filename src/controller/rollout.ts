/**
 * The health gate of a rollout (patch, restart, or a start with
 * RTMANAGER_START_WAIT_HEALTHY): after the plan's actions, the new engine
 * must answer /healthz and stay healthy for `minHealthyMs` within
 * `timeoutMs`. A gate that fails runs the plan's rollback, when it has one.
 * An interim record is written first, so a controller that stops during the
 * wait resumes it on its next start (the planner's resumeGate).
 *
 * Lost leadership is no verdict on the image: a gate (or a rollback) cut
 * short by it is *aborted*: no rollback, no hold, nothing degraded, and the
 * reconcile writes nothing more. The new leader finds the interim record and
 * resumes the gate.
 */
import type { Logger } from "../log.js";
import { RUNTIME_UNAVAILABLE, RtmError, toRtmError } from "../model/errors.js";
import type { Declaration } from "../model/declaration.js";
import type { HealthProber, ObservedContainer, RuntimePort, StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { recordLocationOf } from "./actions.js";
import { gateEngine, probeUrl, reportedReadiness } from "./health.js";
import { createActions, isRunning, rollbackActions, splitContainers, type Action, type HealthGate, type Plan, type PlannedEvent } from "./plan.js";
import { deriveRecord } from "./recordDerivation.js";

/** How often the gate probes the new engine. */
const GATE_PROBE_INTERVAL_MS = 250;

export interface RolloutSettings {
  probeTimeoutMs: number;
  dockerNetwork: string;
  stateRoot: string;
}

export interface RolloutDeps {
  runtime: RuntimePort;
  state: StateStore;
  prober: HealthProber;
  settings: RolloutSettings;
  clock: () => Date;
  mayAct?: () => boolean;
  onRecord(record: RuntimeRecord): void;
}

/** Runs actions with the reconcile's executor; `beforeAction` sees each one before it is tried. */
export type Execute = (actions: readonly Action[], beforeAction?: (a: Action) => void) => Promise<void>;

export interface RolloutInput {
  gameId: string;
  declaration: Declaration;
  previous: RuntimeRecord | null;
  plan: Plan;
  gate: HealthGate;
  /** Executing the plan's actions failed with this. */
  actionError: RtmError | null;
  /** Whether the engine that ran before was stopped or removed (or a stop or remove of it was tried). */
  oldTouched: boolean;
  now: Date;
  opId: string;
  execute: Execute;
  log: Logger;
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

/**
 * What waiting for health found. `replaced_finished`: the engine that ran the
 * image before an in-place update was stopped for it and the runtime will not
 * start it again (a Pod's kubelet: restartPolicy OnFailure or Never, once the
 * start of the new image failed after the old container exited 0). That is
 * no exit of the new image, which never ran.
 */
type GateResult = { kind: "healthy" } | { kind: "failed"; error: RtmError } | { kind: "aborted" } | { kind: "replaced_finished"; engine: ObservedContainer };

export class Rollout {
  constructor(private readonly deps: RolloutDeps) {}

  private lostLeadership(): boolean {
    return !!this.deps.mayAct && !this.deps.mayAct();
  }

  /**
   * A failure before the old engine was touched (the new image could not be
   * pulled, leadership lost before the first action) is not a failed rollout:
   * the old engine still serves, the error stands as it is, and the queue
   * retries with backoff. The runtime not answering is no verdict on the image.
   */
  async run(input: RolloutInput): Promise<RolloutVerdict> {
    const { gate, actionError, declaration: d } = input;
    const verdict: RolloutVerdict = { error: actionError, aborted: false, held: false, degraded: false, events: [] };
    const aborted = (): RolloutVerdict => ({ ...verdict, aborted: true });
    // The actions stopped because leadership went (executeActions checks before each one).
    if (actionError && this.lostLeadership()) return aborted();
    const rollbackWanted = !!gate.rollbackTo && input.oldTouched;
    if ((actionError && !rollbackWanted) || actionError?.code === RUNTIME_UNAVAILABLE) return verdict;

    let gateResult: GateResult = actionError ? { kind: "failed", error: actionError } : await this.openGate(input, replacedEngineId(input.plan));
    if (gateResult.kind === "replaced_finished") {
      // The recreated engine has a new id: the in-place rollback that named the old one cannot restore it.
      input = { ...input, gate: { ...gate, rollback: gate.rollbackTo ? rollbackActions(gate.rollbackTo, null) : [] } };
      gateResult = await this.recreateAndGate(input, gateResult.engine);
    }
    if (gateResult.kind === "aborted") return aborted();
    if (gateResult.kind === "healthy") return verdict;
    const gateError = gateResult.error;
    if (!gate.rollbackTo) {
      verdict.error = new RtmError("container_start_failed", `${input.plan.kind ?? "start"} of ${d.imageRef}: ${gateError.message}; the restart policy takes over`);
      return verdict;
    }
    const target = gate.rollbackTo;
    input.log.warn({ from: d.imageRef, to: target, err: gateError }, "patch failed its health gate: rolling back");
    const rollbackError = await this.rollback(input, target);
    if (rollbackError === "aborted") return aborted();
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
   * The engine stopped for an in-place update will never run the new image:
   * recreate it on that image (as the runtime would an evicted engine), once,
   * and gate the new engine.
   */
  private async recreateAndGate(input: RolloutInput, finished: ObservedContainer): Promise<Exclude<GateResult, { kind: "replaced_finished" }>> {
    const d = input.declaration;
    input.log.warn({ containerId: finished.id, exitCode: finished.exitCode, imageRef: d.imageRef }, "the engine stopped for the in-place update will not be started again: recreating it on the new image");
    if (this.lostLeadership()) return { kind: "aborted" };
    try {
      await input.execute([{ type: "removeAll", reason: null }, ...createActions(d.imageRef)]);
    } catch (err) {
      if (this.lostLeadership()) return { kind: "aborted" };
      const e = toRtmError(err);
      return { kind: "failed", error: new RtmError(e.code, `the runtime did not start ${d.imageRef} after stopping the old engine, and recreating it failed: ${e.message}`) };
    }
    const result = await this.openGate(input, null);
    // Without a replaced id the gate cannot find a replaced engine again.
    return result.kind === "replaced_finished" ? { kind: "failed", error: new RtmError("container_start_failed", "the recreated engine is not running") } : result;
  }

  /** Writes the interim record, then waits for health. `replacedId`: the engine an in-place update stopped. */
  private async openGate(input: RolloutInput, replacedId: string | null): Promise<GateResult> {
    const { runtime, state, settings } = this.deps;
    const { gameId, gate } = input;
    const { primary } = splitContainers(gameId, await runtime.listForGame(gameId));
    if (primary && isReplacedAndFinished(primary, replacedId)) return { kind: "replaced_finished", engine: primary };
    if (!primary || !isRunning(primary)) return { kind: "failed", error: new RtmError("container_start_failed", "the new container is not running") };
    const interim = deriveRecord({
      gameId,
      previous: input.previous,
      declaration: input.declaration,
      container: primary,
      plan: input.plan,
      error: null,
      health: null,
      now: input.now,
      ...recordLocationOf(runtime, settings, gameId),
      gateOpen: { since: input.now, rollbackTo: gate.rollbackTo },
    });
    // Fenced like every loop write: a former leader's interim record is refused (it throws) and never announced.
    await state.putRecord(interim);
    this.deps.onRecord(interim);
    return this.awaitHealthy(gameId, primary.id, gate, replacedId);
  }

  private async awaitHealthy(gameId: string, containerId: string, gate: HealthGate, replacedId: string | null): Promise<GateResult> {
    const { runtime, prober, settings } = this.deps;
    const deadline = Date.now() + gate.timeoutMs;
    let healthySince: number | null = null;
    let last = "no probe answered yet";
    const failed = (message: string): GateResult => ({ kind: "failed", error: new RtmError("container_start_failed", message) });
    for (;;) {
      if (this.lostLeadership()) return { kind: "aborted" };
      const c = gateEngine(await runtime.listForGame(gameId), gameId, containerId, runtime.capabilities);
      // Checked again after each await: a replica paused mid-call wakes up without its lease.
      if (this.lostLeadership()) return { kind: "aborted" };
      if (c && isReplacedAndFinished(c, replacedId)) return { kind: "replaced_finished", engine: c };
      if (!c || !isRunning(c)) return failed(`the engine exited (code ${c?.exitCode ?? "unknown"}) during the health gate`);
      // A runtime that reports readiness itself (a Pod's Ready condition) is asked; otherwise /healthz is probed.
      const reported = reportedReadiness(c);
      const url = reported ? null : probeUrl(runtime, c);
      const r = reported ?? (url ? await prober.probe(url, settings.probeTimeoutMs) : null);
      if (r) {
        if (this.lostLeadership()) return { kind: "aborted" };
        if (r.ok) {
          healthySince ??= Date.now();
          if (Date.now() - healthySince >= gate.minHealthyMs) return { kind: "healthy" };
        } else {
          healthySince = null;
          last = r.error ?? `HTTP ${r.statusCode}`;
        }
      }
      if (Date.now() >= deadline) {
        return failed(`the engine did not stay healthy for ${gate.minHealthyMs / 1000}s within ${Math.round(gate.timeoutMs / 1000)}s (last /healthz: ${last})`);
      }
      await new Promise((r) => setTimeout(r, Math.min(GATE_PROBE_INTERVAL_MS, Math.max(1, deadline - Date.now()))));
    }
  }

  /**
   * The plan's rollback, as its own operation-log row. Returns null when the
   * previous image runs again, "aborted" when leadership went before or during it.
   */
  private async rollback(input: RolloutInput, target: string): Promise<RtmError | null | "aborted"> {
    const { state, clock } = this.deps;
    if (this.lostLeadership()) return "aborted";
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
      if (this.lostLeadership()) return "aborted";
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

/** The engine an in-place update swaps the image of: the container that ran the image before. */
function replacedEngineId(plan: Plan): string | null {
  for (const a of plan.actions) if (a.type === "updateImage") return a.containerId;
  return null;
}

/**
 * The container that ran the old image, stopped (exit 0 on SIGTERM) and left
 * stopped by the runtime ("exited": it will not restart it). A termination of
 * any other container, or one the runtime restarts ("restarting"), or an
 * image it cannot pull ("dead"), stays the gate's verdict as before.
 */
function isReplacedAndFinished(c: ObservedContainer, replacedId: string | null): boolean {
  return replacedId !== null && c.id === replacedId && c.state === "exited";
}
