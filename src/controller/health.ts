/**
 * The latest probe observations, per game and container. The prober writes
 * here; the reconcile reads a snapshot and folds it into the record, so the
 * record has a single writer (the reconcile) and no update is lost.
 */
import { ENGINE_PORT } from "../model/engine.js";
import type { ObservedContainer } from "../model/ports.js";
import type { HealthObservation } from "./planner.js";

/**
 * Where an engine's /healthz answers: through its port published on the
 * development host address; else at the container's address on the engine
 * network, taken from the same Docker answer that listed it, so a probe needs
 * no DNS lookup (Docker's embedded DNS, through libuv's four-thread pool, 13
 * times a second for 200 engines) and reaches that very container, not
 * whichever one holds the alias at that moment; else by container name.
 */
export function probeUrl(c: ObservedContainer, publishHost: string | undefined, network: string): string | null {
  if (publishHost) return c.publishedPort ? `http://${publishHost}:${c.publishedPort}/healthz` : null;
  const address = c.networkAddresses[network];
  return `http://${address ?? c.name}:${ENGINE_PORT}/healthz`;
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
