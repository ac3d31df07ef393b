/**
 * Which games a periodic resync must reconcile. A full reconcile of every game
 * on every pass (two store reads, a Docker list and inspect, and a record
 * write whenever a probe time moved) is what made an idle fleet of 200 cost
 * about 3 % of a core. The bulk lists a pass makes anyway already show when a
 * running game's declaration, record, container and health agree; such a game
 * is skipped. Anything else, and anything these lists cannot show, is queued.
 * Pure, so the cases are unit-tested without Docker.
 */
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { TrackedHealth } from "./health.js";

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
  if (!c || c.id !== record.currentContainerId || c.state !== "running" || c.generation !== generation || c.imageRef !== record.currentImageRef) return false;
  // The record's health must match the prober's; a change is written by a reconcile.
  if (health) {
    const probed = health.healthy ? "healthy" : "unhealthy";
    if (record.health !== probed || record.consecutiveProbeFailures !== health.consecutiveFailures) return false;
  }
  return true;
}
