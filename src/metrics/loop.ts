/**
 * The control loop's metrics, named after controller-runtime's and
 * client-go's: reconciles, the work queue, restarts by cause, convergence
 * time and orphans left in place.
 */
import { Counter, Histogram, type Registry } from "prom-client";
import type { QueueHooks } from "../controller/queue.js";
import { ORPHAN_REPORT_REASONS, type OrphanReportReason } from "../controller/planner.js";
import { errorOf, type ReconcileResult } from "../controller/reconciler.js";
import type { Declaration } from "../model/declaration.js";
import type { RuntimeRecord } from "../model/record.js";
import { scrapeGauge } from "./gauge.js";

export const WORKQUEUE_NAME = "runtimes";
export const RESTART_REASONS = ["exit", "oom", "unhealthy"] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];
export type ReconcileOutcome = "success" | "error" | "requeue" | "noop";

/** controller-runtime's reconcile_time_seconds buckets. */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4,
  4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go's workqueue buckets: 10ns to 1000s, x10. */
const WORKQUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));
const CONVERGENCE_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];

export interface QueueStats {
  depth: number;
  unfinishedSeconds: number;
  longestSeconds: number;
}

/** What the loop metrics read from the running app, once it is bound. */
export interface LoopSources {
  queueStats(): QueueStats;
  getDeclaration(gameId: string): Promise<Declaration | null>;
}

/** controller-runtime's controller_runtime_reconcile_* family, renamed. */
function reconcileMetrics(registry: Registry) {
  const registers = [registry];
  const total = new Counter({
    name: "rtmanager_reconcile_total",
    help: "Reconciles by result: success (acted), error, requeue (waiting on a backoff or grace period), noop.",
    labelNames: ["result"],
    registers,
  });
  for (const result of ["success", "error", "requeue", "noop"] as const) total.inc({ result }, 0);
  const time = new Histogram({
    name: "rtmanager_reconcile_time_seconds",
    help: "Duration of one reconcile of one game.",
    buckets: RECONCILE_BUCKETS,
    registers,
  });
  const errors = new Counter({ name: "rtmanager_reconcile_errors_total", help: "Failed reconciles by error code.", labelNames: ["code"], registers });
  return { total, time, errors };
}

/** client-go's workqueue metrics (workqueue.MetricsProvider), for the one queue. */
function workqueueMetrics(registry: Registry, stats: () => QueueStats | undefined) {
  const registers = [registry];
  const name = WORKQUEUE_NAME;
  const queueGauge = (metric: string, help: string, pick: (s: QueueStats) => number) =>
    scrapeGauge(registry, { name: metric, help, labelNames: ["name"] }, (g) => {
      const now = stats();
      g.set({ name }, now ? pick(now) : 0);
    });
  queueGauge("rtmanager_workqueue_depth", "Games waiting in the work queue.", (s) => s.depth);
  const adds = new Counter({ name: "rtmanager_workqueue_adds_total", help: "Adds to the work queue.", labelNames: ["name"], registers });
  const retries = new Counter({
    name: "rtmanager_workqueue_retries_total",
    help: "Rate-limited re-adds after a failed reconcile.",
    labelNames: ["name"],
    registers,
  });
  const queueDuration = new Histogram({
    name: "rtmanager_workqueue_queue_duration_seconds",
    help: "How long a game waited in the queue before a worker took it.",
    labelNames: ["name"],
    buckets: WORKQUEUE_BUCKETS,
    registers,
  });
  const workDuration = new Histogram({
    name: "rtmanager_workqueue_work_duration_seconds",
    help: "How long a worker spent on one game.",
    labelNames: ["name"],
    buckets: WORKQUEUE_BUCKETS,
    registers,
  });
  queueGauge(
    "rtmanager_workqueue_unfinished_work_seconds",
    "Seconds of work in progress that has not finished (sum over workers); a large value with no progress means stuck workers.",
    (s) => s.unfinishedSeconds,
  );
  queueGauge(
    "rtmanager_workqueue_longest_running_processor_seconds",
    "Seconds the longest-running reconcile in progress has been running.",
    (s) => s.longestSeconds,
  );
  for (const c of [adds, retries]) c.inc({ name }, 0);
  return { adds, retries, queueDuration, workDuration };
}

export class LoopMetrics {
  readonly reconcileTotal: Counter<"result">;
  readonly reconcileTime: Histogram;
  readonly reconcileErrors: Counter<"code">;
  readonly queueAdds: Counter<"name">;
  readonly queueRetries: Counter<"name">;
  readonly queueDuration: Histogram<"name">;
  readonly workDuration: Histogram<"name">;
  readonly restarts: Counter<"reason">;
  readonly convergence: Histogram;

  /** observedGeneration last seen per game, to notice when a record advances. */
  private readonly observedGeneration = new Map<string, number>();
  private observedSeeded = false;
  /** Orphans the loop left in place and reported, by game (never a label). */
  private readonly orphansReported = new Map<string, OrphanReportReason>();

  constructor(
    registry: Registry,
    private readonly sources: () => LoopSources | null,
    private readonly now: () => number,
    /** A requeue further out than this is left to the periodic resync and counts as "noop". */
    private readonly requeueHorizonMs: number,
  ) {
    const reconcile = reconcileMetrics(registry);
    this.reconcileTotal = reconcile.total;
    this.reconcileTime = reconcile.time;
    this.reconcileErrors = reconcile.errors;
    const queue = workqueueMetrics(registry, () => this.sources()?.queueStats());
    this.queueAdds = queue.adds;
    this.queueRetries = queue.retries;
    this.queueDuration = queue.queueDuration;
    this.workDuration = queue.workDuration;
    scrapeGauge(
      registry,
      {
        name: "rtmanager_orphans_reported",
        help: "Orphan containers (no declaration) the loop leaves in place and reports, by reason: dry_run (RTMANAGER_ORPHAN_DRY_RUN) or unrecorded (this store never recorded the game). Leader only.",
        labelNames: ["reason"],
      },
      (g) => {
        for (const reason of ORPHAN_REPORT_REASONS) g.set({ reason }, [...this.orphansReported.values()].filter((r) => r === reason).length);
      },
    );
    this.restarts = new Counter({
      name: "rtmanager_restarts_total",
      help: "Engine restarts by the restart policy, by cause: exit, oom, unhealthy (failed probes).",
      labelNames: ["reason"],
      registers: [registry],
    });
    for (const reason of RESTART_REASONS) this.restarts.inc({ reason }, 0);
    this.convergence = new Histogram({
      name: "rtmanager_convergence_seconds",
      help: "From a declaration change (its updated_at) to the record reaching that generation.",
      buckets: CONVERGENCE_BUCKETS,
      registers: [registry],
    });
  }

  queueHooks(): QueueHooks {
    const name = WORKQUEUE_NAME;
    return {
      onAdd: () => this.queueAdds.inc({ name }),
      onRetry: () => this.queueRetries.inc({ name }),
      onDequeue: (_key, waited) => this.queueDuration.observe({ name }, waited),
      onDone: (_key, seconds) => this.workDuration.observe({ name }, seconds),
    };
  }

  /**
   * Seeds observed generations so a record rewritten after a restart is not
   * mistaken for a convergence that took as long as the process was down.
   */
  seed(records: Promise<RuntimeRecord[]>): void {
    records
      .then((list) => {
        for (const r of list) if (!this.observedGeneration.has(r.gameId)) this.observedGeneration.set(r.gameId, r.observedGeneration);
      })
      .catch(() => undefined)
      .finally(() => {
        this.observedSeeded = true;
      });
  }

  /** Loop facts belong to the leader; a new leader reports its own. */
  leadershipLost(): void {
    this.orphansReported.clear();
  }

  observeReconcile(result: ReconcileResult, seconds: number): void {
    const error = errorOf(result);
    this.reconcileTime.observe(seconds);
    this.reconcileTotal.inc({ result: this.outcomeOf(result) });
    if (error) this.reconcileErrors.inc({ code: error.code });
    const orphan = result.plan?.orphanReport;
    if (orphan) this.orphansReported.set(result.gameId, orphan.why);
    else if (!error) this.orphansReported.delete(result.gameId);
    this.countRestart(result);
  }

  private outcomeOf(result: ReconcileResult): ReconcileOutcome {
    const { outcome, plan } = result;
    if (outcome.type === "error") return "error";
    if (plan && plan.actions.length > 0) return "success";
    if (outcome.type === "requeue" && outcome.afterMs <= this.requeueHorizonMs) return "requeue";
    return "noop";
  }

  /** A restart by the restart policy that went through, by the cause its plan names. */
  private countRestart(result: ReconcileResult): void {
    const cause = result.plan?.restartCause;
    if (result.outcome.type === "error" || result.plan?.kind !== "self_heal" || !cause) return;
    if ((RESTART_REASONS as readonly string[]).includes(cause)) this.restarts.inc({ reason: cause });
  }

  /**
   * Convergence is measured from the declaration's updated_at (written by the
   * database, or the Kubernetes source) to the moment a record reaching that
   * generation is written, so it includes time spent before this process
   * noticed the change and across leader failovers. Clocks of the database
   * and this host are assumed close; a negative difference is clamped to 0.
   * A declaration superseded before its record was written is not observed.
   */
  observeRecord(record: RuntimeRecord): void {
    const { gameId, observedGeneration } = record;
    const previous = this.observedGeneration.get(gameId) ?? (this.observedSeeded ? 0 : undefined);
    this.observedGeneration.set(gameId, observedGeneration);
    const sources = this.sources();
    if (previous === undefined || observedGeneration <= previous || !sources) return;
    const writtenAt = this.now();
    sources
      .getDeclaration(gameId)
      .then((d) => {
        if (d && d.generation === observedGeneration) this.convergence.observe(Math.max(0, (writtenAt - d.updatedAt.getTime()) / 1000));
      })
      .catch(() => undefined);
  }
}
