/**
 * Prometheus metrics. Names follow controller-runtime and client-go (with an
 * `rtmanager_` prefix) so their dashboards and alerts carry over; see
 * docs/metrics.md for each metric's meaning.
 *
 * Cardinality rule: no label ever carries a game id, container id or raw URL
 * path. Per-game facts are aggregated (counts by status, drift, crash-loops)
 * and per-game bookkeeping lives in maps that are never exported as labels.
 */
import { mapLimit } from "./model/mapLimit.js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type GaugeConfiguration } from "prom-client";
import type { ManagerHooks, WatchName } from "./controller/manager.js";
import { CRASH_LOOP_THRESHOLD, ORPHAN_REPORT_REASONS, type OrphanReportReason } from "./controller/planner.js";
import { errorOf, type ReconcileResult } from "./controller/reconciler.js";
import type { DockerCallOutcome } from "./runtime/docker/dockerRuntime.js";
import type { Declaration } from "./model/declaration.js";
import type { RuntimeRecord } from "./model/record.js";
import { RUNTIME_STATUSES } from "./model/status.js";

export const WORKQUEUE_NAME = "runtimes";
export type { WatchName };
export const RESTART_REASONS = ["exit", "oom", "unhealthy"] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];
export type ReconcileOutcome = "success" | "error" | "requeue" | "noop";

/** Distinct HTTP route values kept before the rest are folded into "unmatched": a guard against a caller passing raw paths. */
const MAX_ROUTES = 64;
const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** controller-runtime's reconcile_time_seconds buckets. */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4,
  4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];
/** client-go's workqueue buckets: 10ns to 1000s, x10. */
const WORKQUEUE_BUCKETS = Array.from({ length: 12 }, (_, i) => Number((1e-8 * 10 ** i).toPrecision(1)));
/** Image pulls take minutes; everything else milliseconds. */
const DOCKER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const CONVERGENCE_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];

export interface QueueStats {
  depth: number;
  unfinishedSeconds: number;
  longestSeconds: number;
}

/** What the fleet gauges read at scrape time; the store and the declaration source satisfy it. */
export interface FleetSources {
  listRecords(): Promise<RuntimeRecord[]>;
  listGameIds(): Promise<string[]>;
  get(gameId: string): Promise<Declaration | null>;
}

export interface MetricsBindings {
  queueStats(): QueueStats;
  records: Pick<FleetSources, "listRecords">;
  declarations: Pick<FleetSources, "listGameIds" | "get">;
  /** Connections checked out of the store's pool; absent reads as 0. */
  poolInUse?(): number;
}

export interface MetricsOptions {
  /** Node process metrics (process_*, nodejs_*), unprefixed as prom-client names them. Default true. */
  defaultMetrics?: boolean;
  /** How long one fleet snapshot (records + declarations) serves scrapes. Default 5 s. */
  fleetCacheMs?: number;
  /**
   * A requeue further out than this is left to the periodic resync, so the
   * reconcile counts as "noop" rather than "requeue" (pass the resync interval).
   */
  requeueHorizonMs?: number;
  now?: () => number;
}

interface FleetSnapshot {
  byStatus: Map<string, number>;
  drift: number;
  crashLooping: number;
  degraded: number;
}

/** The HTTP server's view of the metrics (its HttpDeps.metrics). */
export interface HttpMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  observeRequest(route: string, method: string, status: number | string, seconds: number): void;
}

export class Metrics implements HttpMetrics {
  readonly registry = new Registry();
  private readonly now: () => number;
  private readonly fleetCacheMs: number;
  private readonly requeueHorizonMs: number;
  private bindings: MetricsBindings | null = null;

  private fleetCache: { at: number; value: Promise<FleetSnapshot> } | null = null;
  private lastFleet: FleetSnapshot | null = null;
  /** observedGeneration last seen per game, to notice when a record advances. */
  private readonly observedGeneration = new Map<string, number>();
  private observedSeeded = false;
  private readonly watchLastEvent = new Map<WatchName, number>();
  /** Orphans the loop left in place and reported, by game (never a label). */
  private readonly orphansReported = new Map<string, OrphanReportReason>();
  private readonly routes = new Set<string>();

  readonly reconcileTotal: Counter<"result">;
  readonly reconcileTime: Histogram;
  readonly reconcileErrors: Counter<"code">;
  readonly queueAdds: Counter<"name">;
  readonly queueRetries: Counter<"name">;
  readonly queueDuration: Histogram<"name">;
  readonly workDuration: Histogram<"name">;
  readonly restarts: Counter<"reason">;
  readonly convergence: Histogram;
  readonly dockerCalls: Counter<"operation" | "outcome">;
  readonly dockerDuration: Histogram<"operation">;
  readonly dockerReconnects: Counter;
  readonly storeQueryErrors: Counter;
  readonly httpRequests: Counter<"route" | "method" | "status">;
  readonly httpDuration: Histogram<"route" | "method">;
  readonly leader: Gauge;
  readonly watchRelists: Counter<"watch">;
  readonly probes: Counter<"result">;

  constructor(options: MetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    this.fleetCacheMs = options.fleetCacheMs ?? 5000;
    this.requeueHorizonMs = options.requeueHorizonMs ?? Number.POSITIVE_INFINITY;
    const registers = [this.registry];

    // prom-client samples event-loop delay every 10 ms by default: 100 wakeups a second, about half a
    // percent of a core on an idle controller. 100 ms still sees any stall worth alerting on.
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });

    // ---------------------------------------------------------------- loop
    this.reconcileTotal = new Counter({
      name: "rtmanager_reconcile_total",
      help: "Reconciles by result: success (acted), error, requeue (waiting on a backoff or grace period), noop.",
      labelNames: ["result"],
      registers,
    });
    for (const result of ["success", "error", "requeue", "noop"] as const) this.reconcileTotal.inc({ result }, 0);
    this.reconcileTime = new Histogram({
      name: "rtmanager_reconcile_time_seconds",
      help: "Duration of one reconcile of one game.",
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "rtmanager_reconcile_errors_total",
      help: "Failed reconciles by error code.",
      labelNames: ["code"],
      registers,
    });

    // ----------------------------------------------------------- workqueue
    const name = WORKQUEUE_NAME;
    this.scrapeGauge(
      {
        name: "rtmanager_workqueue_depth",
        help: "Games waiting in the work queue.",
        labelNames: ["name"],
      },
      (g) => {
        g.set({ name }, this.bindings?.queueStats().depth ?? 0);
      },
    );
    this.queueAdds = new Counter({ name: "rtmanager_workqueue_adds_total", help: "Adds to the work queue.", labelNames: ["name"], registers });
    this.queueRetries = new Counter({
      name: "rtmanager_workqueue_retries_total",
      help: "Rate-limited re-adds after a failed reconcile.",
      labelNames: ["name"],
      registers,
    });
    this.queueDuration = new Histogram({
      name: "rtmanager_workqueue_queue_duration_seconds",
      help: "How long a game waited in the queue before a worker took it.",
      labelNames: ["name"],
      buckets: WORKQUEUE_BUCKETS,
      registers,
    });
    this.workDuration = new Histogram({
      name: "rtmanager_workqueue_work_duration_seconds",
      help: "How long a worker spent on one game.",
      labelNames: ["name"],
      buckets: WORKQUEUE_BUCKETS,
      registers,
    });
    this.scrapeGauge(
      {
        name: "rtmanager_workqueue_unfinished_work_seconds",
        help: "Seconds of work in progress that has not finished (sum over workers); a large value with no progress means stuck workers.",
        labelNames: ["name"],
      },
      (g) => {
        g.set({ name }, this.bindings?.queueStats().unfinishedSeconds ?? 0);
      },
    );
    this.scrapeGauge(
      {
        name: "rtmanager_workqueue_longest_running_processor_seconds",
        help: "Seconds the longest-running reconcile in progress has been running.",
        labelNames: ["name"],
      },
      (g) => {
        g.set({ name }, this.bindings?.queueStats().longestSeconds ?? 0);
      },
    );
    for (const c of [this.queueAdds, this.queueRetries]) c.inc({ name }, 0);

    // --------------------------------------------------------------- store
    // Registered before the fleet gauges: collect() runs in registration order, so
    // the pool is read before the fleet snapshot's own queries check connections out.
    this.storeQueryErrors = new Counter({
      name: "rtmanager_store_query_errors_total",
      help: "Store queries and transactions that failed.",
      registers,
    });
    this.scrapeGauge(
      {
        name: "rtmanager_store_pool_in_use",
        help: "Database connections checked out of the pool (PGlite: 0 or 1).",
      },
      (g) => {
        g.set(this.bindings?.poolInUse?.() ?? 0);
      },
    );

    // --------------------------------------------------------------- fleet
    this.scrapeGauge(
      {
        name: "rtmanager_runtimes",
        help: "Runtime records by observed status.",
        labelNames: ["status"],
      },
      async (g) => {
        const fleet = await this.fleet();
        for (const status of RUNTIME_STATUSES) g.set({ status }, fleet.byStatus.get(status) ?? 0);
      },
    );
    this.scrapeGauge(
      {
        name: "rtmanager_runtimes_drift",
        help: "Runtimes whose record differs from the declaration: an older observed generation, another status, or no declaration at all.",
      },
      async (g) => {
        g.set((await this.fleet()).drift);
      },
    );
    this.scrapeGauge(
      {
        name: "rtmanager_runtimes_crashlooping",
        help: `Runtimes declared running that the restart policy restarted ${CRASH_LOOP_THRESHOLD} or more times without a healthy period.`,
      },
      async (g) => {
        g.set((await this.fleet()).crashLooping);
      },
    );
    this.scrapeGauge(
      {
        name: "rtmanager_runtimes_degraded",
        help: "Runtimes left degraded: a patch failed and so did its rollback (for example the previous image is gone); they stay so until a new declaration converges.",
      },
      async (g) => {
        g.set((await this.fleet()).degraded);
      },
    );
    this.scrapeGauge(
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
      registers,
    });
    for (const reason of RESTART_REASONS) this.restarts.inc({ reason }, 0);
    this.convergence = new Histogram({
      name: "rtmanager_convergence_seconds",
      help: "From a declaration change (its updated_at) to the record reaching that generation.",
      buckets: CONVERGENCE_BUCKETS,
      registers,
    });

    // -------------------------------------------------------------- docker
    this.dockerCalls = new Counter({
      name: "rtmanager_docker_api_calls_total",
      help: "Docker Engine API calls by operation and outcome.",
      labelNames: ["operation", "outcome"],
      registers,
    });
    this.dockerDuration = new Histogram({
      name: "rtmanager_docker_api_duration_seconds",
      help: "Docker Engine API call duration by operation.",
      labelNames: ["operation"],
      buckets: DOCKER_BUCKETS,
      registers,
    });
    this.dockerReconnects = new Counter({
      name: "rtmanager_docker_events_reconnects_total",
      help: "Times the Docker event stream was re-established after a break.",
      registers,
    });

    // ---------------------------------------------------------------- http
    this.httpRequests = new Counter({
      name: "rtmanager_http_requests_total",
      help: "HTTP requests by route template, method and status.",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.httpDuration = new Histogram({
      name: "rtmanager_http_request_duration_seconds",
      help: "HTTP request duration by route template and method (mutations include the wait for the loop).",
      labelNames: ["route", "method"],
      buckets: HTTP_BUCKETS,
      registers,
    });

    // ------------------------------------------------------ leader, watches
    this.leader = new Gauge({ name: "rtmanager_leader", help: "1 while this replica holds the leader lease and runs the loop.", registers });
    this.leader.set(0);
    this.scrapeGauge(
      {
        name: "rtmanager_watch_last_event_age_seconds",
        help: "Seconds since a watch last delivered an event or was re-established.",
        labelNames: ["watch"],
      },
      (g) => {
        g.reset();
        const now = this.now();
        for (const [watch, at] of this.watchLastEvent) g.set({ watch }, Math.max(0, (now - at) / 1000));
      },
    );
    this.watchRelists = new Counter({
      name: "rtmanager_watch_relists_total",
      help: "Full re-lists after a watch was re-established.",
      labelNames: ["watch"],
      registers,
    });
    this.probes = new Counter({
      name: "rtmanager_probe_total",
      help: "Engine health probes by result.",
      labelNames: ["result"],
      registers,
    });
    for (const result of ["success", "failure"]) this.probes.inc({ result }, 0);
  }

  /** A gauge filled at scrape time; prom-client calls collect() with the gauge as `this`. */
  private scrapeGauge<L extends string>(config: Omit<GaugeConfiguration<L>, "collect" | "registers">, fill: (g: Gauge<L>) => void | Promise<void>): Gauge<L> {
    return new Gauge<L>({
      ...config,
      registers: [this.registry],
      collect() {
        return fill(this);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Connects the scrape-time gauges to the running app. Separate from the
   * constructor because the Manager needs `managerHooks()` before it exists.
   */
  bind(bindings: MetricsBindings): void {
    this.bindings = bindings;
    // Seed observed generations so a record rewritten after a restart is not
    // mistaken for a convergence that took as long as the process was down.
    bindings.records
      .listRecords()
      .then((records) => {
        for (const r of records) if (!this.observedGeneration.has(r.gameId)) this.observedGeneration.set(r.gameId, r.observedGeneration);
      })
      .catch(() => undefined)
      .finally(() => {
        this.observedSeeded = true;
      });
  }

  managerHooks(): ManagerHooks {
    const name = WORKQUEUE_NAME;
    return {
      queue: {
        onAdd: () => this.queueAdds.inc({ name }),
        onRetry: () => this.queueRetries.inc({ name }),
        onDequeue: (_key, waited) => this.queueDuration.observe({ name }, waited),
        onDone: (_key, seconds) => this.workDuration.observe({ name }, seconds),
      },
      onReconcile: (result, seconds) => this.observeReconcile(result, seconds),
      onRecord: (record) => this.observeRecord(record),
      onLeaderChange: (leading) => {
        this.leader.set(leading ? 1 : 0);
        // Loop facts belong to the leader; a new leader reports its own.
        if (!leading) this.orphansReported.clear();
      },
      onDockerEventsReconnect: () => this.dockerReconnects.inc(),
      onWatchMessage: (watch) => this.watchEvent(watch),
      onRelist: (watch) => this.watchRelist(watch),
      onProbe: (ok) => this.probes.inc({ result: ok ? "success" : "failure" }),
    };
  }

  /** For DockerRuntimeOptions.onCall. */
  readonly dockerOnCall = (operation: string, outcome: DockerCallOutcome, seconds: number): void => {
    this.dockerCalls.inc({ operation, outcome });
    this.dockerDuration.observe({ operation }, seconds);
  };

  /** `route` must be the route template (`/api/v1/internal/runtimes/{game_id}/stop`) or "unmatched". */
  observeRequest(route: string, method: string, status: number | string, seconds: number): void {
    let r = route;
    if (!this.routes.has(r)) {
      if (this.routes.size >= MAX_ROUTES) r = "unmatched";
      else this.routes.add(r);
    }
    const m = HTTP_METHODS.has(method.toUpperCase()) ? method.toUpperCase() : "OTHER";
    this.httpRequests.inc({ route: r, method: m, status: String(status) });
    this.httpDuration.observe({ route: r, method: m }, seconds);
  }

  onStoreQueryError(): void {
    this.storeQueryErrors.inc();
  }

  /** A watch delivered a message. */
  watchEvent(watch: WatchName): void {
    this.watchLastEvent.set(watch, this.now());
  }

  /** A watch was re-established (or replaced by the silence watchdog) and everything re-listed. */
  watchRelist(watch: WatchName): void {
    this.watchRelists.inc({ watch });
    // A fresh watch starts the silence clock again, as the manager's watchdog does.
    this.watchLastEvent.set(watch, this.now());
  }

  // ------------------------------------------------------------ internals

  private observeReconcile(result: ReconcileResult, seconds: number): void {
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
  private observeRecord(record: RuntimeRecord): void {
    const { gameId, observedGeneration } = record;
    const previous = this.observedGeneration.get(gameId) ?? (this.observedSeeded ? 0 : undefined);
    this.observedGeneration.set(gameId, observedGeneration);
    if (previous === undefined || observedGeneration <= previous || !this.bindings) return;
    const writtenAt = this.now();
    this.bindings.declarations
      .get(gameId)
      .then((d) => {
        if (d && d.generation === observedGeneration) this.convergence.observe(Math.max(0, (writtenAt - d.updatedAt.getTime()) / 1000));
      })
      .catch(() => undefined);
  }

  private fleet(): Promise<FleetSnapshot> {
    const now = this.now();
    if (this.fleetCache && now - this.fleetCache.at < this.fleetCacheMs) return this.fleetCache.value;
    const value = this.computeFleet().then(
      (snapshot) => {
        this.lastFleet = snapshot;
        return snapshot;
      },
      // A store outage must not fail the whole scrape: serve the last good snapshot.
      () => this.lastFleet ?? { byStatus: new Map(), drift: 0, crashLooping: 0, degraded: 0 },
    );
    this.fleetCache = { at: now, value };
    return value;
  }

  private async computeFleet(): Promise<FleetSnapshot> {
    const b = this.bindings;
    if (!b) return { byStatus: new Map(), drift: 0, crashLooping: 0, degraded: 0 };
    const [records, ids] = await Promise.all([b.records.listRecords(), b.declarations.listGameIds()]);
    const declarations = new Map<string, Declaration | "invalid" | null>();
    await mapLimit(ids, 16, async (id) => {
      declarations.set(
        id,
        await b.declarations.get(id).catch((): "invalid" => "invalid"),
      );
    });
    return summarizeFleet(records, declarations);
  }
}

/** Fleet gauges from records and declarations; `invalid` is a stored declaration that fails the schema. */
export function summarizeFleet(records: RuntimeRecord[], declarations: Map<string, Declaration | "invalid" | null>): FleetSnapshot {
  const byStatus = new Map<string, number>();
  const recordOf = new Map<string, RuntimeRecord>();
  for (const r of records) {
    byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    recordOf.set(r.gameId, r);
  }
  let drift = 0;
  let crashLooping = 0;
  const degraded = records.filter((r) => r.degraded).length;
  for (const gameId of new Set([...recordOf.keys(), ...declarations.keys()])) {
    const r = recordOf.get(gameId) ?? null;
    const d = declarations.get(gameId) ?? null;
    if (d === "invalid") {
      drift++;
      continue;
    }
    if (!d) {
      if (r && r.status !== "removed") drift++;
      continue;
    }
    if (!r) {
      if (d.desiredState !== "removed") drift++;
      continue;
    }
    if (r.observedGeneration < d.generation || r.status !== d.desiredState) drift++;
    if (d.desiredState === "running" && r.restartCount >= CRASH_LOOP_THRESHOLD) crashLooping++;
  }
  return { byStatus, drift, crashLooping, degraded };
}
