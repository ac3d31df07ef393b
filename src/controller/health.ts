/**
 * The latest probe observations, per game and container. The prober writes
 * here; the reconcile reads a snapshot and folds it into the record, so the
 * record has a single writer (the reconcile) and no update is lost.
 */
import { isDeclarative, type ObservedContainer, type ProbeResult, type RuntimePort, type RuntimeVerbs } from "../model/ports.js";
import { splitContainers, type HealthObservation } from "./plan.js";

/** The engine contract's health endpoint. */
export const HEALTH_PATH = "/healthz";

/**
 * Where an engine's health endpoint answers: the runtime knows where the
 * engine can be reached (see its probeAddress); the path is the engine's.
 * Null when the runtime cannot reach it now (e.g. a port not yet published).
 */
export function probeUrl(runtime: Pick<RuntimePort, "probeAddress">, engine: ObservedContainer): string | null {
  const address = runtime.probeAddress(engine);
  return address === null ? null : `http://${address}${HEALTH_PATH}`;
}

/**
 * The runtime's own readiness verdict as a probe result, when it reports one
 * (a Pod's readiness probe on /healthz); null when the controller must probe.
 */
export function reportedReadiness(engine: ObservedContainer): ProbeResult | null {
  if (engine.ready === null) return null;
  return { ok: engine.ready, statusCode: null, error: engine.ready ? null : `the ${engine.phase} engine is not ready (runtime readiness probe)`, latencyMs: 0 };
}

/**
 * The engine a health gate watches. A runtime that restarts its engine in
 * place (a Pod's kubelet: after an image patch, or an exit) reports a new
 * container id each time, so the gate follows the game's engine there.
 */
export function gateEngine(engines: ObservedContainer[], gameId: string, containerId: string, verbs: RuntimeVerbs): ObservedContainer | undefined {
  const same = engines.find((x) => x.id === containerId);
  if (same || !isDeclarative(verbs)) return same;
  return splitContainers(gameId, engines).primary ?? undefined;
}

export interface TrackedHealth extends HealthObservation {
  containerId: string;
  healthySince: Date | null;
}

export class HealthTracker {
  private readonly byGame = new Map<string, TrackedHealth>();

  /** Records one probe; returns the transition it caused, if any. */
  observe(gameId: string, containerId: string, ok: boolean, at: Date, threshold: number): "failed" | "recovered" | null {
    const prev = this.byGame.get(gameId);
    const same = prev?.containerId === containerId ? prev : undefined;
    const failures = ok ? 0 : (same?.consecutiveFailures ?? 0) + 1;
    const wasUnhealthy = (same?.consecutiveFailures ?? 0) >= threshold;
    const next: TrackedHealth = {
      containerId,
      consecutiveFailures: failures,
      healthy: ok,
      lastProbeAt: at,
      healthySince: ok ? (same?.healthy ? same.healthySince : at) : null,
    };
    this.byGame.set(gameId, next);
    if (!ok && failures === threshold) return "failed";
    if (ok && wasUnhealthy) return "recovered";
    return null;
  }

  /** The observation for the container that is running now; stale ones do not count. */
  get(gameId: string, containerId: string | null): TrackedHealth | null {
    const h = this.byGame.get(gameId);
    return h && containerId && h.containerId === containerId ? h : null;
  }

  forget(gameId: string): void {
    this.byGame.delete(gameId);
  }
}
