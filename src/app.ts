/**
 * Wiring: the only place that knows every concrete class. `createApp` builds
 * the store, the engine runtime (the module RTMANAGER_RUNTIME names), the loop, the operations and the HTTP server
 * from a Config; tests call it with overrides, `main.ts` with the environment.
 */
import type { Server } from "node:http";
import os from "node:os";
import { randomBytes } from "node:crypto";
import { ConfigError, type Config } from "./config.js";
import { DEFAULT_RUNNABLE_STOP_TIMEOUT_MS, Manager, type ManagerHooks } from "./controller/manager.js";
import { RetentionRunnable } from "./controller/runnables/retention.js";
import { RecordCache } from "./controller/recordCache.js";
import { RuntimeOperations } from "./controller/operations.js";
import { dockerModule } from "./runtime/docker/module.js";
import { podModule } from "./runtime/kubernetes/module.js";
import type { RuntimeModule, RuntimeModuleDeps } from "./runtime/module.js";
import { HttpProber } from "./runtime/httpProber.js";
import { StateRetentionRunnable } from "./controller/runnables/stateRetention.js";
import { withContractErrors } from "./controller/runtimeErrors.js";
import { createHttpServer } from "./http/server.js";
import { httpDepsFromConfig } from "./http/listen.js";
import type { Logger } from "./log.js";
import { Metrics } from "./metrics.js";
import { registerBuildInfo } from "./buildInfo.js";
import { RtmError } from "./model/errors.js";
import type { DeclarationSource, Lease, RuntimePort, StateStore } from "./model/ports.js";
import { openStore, SqlQuarantines, type SqlStore } from "./store/index.js";
import { createFleet } from "./controller/fleet.js";
import { readiness } from "./readiness.js";
import { startApp, stopApp, type RunningParts } from "./appLifecycle.js";

export { readiness, READINESS_CHECK_TIMEOUT_MS } from "./readiness.js";

export interface AppOverrides {
  /** An engine runtime built by the caller, used in place of the module's own (the module's readiness still applies). */
  runtime?: RuntimePort;
  /** Desired state from somewhere other than the store (Kubernetes mode). */
  source?: DeclarationSource;
  lease?: Lease | null;
}

export interface App {
  config: Config;
  logger: Logger;
  store: SqlStore;
  /** The engine runtime, with every failure as a contract error. */
  runtime: RuntimePort;
  source: DeclarationSource;
  manager: Manager;
  operations: RuntimeOperations;
  server: Server;
  /** Checks dependencies, starts the loop and listens. Resolves with the bound port. */
  start(): Promise<number>;
  /** Stops in order: stop accepting requests, stop the loop, close the store. */
  stop(): Promise<void>;
}

/**
 * What a shutdown keeps for the steps around the leader's runnables: closing
 * the HTTP server (1 s), releasing the lease (3 s), closing the watches and
 * the store (2 s), and a margin (1 s). The runnables get the rest of
 * RTMANAGER_SHUTDOWN_TIMEOUT (18 s of the default 25 s), so the whole
 * shutdown fits under the Deployment's 30 s termination grace.
 */
export const SHUTDOWN_RESERVE_MS = 7_000;

/** The leader's runnables' stop bound: the manager's default, cut to fit the shutdown deadline. */
export function runnableStopTimeout(shutdownTimeoutMs: number): number {
  return Math.max(1_000, Math.min(DEFAULT_RUNNABLE_STOP_TIMEOUT_MS, shutdownTimeoutMs - SHUTDOWN_RESERVE_MS));
}

export function leaderIdentity(): string {
  return `${os.hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** Loaded only in Kubernetes mode: @kubernetes/client-node alone costs ~70 MB of RSS. */
function loadKubernetesModules() {
  return Promise.all([
    import("./kube/client.js"),
    import("./crd/kubeSource.js"),
    import("./crd/events.js"),
    import("./crd/lease.js"),
    import("./crd/mirror.js"),
    import("./crd/statusWriter.js"),
    import("./crd/namespaces.js"),
    import("./crd/mirrorRunnable.js"),
    import("./crd/conflictStatus.js"),
    import("./store/ownerSql.js"),
    import("./crd/placement.js"),
  ]);
}

/** The Kubernetes-mode parts: GameRuntime source, status/event mirror, Lease. */
async function kubernetesParts(config: Config, logger: Logger, store: SqlStore, identity: string, metrics: Metrics) {
  const [
    { kubeClient },
    { KubernetesDeclarationSource },
    { GameRuntimeEventRecorder },
    { KubernetesLease },
    { withKubernetesMirror, withStatusMirror },
    { GameRuntimeStatusWriter },
    { kubeNamespaces },
    { kubernetesMirrorRunnable },
    { ConflictStatusWriter },
    { SqlGameOwners },
    { gameRuntimePlacement },
  ] = await loadKubernetesModules();
  const namespaces = kubeNamespaces(config);
  // Every API request is aborted past RTMANAGER_KUBE_REQUEST_TIMEOUT; watches keep their silence limit.
  const kubeConfig = kubeClient(config.kubeRequestTimeoutMs);
  const log = logger.child({ component: "kubernetes" });
  const source = new KubernetesDeclarationSource({
    kubeConfig,
    namespace: namespaces.watch,
    createNamespace: namespaces.create,
    logger: log,
    silenceLimitMs: config.watchSilenceLimitMs,
    generationFloor: async (gameId) => (await store.getRecord(gameId))?.observedGeneration ?? 0,
    // Bookmarks count as messages: a quiet but healthy watch is not a silent one.
    // Relists are counted by the manager when the source reports a resync.
    hooks: { onWatchMessage: () => metrics.watchEvent("kubernetes") },
    // One owner per game id, recorded in the store (issue 21).
    owners: new SqlGameOwners(store.sql),
  });
  const status = new GameRuntimeStatusWriter(source, log);
  const events = new GameRuntimeEventRecorder({ source, logger: log, instance: identity });
  source.owners.onConflict = (gameId, owner, ignored) => events.recordOwnerConflict(gameId, owner, ignored);
  const conflicts = new ConflictStatusWriter(source, log);
  source.owners.onIgnored = (_gameId, owner, ignored) => conflicts.mark(owner, ignored);
  const state = withKubernetesMirror(store, { status, events });
  const observe = (hooks: ManagerHooks) => withStatusMirror(hooks, status);
  const lease = new KubernetesLease({
    kubeConfig,
    // Cluster-wide: the pod's own namespace (POD_NAMESPACE), where deploy/kustomize/base/rbac.yaml grants it.
    namespace: namespaces.lease,
    // RTMANAGER_LEASE_NAME, default `<instance id>-leader`: the name the Role's resourceNames grant.
    name: config.leaseName,
    logger: log,
  });
  // Stopped after the workers on every step-down: statuses and Events owed are written before the lease goes.
  const runnables = [kubernetesMirrorRunnable({ status, events })];
  // A runtime with namespaces puts each game's objects where its GameRuntime is, owned by it.
  const gameRuntimes: RuntimeModuleDeps["gameRuntimes"] = {
    placement: (fallbackNamespace) => gameRuntimePlacement(source, fallbackNamespace),
    watchNamespace: namespaces.watch ?? null,
  };
  return { source, state, lease, runnables, observe, gameRuntimes };
}

/** The engine runtimes by RTMANAGER_RUNTIME's value: one module each (src/runtime/module.ts). */
export const RUNTIME_MODULES: Readonly<Record<string, RuntimeModule>> = Object.freeze({
  [dockerModule.name]: dockerModule,
  [podModule.name]: podModule,
});

function runtimeModule(name: string): RuntimeModule {
  const module = RUNTIME_MODULES[name];
  if (!module) throw new ConfigError(`invalid configuration: RTMANAGER_RUNTIME=${name} names no runtime (${Object.keys(RUNTIME_MODULES).join(", ")})`);
  return module;
}

/** The leader deletes released state (a Pod's claim), when the runtime has state to delete and its retention setting is on. */
function stateRetention(retentionMs: number, runtime: RuntimePort, logger: Logger): StateRetentionRunnable[] {
  const prune = runtime.pruneReleasedState?.bind(runtime);
  if (!prune || retentionMs <= 0) return [];
  return [new StateRetentionRunnable({ retentionMs, prune, logger: logger.child({ component: "state-retention" }) })];
}

/** Records this process writes go straight into the read cache. */
function withRecordCache(hooks: ManagerHooks, records: RecordCache): ManagerHooks {
  return {
    ...hooks,
    onRecord: (record) => {
      records.put(record);
      hooks.onRecord?.(record);
    },
  };
}

/** Where the embedded PGlite database lives when no DATABASE_URL is set. */
export function pgliteDataDir(config: Pick<Config, "dataDir">): string {
  return `${config.dataDir}/pglite`;
}

type KubernetesParts = Awaited<ReturnType<typeof kubernetesParts>>;

/** The SQL store; its LISTEN connection's health feeds the record cache and the postgres watch's age. */
function openAppStore(config: Config, logger: Logger, metrics: Metrics, onConnectionLost: () => void): Promise<SqlStore> {
  return openStore({
    databaseUrl: config.databaseUrl,
    dataDir: pgliteDataDir(config),
    logger: logger.child({ component: "store" }),
    onQueryError: () => metrics.onStoreQueryError(),
    // Record notifications are being missed: REST reads go to the store until they flow again.
    pg: {
      statementTimeoutMs: config.sqlStatementTimeoutMs,
      onConnectionLost,
      // A quiet LISTEN connection that answers its heartbeat is a live watch: its age restarts.
      onHeartbeat: () => metrics.watchEvent("postgres"),
    },
  });
}

interface LoopParts {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: SqlStore;
  records: RecordCache;
  kube: KubernetesParts | null;
  engines: RuntimeModule;
  runtime: RuntimePort;
  source: DeclarationSource;
  state: StateStore;
  identity: string;
  /** AppOverrides.lease: null runs without a lease, undefined takes the mode's own. */
  lease: Lease | null | undefined;
}

/** The fleet (quarantines) and the Manager: the loop, its leader election and its runnables. */
function createLoop(p: LoopParts) {
  const { config, logger, metrics, store, kube, engines, runtime, state } = p;
  const leaseName = `rtmanager/${config.instanceId}`;
  const lease: Lease | undefined = p.lease === null ? undefined : (p.lease ?? kube?.lease ?? store.lease(leaseName));
  const { fleet, quarantines } = createFleet({ store: new SqlQuarantines(store.sql), state, settings: { after: config.quarantineAfter, windowMs: config.quarantineWindowMs, canaries: config.patchCanaries }, logger, enqueue: (id) => manager.enqueue(id), onImposed: metrics.quarantines.onImposed });
  metrics.quarantines.bind(() => quarantines.view().size);
  const manager = new Manager({
    fleet,
    source: p.source,
    state,
    finalizer: kube?.source,
    runtime,
    runtimeEvents: engines.events,
    prober: new HttpProber(),
    lease,
    // One epoch row per installation in the SQL store, in both modes (src/store/fenceSql.ts).
    fencing: store.fencing(leaseName),
    identity: p.identity,
    settings: {
      ...config,
      engineNetwork: engines.network(config),
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.leaseRenewDeadlineMs,
      retryPeriodMs: config.leaseRetryPeriodMs,
      declarationWatch: config.source === "kubernetes" ? "kubernetes" : "postgres",
      runnableStopTimeoutMs: runnableStopTimeout(config.shutdownTimeoutMs),
    },
    logger: logger.child({ component: "controller" }),
    hooks: (kube?.observe ?? ((h: ManagerHooks) => h))(withRecordCache(metrics.managerHooks(), p.records)),
    runnables: [
      ...(kube?.runnables ?? []),
      new RetentionRunnable({
        store,
        settings: { eventRetentionMs: config.eventRetentionMs, oplogRetentionMs: config.oplogRetentionMs },
        logger: logger.child({ component: "retention" }),
        onPruned: metrics.onRetentionPruned,
      }),
      ...stateRetention(engines.stateRetentionMs?.(config) ?? 0, runtime, logger),
    ],
  });
  return { manager, quarantines };
}

interface ServerParts {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: SqlStore;
  runtime: RuntimePort;
  runtimeReady: () => ReturnType<RuntimeModule["ready"]>;
  manager: Manager;
  operations: RuntimeOperations;
  source: DeclarationSource;
  quarantines: ReturnType<typeof createFleet>["quarantines"];
  /** The event streams waiting for news. */
  eventListeners: Set<() => void>;
}

function createServer(p: ServerParts): Server {
  const { config, logger, store, runtime, manager, eventListeners } = p;
  return createHttpServer({
    operations: p.operations,
    subscribeEvents: (listener) => {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
    state: store,
    logger: logger.child({ component: "http" }),
    ...httpDepsFromConfig(config),
    readiness: () => readiness(store, runtime, p.runtimeReady),
    preview: (gameId) => manager.reconciler.preview(gameId),
    metrics: p.metrics,
    declarations: p.source,
    quarantines: p.quarantines,
    logs: {
      logStream: async (gameId, options) => {
        const record = await store.getRecord(gameId);
        if (!record?.currentContainerId) throw new RtmError("not_found", `runtime ${gameId} has no container`);
        return runtime.logStream(record.currentContainerId, options);
      },
      maxBytes: config.logsMaxBytes,
      followMaxMs: config.logsFollowMaxMs,
    },
  });
}

export async function createApp(config: Config, logger: Logger, overrides: AppOverrides = {}): Promise<App> {
  const metrics = new Metrics({ requeueHorizonMs: config.resyncIntervalMs });
  registerBuildInfo(metrics.registry);
  // The store's connection-lost callback reaches the record cache, which reads the store: tied after both exist.
  let cache: RecordCache | null = null;
  const store = await openAppStore(config, logger, metrics, () => cache?.setLive(false));
  const records = (cache = new RecordCache(store));
  const identity = leaderIdentity();
  const kube = overrides.source || config.source !== "kubernetes" ? null : await kubernetesParts(config, logger, store, identity, metrics);
  // Every runtime failure reaches the loop, the REST operations and readiness as a contract error.
  const engines = runtimeModule(config.runtime);
  const runtime = withContractErrors(
    overrides.runtime ?? (await engines.create({ config, logger, onCall: metrics.runtimeOnCall(engines.name), gameRuntimes: kube?.gameRuntimes })),
  );
  const runtimeReady = () => engines.ready(runtime, config);
  const source: DeclarationSource = overrides.source ?? kube?.source ?? store;
  // Kubernetes mode mirrors records into .status and events into Kubernetes Events.
  const state: StateStore = kube?.state ?? store;
  const { manager, quarantines } = createLoop({ config, logger, metrics, store, records, kube, engines, runtime, source, state, identity, lease: overrides.lease });
  metrics.bind({ queueStats: () => manager.queueStats(), records: store, declarations: source, poolInUse: () => store.sql.inUse?.() ?? 0 });
  const operations = new RuntimeOperations({
    source,
    state,
    runtime,
    waiters: manager.waiters,
    enqueue: (gameId, lane) => manager.enqueue(gameId, lane),
    expectWrite: (gameId, lane) => manager.expectWrite(gameId, lane),
    opTimeoutMs: config.opTimeoutMs,
    records,
    quarantines,
    maxGames: config.maxGames,
  });
  // Every reconcile appends its events before it writes the record, so a record
  // notification (from any replica) is also the moment new events may exist.
  const eventListeners = new Set<() => void>();
  const wakeEventStreams = () => eventListeners.forEach((l) => l());
  const server = createServer({ config, logger, metrics, store, runtime, runtimeReady, manager, operations, source, quarantines, eventListeners });
  const running: RunningParts = { config, logger, store, runtime, runtimeReady, records, manager, server, kube, wakeEventStreams, stopRecordWatch: null };
  return {
    config,
    logger,
    store,
    runtime,
    source,
    manager,
    operations,
    server,
    start: () => startApp(running),
    stop: () => stopApp(running),
  };
}
