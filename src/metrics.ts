/**
 * Prometheus metrics. Names follow controller-runtime and client-go (with an
 * `rtmanager_` prefix) so their dashboards and alerts carry over; see
 * docs/metrics.md for each metric's meaning.
 *
 * Cardinality rule: no label ever carries a game id, container id or raw URL
 * path. Per-game facts are aggregated (counts by status, drift, crash-loops)
 * and per-game bookkeeping lives in maps that are never exported as labels.
 *
 * This class wires the parts in src/metrics/ (loop, fleet, HTTP) to the app
 * and holds the small adapter metrics (store, Docker, leader, watches, probes).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ManagerHooks, WatchName } from "./controller/manager.js";
import { RETENTION_TABLES, type RetentionTable } from "./controller/runnables/retention.js";
import type { HttpMetrics } from "./http/server.js";
import { FleetGauges, type FleetSources } from "./metrics/fleet.js";
import { scrapeGauge } from "./metrics/gauge.js";
import type { HttpStreamCounts } from "./http/limits.js";
import { HttpRequestMetrics } from "./metrics/http.js";
import { LoopMetrics, type QueueStats } from "./metrics/loop.js";
import { QuarantineMetrics } from "./metrics/quarantine.js";
import type { RuntimeCallOutcome } from "./model/runtimeFailure.js";

export type { WatchName };
export type { FleetSnapshot, FleetSources } from "./metrics/fleet.js";
export { summarizeFleet } from "./metrics/fleet.js";
export { RESTART_REASONS, WORKQUEUE_NAME, type QueueStats, type ReconcileOutcome, type RestartReason } from "./metrics/loop.js";

/** Image pulls take minutes; everything else milliseconds. */
const DOCKER_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

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

/** The store's own counters and the pool gauge. */
function storeMetrics(registry: Registry, poolInUse: () => number) {
  const registers = [registry];
  const queryErrors = new Counter({ name: "rtmanager_store_query_errors_total", help: "Store queries and transactions that failed.", registers });
  const quarantines = new QuarantineMetrics(registry);
  const fencedWrites = new Counter({
    name: "rtmanager_fenced_writes_total",
    help: "Store writes of the loop refused because a newer leader had advanced the leader epoch (this replica was a former leader).",
    registers,
  });
  scrapeGauge(registry, { name: "rtmanager_store_pool_in_use", help: "Database connections checked out of the pool (PGlite: 0 or 1)." }, (g) => {
    g.set(poolInUse());
  });
  return { queryErrors, quarantines, fencedWrites };
}

/** Calls to the engine runtime's API: the runtime-neutral pair, and Docker's own older pair. */
function runtimeApiMetrics(registry: Registry) {
  const registers = [registry];
  const dockerCalls = new Counter({
    name: "rtmanager_docker_api_calls_total",
    help: "Docker Engine API calls by operation and outcome.",
    labelNames: ["operation", "outcome"],
    registers,
  });
  const dockerDuration = new Histogram({
    name: "rtmanager_docker_api_duration_seconds",
    help: "Docker Engine API call duration by operation.",
    labelNames: ["operation"],
    buckets: DOCKER_BUCKETS,
    registers,
  });
  // The same for either runtime, so one alert and one panel serve both (Docker's own pair above stays for existing dashboards).
  const runtimeCalls = new Counter({
    name: "rtmanager_runtime_api_calls_total",
    help: "Calls to the engine runtime's API (Docker Engine or Kubernetes), by runtime, operation and outcome.",
    labelNames: ["runtime", "operation", "outcome"],
    registers,
  });
  const runtimeDuration = new Histogram({
    name: "rtmanager_runtime_api_call_duration_seconds",
    help: "Duration of calls to the engine runtime's API, by runtime and operation.",
    labelNames: ["runtime", "operation"],
    buckets: DOCKER_BUCKETS,
    registers,
  });
  const dockerReconnects = new Counter({
    name: "rtmanager_docker_events_reconnects_total",
    help: "Times the Docker event stream was re-established after a break.",
    registers,
  });
  return { dockerCalls, dockerDuration, runtimeCalls, runtimeDuration, dockerReconnects };
}

/** Leadership, watch freshness, probes, resyncs and retention: what says the loop is alive and looking. */
function leaderAndWatchMetrics(registry: Registry, watchAges: () => (readonly [WatchName, number])[]) {
  const registers = [registry];
  const leader = new Gauge({ name: "rtmanager_leader", help: "1 while this replica holds the leader lease and runs the loop.", registers });
  leader.set(0);
  scrapeGauge(
    registry,
    { name: "rtmanager_watch_last_event_age_seconds", help: "Seconds since a watch last delivered an event or was re-established.", labelNames: ["watch"] },
    (g) => {
      g.reset();
      for (const [watch, age] of watchAges()) g.set({ watch }, age);
    },
  );
  const watchRelists = new Counter({ name: "rtmanager_watch_relists_total", help: "Full re-lists after a watch was re-established.", labelNames: ["watch"], registers });
  const probes = new Counter({ name: "rtmanager_probe_total", help: "Engine health probes by result.", labelNames: ["result"], registers });
  for (const result of ["success", "failure"]) probes.inc({ result }, 0);
  // Lets a test (or an operator) see that the loop has looked again: "nothing happened" means something only after it moved.
  const resyncs = new Counter({ name: "rtmanager_resync_total", help: "Resync passes started, by trigger (start, periodic, a watch's gap).", labelNames: ["why"], registers });
  const retentionPruned = new Counter({
    name: "rtmanager_retention_pruned_rows_total",
    help: "Rows deleted by retention (RTMANAGER_EVENT_RETENTION, RTMANAGER_OPLOG_RETENTION), by table.",
    labelNames: ["table"],
    registers,
  });
  for (const table of RETENTION_TABLES) retentionPruned.inc({ table }, 0);
  return { leader, watchRelists, probes, resyncs, retentionPruned };
}

export class Metrics implements HttpMetrics {
  readonly registry = new Registry();
  readonly loop: LoopMetrics;
  readonly fleet: FleetGauges;
  readonly http: HttpRequestMetrics;
  readonly dockerCalls: Counter<"operation" | "outcome">;
  readonly dockerDuration: Histogram<"operation">;
  readonly dockerReconnects: Counter;
  readonly runtimeCalls: Counter<"runtime" | "operation" | "outcome">;
  readonly runtimeDuration: Histogram<"runtime" | "operation">;
  readonly storeQueryErrors: Counter;
  readonly fencedWrites: Counter;
  readonly leader: Gauge;
  readonly watchRelists: Counter<"watch">;
  readonly probes: Counter<"result">;
  readonly resyncs: Counter<"why">;
  readonly retentionPruned: Counter<"table">;
  readonly quarantines: QuarantineMetrics;

  private readonly now: () => number;
  private bindings: MetricsBindings | null = null;
  private readonly watchLastEvent = new Map<WatchName, number>();

  constructor(options: MetricsOptions = {}) {
    this.now = options.now ?? Date.now;
    const registry = this.registry;

    // prom-client samples event-loop delay every 10 ms by default: 100 wakeups a second, about half a
    // percent of a core on an idle controller. 100 ms still sees any stall worth alerting on.
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });

    this.loop = new LoopMetrics(
      registry,
      () => {
        const b = this.bindings;
        return b && { queueStats: () => b.queueStats(), getDeclaration: (gameId) => b.declarations.get(gameId) };
      },
      this.now,
      options.requeueHorizonMs ?? Number.POSITIVE_INFINITY,
    );

    // Registered before the fleet gauges: collect() runs in registration order, so
    // the pool is read before the fleet snapshot's own queries check connections out.
    const store = storeMetrics(registry, () => this.bindings?.poolInUse?.() ?? 0);
    this.storeQueryErrors = store.queryErrors;
    this.quarantines = store.quarantines;
    this.fencedWrites = store.fencedWrites;

    this.fleet = new FleetGauges(
      registry,
      () => {
        const b = this.bindings;
        return b && { listRecords: () => b.records.listRecords(), listGameIds: () => b.declarations.listGameIds(), get: (id) => b.declarations.get(id) };
      },
      this.now,
      options.fleetCacheMs ?? 5000,
    );

    const runtime = runtimeApiMetrics(registry);
    this.dockerCalls = runtime.dockerCalls;
    this.dockerDuration = runtime.dockerDuration;
    this.runtimeCalls = runtime.runtimeCalls;
    this.runtimeDuration = runtime.runtimeDuration;
    this.dockerReconnects = runtime.dockerReconnects;

    this.http = new HttpRequestMetrics(registry);

    const watch = leaderAndWatchMetrics(registry, () => {
      const now = this.now();
      return [...this.watchLastEvent].map(([w, at]) => [w, Math.max(0, (now - at) / 1000)] as const);
    });
    this.leader = watch.leader;
    this.watchRelists = watch.watchRelists;
    this.probes = watch.probes;
    this.resyncs = watch.resyncs;
    this.retentionPruned = watch.retentionPruned;
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
    this.loop.seed(bindings.records.listRecords());
  }

  managerHooks(): ManagerHooks {
    return {
      queue: this.loop.queueHooks(),
      onReconcile: (result, seconds) => this.loop.observeReconcile(result, seconds),
      onRecord: (record) => this.loop.observeRecord(record),
      onLeaderChange: (leading) => {
        this.leader.set(leading ? 1 : 0);
        if (!leading) this.loop.leadershipLost();
      },
      // The Docker event stream's own reconnects; every runtime's relists are in rtmanager_watch_relists_total.
      onRuntimeEventsReconnect: (watch) => {
        if (watch === "docker") this.dockerReconnects.inc();
      },
      onWatchMessage: (watch) => this.watchEvent(watch),
      onRelist: (watch) => this.watchRelist(watch),
      onProbe: (ok) => this.probes.inc({ result: ok ? "success" : "failure" }),
      onResync: (why) => this.resyncs.inc({ why }),
      onFencedWrite: () => this.fencedWrites.inc(),
    };
  }

  /** The onCall hook of a runtime adapter (its module's name is the label); Docker's also feeds rtmanager_docker_api_*. */
  runtimeOnCall(runtime: string): (operation: string, outcome: RuntimeCallOutcome, seconds: number) => void {
    return (operation, outcome, seconds) => {
      if (runtime === "docker") {
        this.dockerCalls.inc({ operation, outcome });
        this.dockerDuration.observe({ operation }, seconds);
      }
      this.runtimeCalls.inc({ runtime, operation, outcome });
      this.runtimeDuration.observe({ runtime, operation }, seconds);
    };
  }

  observeRequest(route: string, method: string, status: number | string, seconds: number): void {
    this.http.observe(route, method, status, seconds);
  }

  bindStreams(counts: () => HttpStreamCounts): void {
    this.http.bindStreams(counts);
  }

  onReadinessCheck(): void {
    this.http.readinessChecks.inc();
  }

  onStoreQueryError(): void {
    this.storeQueryErrors.inc();
  }

  /** For RetentionDeps.onPruned. */
  readonly onRetentionPruned = (table: RetentionTable, rows: number): void => {
    this.retentionPruned.inc({ table }, rows);
  };

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
}
