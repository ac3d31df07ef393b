/**
 * The rules the running situations (planRunning.ts) share: what a declared
 * restart is, what counts as a new exit or as unhealthy, how a restart is
 * counted and backed off, the health gate of a rollout, and a refused patch.
 * Pure, like the planner.
 */
import { configHash, type Declaration } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { assertPatchAllowed } from "../model/imageRef.js";
import { backoffDelay } from "../model/backoff.js";
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { CRASH_LOOP_THRESHOLD, rollbackActions, type HealthGate, type Plan, type PlannerInput, type PlannerSettings, type RestartCause } from "./plan.js";

export function tokenDiffers(d: Declaration, c: ObservedContainer): boolean {
  return (c.restartToken ?? null) !== (d.restartToken ?? null);
}

export function declaredRestart(d: Declaration, c: ObservedContainer): RestartCause | null {
  if (tokenDiffers(d, c)) return "restart_requested";
  if (configChanged(d, c)) return "config_changed";
  // Only a runtime that fixes the policy at creation reports it (a Pod); an imperative runtime's is applied by the controller.
  if (policyFixedAndChanged(d, c)) return "config_changed";
  return null;
}

/** Env or resources differ. A container from before the config-hash label cannot tell; it is left alone rather than restarted. */
function configChanged(d: Declaration, c: ObservedContainer): boolean {
  return c.configHash !== null && c.configHash !== configHash(d);
}

function policyFixedAndChanged(d: Declaration, c: ObservedContainer): boolean {
  return c.restartPolicy !== undefined && c.restartPolicy !== null && c.restartPolicy !== d.restartPolicy;
}

export function restartReason(d: Declaration, c: ObservedContainer, cause: RestartCause): string {
  if (cause === "restart_requested") return "restart requested";
  const policy = policyFixedAndChanged(d, c) ? `restart policy changed (${c.restartPolicy} -> ${d.restartPolicy})` : null;
  const config = configChanged(d, c) ? "env or resources changed" : null;
  return [config, policy].filter(Boolean).join("; ");
}

export function isUnhealthy(input: PlannerInput): boolean {
  return !!input.health && input.health.consecutiveFailures >= input.settings.probeFailureThreshold;
}

/** An exit not yet recorded: the record still believes it runs, or the exit is newer than the last one seen. */
export function isNewExit(c: ObservedContainer, record: RuntimeRecord | null): boolean {
  if (!record) return true;
  if (record.currentContainerId !== c.id) return true;
  if (record.status === "running") return true;
  return !!c.finishedAt && !!record.stoppedAt && c.finishedAt.getTime() > record.stoppedAt.getTime();
}

/** A restart by the restart policy: counted, and reported as a crash loop from the third in a row. */
export function countRestart(p: Plan, record: RuntimeRecord | null, cause: RestartCause, data: Record<string, unknown>): void {
  p.kind = "self_heal";
  p.restartCause = cause;
  p.restartCount = (record?.restartCount ?? 0) + 1;
  if (p.restartCount >= CRASH_LOOP_THRESHOLD) p.events.push({ type: "crash_loop", data: { restartCount: p.restartCount, ...data } });
}

/** Running long enough resets the crash-loop count, as Kubernetes does after ten minutes. */
export function resetCrashLoop(p: Plan, input: PlannerInput, c: ObservedContainer): void {
  if (c.startedAt && input.now.getTime() - c.startedAt.getTime() >= input.settings.crashLoopResetMs) p.restartCount = 0;
}

/** Remaining crash-loop backoff, measured from when the engine last went down. */
export function restartDelay(input: PlannerInput, since: Date | null): number {
  const n = input.record?.restartCount ?? 0;
  if (n === 0) return 0;
  const delay = backoffDelay(n - 1, { baseMs: input.settings.restartBackoffBaseMs, maxMs: input.settings.restartBackoffMaxMs });
  const elapsed = since ? input.now.getTime() - since.getTime() : delay;
  return Math.max(0, delay - elapsed);
}

export function gate(settings: PlannerSettings, rollbackTo: string | null, timeoutMs: number, inPlace: { containerId: string } | null): HealthGate {
  return { minHealthyMs: settings.patchMinHealthyMs, timeoutMs, rollbackTo, rollback: rollbackTo ? rollbackActions(rollbackTo, inPlace) : [], resumed: false };
}

/** The gate of a fresh rollout; none when RTMANAGER_PATCH_HEALTH_TIMEOUT is 0. */
export function gateFor(settings: PlannerSettings, rollbackTo: string | null, inPlace: { containerId: string } | null = null): HealthGate | null {
  return settings.patchHealthTimeoutMs > 0 ? gate(settings, rollbackTo, settings.patchHealthTimeoutMs, inPlace) : null;
}

export function checkPatch(fromRef: string, toRef: string): RtmError | null {
  try {
    assertPatchAllowed(fromRef, toRef);
    return null;
  } catch (err) {
    if (err instanceof RtmError) return err;
    throw err;
  }
}

/** A refused patch: nothing is touched but strays, and the refusal is held until the declaration changes. */
export function holdPlan(p: Plan, err: RtmError): Plan {
  p.actions = p.actions.filter((a) => a.type === "stop" || a.type === "remove");
  p.hold = { code: err.code, message: err.message };
  p.kind = "patch";
  p.converges = false;
  p.reason = `refused: ${err.message}`;
  return p;
}
