/**
 * The record after a reconcile, derived from what the runtime shows
 * afterwards: the record reports reality, never what the controller hoped to
 * achieve. The only place that sets a record's fields: the interim record of
 * an open health gate, the verdict of a rollout (held, degraded) and the
 * record of a reconcile that could not observe are all derived here.
 */
import type { Declaration } from "../model/declaration.js";
import type { RtmError } from "../model/errors.js";
import { engineEndpoint } from "../model/gameId.js";
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { RuntimeStatus } from "../model/status.js";
import { blankPlan, isRunning, type HealthObservation, type Plan } from "./plan.js";

export interface DeriveInput {
  gameId: string;
  previous: RuntimeRecord | null;
  declaration: Declaration | null;
  container: ObservedContainer | null;
  plan: Plan;
  /** Set when executing the plan (or its rollout) failed. */
  error: RtmError | null;
  health: HealthObservation | null;
  now: Date;
  statePath: string;
  dockerNetwork: string;
  /** A health gate is open: the record is interim, so a crash during the wait resumes it. */
  /** The gate this reconcile holds open; `fresh` when it opened now (a resumed gate keeps the record's start). */
  gateOpen?: { since: Date; rollbackTo: string | null; fresh: boolean };
  /** The rollout's verdict: the generation is held (rolled back), the runtime is degraded (the rollback failed too). */
  verdict?: { held: boolean; degraded: boolean };
}

export function statusOf(c: ObservedContainer | null): RuntimeStatus {
  if (!c) return "removed";
  return isRunning(c) ? "running" : "stopped";
}

export function deriveRecord(input: DeriveInput): RuntimeRecord {
  const { previous: prev, container: c, plan, error, now, declaration: d, gateOpen, verdict } = input;
  const status = statusOf(c);
  const acted = plan.actions.length > 0 || plan.kind !== null;
  const statusChanged = prev?.status !== status || prev?.currentContainerId !== (c?.id ?? null);
  // An open gate has not converged yet: the generation is reached when the engine proves healthy.
  const converges = plan.converges && !gateOpen;
  const health = input.health;
  const imageChanged = !!c && !!prev?.currentImageRef && prev.currentImageRef !== c.imageRef;

  return {
    gameId: input.gameId,
    status,
    currentContainerId: c?.id ?? null,
    currentImageRef: c?.imageRef ?? null,
    engineEndpoint: c ? engineEndpoint(input.gameId) : null,
    statePath: input.statePath,
    dockerNetwork: prev && !statusChanged ? prev.dockerNetwork : input.dockerNetwork,
    startedAt: c?.startedAt ?? prev?.startedAt ?? null,
    stoppedAt: status === "stopped" ? (c?.finishedAt ?? prev?.stoppedAt ?? now) : (prev?.stoppedAt ?? null),
    removedAt: status === "removed" && prev && prev.status !== "removed" ? now : (prev?.removedAt ?? null),
    lastOpAt: acted || statusChanged || error ? now : (prev?.lastOpAt ?? now),
    createdAt: prev?.createdAt ?? now,
    observedGeneration: d && !error && !plan.hold && converges ? d.generation : (prev?.observedGeneration ?? 0),
    // A runtime that restarts engines itself reports its own count (a Pod's restartCount); the planner compares against it.
    // A recreate by the controller starts a new engine at 0, so its own count (the plan's) is kept over a lower one.
    restartCount: c?.restartCount !== undefined && c.restartCount !== null ? Math.max(c.restartCount, plan.restartCount) : plan.restartCount,
    lastExitCode: c && !isRunning(c) ? c.exitCode : (prev?.lastExitCode ?? null),
    ...lastError(prev, d, error, plan, converges),
    health: status !== "running" ? "unknown" : health ? (health.healthy ? "healthy" : "unhealthy") : (prev?.health ?? "unknown"),
    consecutiveProbeFailures: status === "running" ? (health?.consecutiveFailures ?? prev?.consecutiveProbeFailures ?? 0) : 0,
    lastProbeAt: health?.lastProbeAt ?? prev?.lastProbeAt ?? null,
    // While a gate is open this is its rollback target and nothing else: a restart's gate (none) must not
    // inherit an older patch's image, or the resumed gate (planRunning resumeGate) would read as that patch.
    previousImageRef: gateOpen ? gateOpen.rollbackTo : imageChanged ? (prev?.currentImageRef ?? null) : (prev?.previousImageRef ?? null),
    // Set while a health gate is open (kept across a resumed gate); any finished reconcile closes it.
    rolloutStartedAt: gateOpen ? (gateOpen.fresh ? gateOpen.since : (prev?.rolloutStartedAt ?? gateOpen.since)) : null,
    // A rollback that failed leaves it degraded; a successful converge proves it healthy again.
    degraded: verdict?.degraded ? true : d && converges && !error && !plan.hold ? false : (prev?.degraded ?? false),
    heldGeneration: d && (verdict?.held || prev?.heldGeneration === d.generation) ? d.generation : null,
    lostNode: c?.lostPlacement?.node ?? null,
    lostNodeSince: c?.lostPlacement ? (prev?.lostNode === c.lostPlacement.node ? (prev.lostNodeSince ?? c.lostPlacement.since) : c.lostPlacement.since) : null,
    updatedAt: now,
  };
}

function lastError(
  prev: RuntimeRecord | null,
  d: Declaration | null,
  error: RtmError | null,
  plan: Plan,
  converges: boolean,
): Pick<RuntimeRecord, "lastErrorCode" | "lastErrorMessage" | "lastErrorGeneration"> {
  if (error) return { lastErrorCode: error.code, lastErrorMessage: error.message, lastErrorGeneration: d?.generation ?? null };
  if (plan.hold) return { lastErrorCode: plan.hold.code, lastErrorMessage: plan.hold.message, lastErrorGeneration: d?.generation ?? null };
  if (plan.problem) return { lastErrorCode: plan.problem.code, lastErrorMessage: plan.problem.message, lastErrorGeneration: d?.generation ?? null };
  if (d && converges) return { lastErrorCode: null, lastErrorMessage: null, lastErrorGeneration: null };
  return { lastErrorCode: prev?.lastErrorCode ?? null, lastErrorMessage: prev?.lastErrorMessage ?? null, lastErrorGeneration: prev?.lastErrorGeneration ?? null };
}

/**
 * The runtime or the store did not answer, so nothing was observed: the
 * previous record with the error on it (waiters learn of the failure), or,
 * for a game never recorded, a removed record carrying it.
 */
export function deriveFailedObservation(input: {
  gameId: string;
  previous: RuntimeRecord | null;
  declaration: Declaration | null;
  error: RtmError;
  now: Date;
  statePath: string;
  dockerNetwork: string;
}): RuntimeRecord {
  const { previous: prev, declaration: d, error, now } = input;
  const base = prev ?? deriveRecord({ ...input, container: null, plan: idlePlan(), error, health: null });
  return {
    ...base,
    lastErrorCode: error.code,
    lastErrorMessage: error.message,
    lastErrorGeneration: d?.generation ?? prev?.lastErrorGeneration ?? null,
    updatedAt: now,
  };
}

/** A plan of nothing that converges nothing: what a reconcile that could not plan did. */
function idlePlan(): Plan {
  return { ...blankPlan(0, null), converges: false, reason: "not observed" };
}

/** Whether writing `b` would change what `a` says (its write time aside): an unchanged record is not written again. */
export function sameRecord(a: RuntimeRecord | null, b: RuntimeRecord): boolean {
  if (!a) return false;
  const strip = (r: RuntimeRecord) => JSON.stringify({ ...r, updatedAt: null });
  return strip(a) === strip(b);
}
