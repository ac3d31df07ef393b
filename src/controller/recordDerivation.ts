/**
 * The record after a reconcile, derived from what Docker shows afterwards:
 * the record reports reality, never what the controller hoped to achieve.
 */
import type { Declaration } from "../model/declaration.js";
import type { RtmError } from "../model/errors.js";
import { engineEndpoint } from "../model/gameId.js";
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { RuntimeStatus } from "../model/status.js";
import { isRunning, type HealthObservation, type Plan } from "./planner.js";

export interface DeriveInput {
  gameId: string;
  previous: RuntimeRecord | null;
  declaration: Declaration | null;
  container: ObservedContainer | null;
  plan: Plan;
  /** Set when executing the plan failed. */
  error: RtmError | null;
  health: HealthObservation | null;
  now: Date;
  statePath: string;
  dockerNetwork: string;
}

export function statusOf(c: ObservedContainer | null): RuntimeStatus {
  if (!c) return "removed";
  return isRunning(c) ? "running" : "stopped";
}

export function deriveRecord(input: DeriveInput): RuntimeRecord {
  const { previous: prev, container: c, plan, error, now, declaration: d } = input;
  const status = statusOf(c);
  const acted = plan.actions.length > 0 || plan.kind !== null;
  const statusChanged = prev?.status !== status || prev?.currentContainerId !== (c?.id ?? null);
  const failedGeneration = error ? (d?.generation ?? null) : null;

  let lastErrorCode = prev?.lastErrorCode ?? null;
  let lastErrorMessage = prev?.lastErrorMessage ?? null;
  let lastErrorGeneration = prev?.lastErrorGeneration ?? null;
  if (error) {
    lastErrorCode = error.code;
    lastErrorMessage = error.message;
    lastErrorGeneration = failedGeneration;
  } else if (plan.hold) {
    lastErrorCode = plan.hold.code;
    lastErrorMessage = plan.hold.message;
    lastErrorGeneration = d?.generation ?? null;
  } else if (d && plan.converges) {
    lastErrorCode = null;
    lastErrorMessage = null;
    lastErrorGeneration = null;
  }

  const observedGeneration = d && !error && !plan.hold && plan.converges ? d.generation : (prev?.observedGeneration ?? 0);
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
    observedGeneration,
    restartCount: plan.restartCount,
    lastExitCode: c && !isRunning(c) ? c.exitCode : (prev?.lastExitCode ?? null),
    lastErrorCode,
    lastErrorMessage,
    lastErrorGeneration,
    health: status !== "running" ? "unknown" : health ? (health.healthy ? "healthy" : "unhealthy") : (prev?.health ?? "unknown"),
    consecutiveProbeFailures: status === "running" ? (health?.consecutiveFailures ?? prev?.consecutiveProbeFailures ?? 0) : 0,
    lastProbeAt: health?.lastProbeAt ?? prev?.lastProbeAt ?? null,
    previousImageRef: imageChanged ? (prev?.currentImageRef ?? null) : (prev?.previousImageRef ?? null),
    // The reconciler sets it while a health gate is open; any finished reconcile closes it.
    rolloutStartedAt: null,
    // A successful converge proves the runtime healthy again.
    degraded: d && plan.converges && !error && !plan.hold ? false : (prev?.degraded ?? false),
    heldGeneration: d && prev?.heldGeneration === d.generation ? prev.heldGeneration : null,
    updatedAt: now,
  };
}
