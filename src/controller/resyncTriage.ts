/**
 * Which games a periodic resync must reconcile. A full reconcile of every game
 * on every pass (two store reads, a runtime list and inspect, and a record
 * write whenever a probe time moved) is what made an idle fleet of 200 cost
 * about 3 % of a core. The bulk lists a pass makes anyway already show when a
 * running game's declaration, record, container and health agree; such a game
 * is skipped. Anything else, and anything these lists cannot show, is queued.
 * Pure, so the cases are unit-tested without a runtime.
 */
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { HealthTracker, TrackedHealth } from "./health.js";
import type { PlannerInput } from "./plan.js";
import { plan, splitContainers } from "./planner.js";
import { deriveRecord } from "./recordDerivation.js";

export interface SteadyInput {
  /** The declaration's generation; undefined when there is none. */
  generation: number | undefined;
  record: RuntimeRecord | undefined;
  /** This game's managed containers, from the list (no inspect). */
  containers: readonly ObservedContainer[];
  /** The prober's latest observation of the running container, if any. */
  health: TrackedHealth | null;
}

export function isSteady({ generation, record, containers, health }: SteadyInput): boolean {
  if (generation === undefined || !record) return false;
  // Converged on the current declaration, nothing pending, nothing remembered as wrong.
  if (record.status !== "running" || record.observedGeneration !== generation) return false;
  if (record.lastErrorCode !== null || record.rolloutStartedAt !== null || record.degraded || record.heldGeneration !== null) return false;
  // A restart count is reset by a reconcile after a healthy period.
  if (record.restartCount > 0) return false;
  // Exactly the container the record names, running, made from this generation.
  if (containers.length !== 1) return false;
  const [c] = containers;
  if (!c || c.id !== record.currentContainerId || c.phase !== "running" || c.restarting || c.generation !== generation || c.imageRef !== record.currentImageRef) return false;
  // The record's health must match the prober's; a change is written by a reconcile.
  if (health) {
    const probed = health.healthy ? "healthy" : "unhealthy";
    if (record.health !== probed || record.consecutiveProbeFailures !== health.consecutiveFailures) return false;
  }
  return true;
}

/** What the full pass checks one game against: a reconcile's inputs, read in bulk. */
export interface QuietInput extends Omit<PlannerInput, "health" | "declarationError"> {
  health: Pick<HealthTracker, "get">;
  location: { statePath: string; dockerNetwork: string };
}

/**
 * The full pass's check (every FULL_RESYNC_EVERY-th pass, src/controller/runnables/resync.ts):
 * the planner's own decision on the bulk lists, and the record a reconcile
 * would derive from it. A game the planner would leave alone and whose record
 * would not change is not queued: a reconcile of it would observe the same
 * things one by one (two store reads and a runtime list each) only to write
 * nothing. Anything the planner would act on, report or wait for is queued,
 * and the reconcile then decides on fresh reads.
 */
export function reconcileWouldDoNothing(input: QuietInput): boolean {
  const { gameId, containers, record, declaration } = input;
  const primary = splitContainers(gameId, containers).primary;
  const health = input.health.get(gameId, primary?.id ?? null);
  const p = plan({ ...input, declarationError: null, health });
  if (p.kind !== null || p.actions.length > 0 || p.events.length > 0 || p.gate || p.hold || p.orphanReport || p.requeueAfterMs !== null) return false;
  if (declaration === null && record === null) return true;
  const derived = deriveRecord({ gameId, previous: record, declaration, container: primary, plan: p, error: null, health, now: input.now, ...input.location });
  return record !== null && sameFields(record, derived);
}

/**
 * Field by field, Dates by value. Aside: `updatedAt` (every derivation sets
 * it) and `lastProbeAt`, which moves with every probe: rewriting every record
 * for it alone is the cost the triaged passes already decline (isSteady), and
 * no reader of the contract sees it. A change of health itself still counts.
 */
function sameFields(a: RuntimeRecord, b: RuntimeRecord): boolean {
  for (const key of Object.keys(b) as (keyof RuntimeRecord)[]) {
    if (key === "updatedAt" || key === "lastProbeAt") continue;
    const x = a[key] ?? null;
    const y = b[key] ?? null;
    if (x instanceof Date || y instanceof Date) {
      if (!(x instanceof Date && y instanceof Date && x.getTime() === y.getTime())) return false;
    } else if (x !== y) return false;
  }
  return true;
}
