/**
 * The health prober: every probe interval, probes every running engine once
 * and folds the answers into the health tracker. A transition (failed past
 * the threshold, or recovered) is an event and wakes the loop for that game;
 * the reconcile reads the tracker and acts on it.
 */
import type { Logger } from "../../log.js";
import { mapLimit } from "../../model/mapLimit.js";
import type { RuntimePort, HealthProber, ObservedContainer, StateStore } from "../../model/ports.js";
import { probeUrl, reportedReadiness, type HealthTracker } from "../health.js";
import type { Runnable, RunnableContext } from "./runnable.js";
import type { Enqueue } from "./watches.js";

/**
 * Engines probed at once in a probe pass. Even with every probe timing out
 * (2 s default), 200 engines take 200 / 32 x 2 s, within the 15 s interval; a
 * pass still running when the next is due is skipped, not doubled.
 */
export const PROBE_CONCURRENCY = 32;

export interface ProbeSettings {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  probeFailureThreshold: number;
}

export interface HealthProbeDeps {
  runtime: RuntimePort;
  prober: HealthProber;
  state: Pick<StateStore, "appendEvent">;
  health: Pick<HealthTracker, "observe">;
  enqueue: Enqueue;
  settings: ProbeSettings;
  logger: Logger;
  onProbe?(ok: boolean): void;
}

export class HealthProbeRunnable implements Runnable {
  readonly name = "health prober";
  readonly needsLeadership = true;
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;

  constructor(private readonly deps: HealthProbeDeps) {}

  start({ signal }: RunnableContext): void {
    this.timer = setInterval(() => {
      // A pass still running when the next is due is skipped, not doubled.
      if (this.pass) return;
      this.pass = this.probeAll(signal).finally(() => (this.pass = null));
    }, this.deps.settings.probeIntervalMs);
  }

  /** Stops the timer and waits for a pass in progress (its remaining probes are skipped). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pass;
  }

  private async probeAll(signal: AbortSignal): Promise<void> {
    try {
      // One list call for the fleet: a pass over 200 engines must not cost 200 inspects.
      const containers = (await this.deps.runtime.listManaged({ inspect: false })).filter((c) => c.phase === "running" && !c.restarting);
      // A bounded number at a time: 200 engines probed at once is a burst of connections (and,
      // with published ports, of port-forwarding proxy work) that times probes out on a small host.
      await mapLimit(containers, PROBE_CONCURRENCY, (c) => (signal.aborted ? Promise.resolve() : this.probeOne(c)));
    } catch (err) {
      this.deps.logger.warn({ err }, "probe pass failed");
    }
  }

  private async probeOne(c: ObservedContainer): Promise<void> {
    const { runtime, prober, state, health, enqueue, settings, logger, onProbe } = this.deps;
    // A runtime that probes the engine itself (a Pod's readiness probe) is asked, not second-guessed.
    const reported = reportedReadiness(c);
    const url = reported ? null : probeUrl(runtime, c);
    const result = reported ?? (url ? await prober.probe(url, settings.probeTimeoutMs) : null);
    if (!result) return;
    onProbe?.(result.ok);
    const transition = health.observe(c.gameId, c.id, result.ok, new Date(), settings.probeFailureThreshold);
    if (!transition) return;
    const type = transition === "failed" ? "probe_failed" : "probe_recovered";
    logger.warn({ gameId: c.gameId, containerId: c.id, error: result.error, statusCode: result.statusCode }, type);
    await state.appendEvent({ gameId: c.gameId, type, opId: null, data: { containerId: c.id, error: result.error, statusCode: result.statusCode } });
    enqueue(c.gameId);
  }
}
