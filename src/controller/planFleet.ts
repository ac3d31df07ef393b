/**
 * The fleet's holds on a patch, pure like the rest of the planner: given the
 * quarantined images and the canaries of each target image (FleetView, read
 * by the reconciler from src/controller/fleet.ts), may this game's patch to
 * `target` go ahead now?
 *
 * - A quarantined target is held with the contract's container_start_failed
 *   naming the quarantine, until it is lifted (a new image is never held).
 * - With RTMANAGER_PATCH_CANARIES=N, a target no game runs healthy yet
 *   ("unproven") is patched on N games first; every other game waits (a
 *   requeue, not a failure) until one canary has passed its gate. A canary
 *   that rolls back frees its slot for the next game, so a broken image is
 *   tried on at most RTMANAGER_QUARANTINE_AFTER games before the quarantine
 *   fails every game still waiting.
 */
import { quarantineMessage } from "./quarantine.js";
import type { Plan, PlannerInput } from "./plan.js";

export type { FleetView } from "./quarantine.js";

/** How often a game held behind canaries looks again when nothing wakes it earlier. */
export const CANARY_RECHECK_MS = 5_000;

export const CANARY_WAIT_REASON = "waiting for canaries";

/** Null when the patch to `target` may go ahead; else `p`, holding it. */
export function fleetHold(p: Plan, input: PlannerInput, target: string): Plan | null {
  const fleet = input.fleet;
  if (!fleet) return null;
  const held = quarantineHold(p, input, target);
  if (held) return held;
  if (fleet.canaries <= 0 || fleet.proven(target)) return null;
  const flying = fleet.inFlight(target);
  if (flying.has(input.gameId) || flying.size < fleet.canaries) return null;
  p.actions = p.actions.filter((a) => a.type === "stop" || a.type === "remove");
  p.converges = false;
  p.requeueAfterMs = CANARY_RECHECK_MS;
  p.reason = `${CANARY_WAIT_REASON}: ${target} is new to the fleet and patched on ${fleet.canaries} game(s) first; waiting for ${[...flying].sort().join(", ")} to pass the health gate`;
  return p;
}

const QUARANTINE_HOLD_REASON = "held by a quarantine";

/** Whether a fleet hold keeps this plan waiting (so the fleet can wake it when a canary passes or a quarantine changes). */
export function heldByFleet(p: Plan): boolean {
  return p.reason.startsWith(CANARY_WAIT_REASON) || p.reason.startsWith(QUARANTINE_HOLD_REASON);
}

/** Null unless `target` is quarantined; else `p`, holding the patch with the quarantine's message. */
export function quarantineHold(p: Plan, input: PlannerInput, target: string): Plan | null {
  const q = input.fleet?.quarantined.get(target);
  if (!q) return null;
  const message = quarantineMessage(q);
  const d = input.declaration;
  // Recorded once: a held game looked at again (each resync) adds no operation-log row.
  const recorded = !!d && input.record?.lastErrorGeneration === d.generation && input.record.lastErrorMessage === message;
  p.actions = p.actions.filter((a) => a.type === "stop" || a.type === "remove");
  p.hold = { code: "container_start_failed", message };
  p.kind = recorded ? null : "patch";
  p.converges = false;
  p.reason = `${QUARANTINE_HOLD_REASON}: ${message}`;
  return p;
}
