/**
 * Starts and stops the loop: leadership, the declaration watch, the Docker
 * event stream, the periodic resync, the health prober and the workers. Only
 * the leader reconciles; every replica serves reads and accepts writes.
 */
import type { Logger } from "../log.js";
import { toRtmError } from "../model/errors.js";
import { mapLimit } from "../model/mapLimit.js";
import type { DeclarationSource, HealthProber, ObservedContainer, RuntimePort, StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { HealthTracker, probeUrl } from "./health.js";
import { LeaderElector, type Lease, type LeaderSettings } from "./leader.js";
import { runWorkers, WorkQueue, type QueueHooks } from "./queue.js";
import { Reconciler, type ReconcileObserver, type ReconcilerDeps, type ReconcilerSettings } from "./reconciler.js";
import { isSteady } from "./resyncTriage.js";
import { RecordWaiters } from "./waiters.js";

export interface ManagerSettings extends ReconcilerSettings, LeaderSettings {
  concurrency: number;
  resyncIntervalMs: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  retryBackoffBaseMs: number;
  retryBackoffMaxMs: number;
  instanceId: string;
  /** A watch silent this long is re-established and everything re-listed. */
  watchSilenceLimitMs: number;
  /** Which watch carries declarations, for the metrics. */
  declarationWatch?: WatchName;
}

export interface ManagerHooks extends ReconcileObserver {
  queue?: QueueHooks;
  onLeaderChange?(leading: boolean): void;
  onResync?(why: string): void;
  onDockerEventsReconnect?(): void;
  /** A message arrived on a watch the loop depends on (its age is the watchdog's measure). */
  onWatchMessage?(watch: WatchName): void;
  /** A watch was re-established and everything re-listed. */
  onRelist?(watch: WatchName): void;
  onProbe?(ok: boolean): void;
}

export type WatchName = "docker" | "postgres" | "kubernetes";

export interface ManagerDeps {
  source: DeclarationSource;
  state: StateStore;
  docker: RuntimePort;
  prober: HealthProber;
  /** Absent: this replica leads unconditionally (single-replica setups and tests). */
  lease?: Lease;
  identity: string;
  settings: ManagerSettings;
  logger: Logger;
  hooks?: ManagerHooks;
  finalizer?: ReconcilerDeps["finalizer"];
}

/**
 * Engines probed at once in a probe pass. Even with every probe timing out
 * (2 s default), 200 engines take 200 / 32 x 2 s, within the 15 s interval; a
 * pass still running when the next is due is skipped, not doubled.
 */
export const PROBE_CONCURRENCY = 32;

/** Every this many periodic resyncs, one reconciles every game, converged or not. */
const FULL_RESYNC_EVERY = 10;

/** Failures in a row after which a key's failures are logged at error level. */
const KEEPS_FAILING = 5;

export class Manager {
  readonly waiters = new RecordWaiters();
  readonly health = new HealthTracker();
  readonly reconciler: Reconciler;
  private queue: WorkQueue | null = null;
  private workers: Promise<void> | null = null;
  private stopLeading: (() => Promise<void>) | null = null;
  private elector: LeaderElector | null = null;
  private leadingDirectly = false;
  private probing = false;
  private periodicPasses = 0;

  constructor(private readonly deps: ManagerDeps) {
    const hooks = deps.hooks;
    this.reconciler = new Reconciler({
      source: deps.source,
      state: deps.state,
      docker: deps.docker,
      prober: deps.prober,
      health: this.health,
      settings: deps.settings,
      logger: deps.logger,
      mayAct: () => this.mayAct(),
      finalizer: deps.finalizer,
      observer: {
        onRecord: (record) => {
          this.waiters.notify(record.gameId);
          hooks?.onRecord?.(record);
        },
        onReconcile: (result, seconds) => hooks?.onReconcile?.(result, seconds),
      },
    });
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.leadingDirectly;
  }

  mayAct(): boolean {
    return this.elector ? this.elector.mayAct() : this.leadingDirectly;
  }

  /** Wakes the loop for one game (used by writers in this process). */
  enqueue(gameId: string): void {
    this.queue?.add(gameId);
  }

  queueStats(): { depth: number; processing: number; unfinishedSeconds: number; longestSeconds: number } {
    const q = this.queue;
    if (!q) return { depth: 0, processing: 0, unfinishedSeconds: 0, longestSeconds: 0 };
    return { depth: q.depth, processing: q.processingCount, ...q.inFlight() };
  }

  async start(): Promise<void> {
    const { lease, settings, identity, logger } = this.deps;
    if (!lease) {
      this.leadingDirectly = true;
      await this.startLeading();
      return;
    }
    this.elector = new LeaderElector(
      lease,
      identity,
      settings,
      {
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => this.stopLeadingNow(),
      },
      logger,
    );
    this.elector.start();
  }

  async stop(): Promise<void> {
    if (this.elector) await this.elector.stop();
    else if (this.leadingDirectly) {
      this.leadingDirectly = false;
      await this.stopLeadingNow();
    }
  }

  private async startLeading(): Promise<void> {
    const { source, state, docker, settings, logger, hooks } = this.deps;
    hooks?.onLeaderChange?.(true);
    const queue = new WorkQueue({ baseMs: settings.retryBackoffBaseMs, maxMs: settings.retryBackoffMaxMs }, hooks?.queue);
    this.queue = queue;

    try {
      for (const op of await state.markInterruptedOperations()) {
        logger.warn({ gameId: op.gameId, opId: op.opId, kind: op.kind }, "operation was interrupted by a controller stop; reconciling again");
        queue.add(op.gameId);
      }
    } catch (err) {
      logger.warn({ err: toRtmError(err).message }, "could not mark interrupted operations");
    }

    const resync = (why: string) => {
      hooks?.onResync?.(why);
      void this.resync(queue, why);
    };
    const declWatch = settings.declarationWatch ?? "postgres";
    const unwatch = await source.watch({
      onChange: (gameId) => {
        hooks?.onWatchMessage?.(declWatch);
        queue.add(gameId);
      },
      onResync: () => {
        hooks?.onRelist?.(declWatch);
        resync("declaration watch re-established");
      },
    });
    // The Docker event stream is quiet when nothing happens, and a half-open
    // connection is quiet too. Past the silence limit the stream is replaced
    // and everything re-listed: cheap, and a dead stream cannot hide for long.
    let lastDockerMessage = Date.now();
    const watchDocker = () =>
      docker.watchEvents({
        onEvent: (e) => {
          lastDockerMessage = Date.now();
          hooks?.onWatchMessage?.("docker");
          queue.add(e.gameId);
        },
        onReconnect: () => {
          lastDockerMessage = Date.now();
          hooks?.onDockerEventsReconnect?.();
          hooks?.onRelist?.("docker");
          resync("docker event stream re-established");
        },
        onDisconnect: (err) => logger.warn({ err: err.message }, "docker event stream lost; reconnecting"),
      });
    let stopEvents = watchDocker();
    const watchdog = setInterval(() => {
      const silentMs = Date.now() - lastDockerMessage;
      if (silentMs < settings.watchSilenceLimitMs) return;
      logger.info({ silentSeconds: Math.round(silentMs / 1000) }, "docker event stream silent past the limit; re-establishing it and re-listing");
      stopEvents();
      lastDockerMessage = Date.now();
      stopEvents = watchDocker();
      hooks?.onRelist?.("docker");
      resync("docker event stream silent");
    }, Math.max(1000, Math.min(30_000, settings.watchSilenceLimitMs / 2)));
    watchdog.unref();
    const resyncTimer = setInterval(() => resync("periodic"), settings.resyncIntervalMs);
    const probeTimer = setInterval(() => void this.probeAll(queue), settings.probeIntervalMs);
    resync("start");

    this.workers = runWorkers(queue, settings.concurrency, (key) => this.handle(queue, key));
    this.stopLeading = async () => {
      clearInterval(resyncTimer);
      clearInterval(probeTimer);
      clearInterval(watchdog);
      stopEvents();
      await unwatch().catch(() => {});
      queue.shutDown();
      await this.workers;
    };
    logger.info({ concurrency: settings.concurrency, instance: settings.instanceId }, "controller loop started");
  }

  private async stopLeadingNow(): Promise<void> {
    this.deps.hooks?.onLeaderChange?.(false);
    const stop = this.stopLeading;
    this.stopLeading = null;
    this.queue = null;
    if (stop) await stop();
  }

  /** What the queue does after a reconcile: forget, requeue after a delay, or back off. */
  private async handle(queue: WorkQueue, key: string): Promise<void> {
    const { logger, settings } = this.deps;
    const { outcome } = await this.reconciler.reconcile(key);
    switch (outcome.type) {
      case "error": {
        if (outcome.terminal) {
          queue.forget(key);
          return;
        }
        const failures = queue.numFailures(key) + 1;
        const delay = queue.addRateLimited(key);
        const line = { gameId: key, code: outcome.error.code, failures, retryInMs: delay };
        if (failures >= KEEPS_FAILING) logger.error(line, "reconcile keeps failing");
        return;
      }
      case "requeue":
        queue.forget(key);
        // Long waits (retention) are left to the periodic resync; timers that long are not worth holding.
        if (outcome.afterMs <= settings.resyncIntervalMs) queue.addAfter(key, outcome.afterMs);
        return;
      case "done":
        queue.forget(key);
        return;
    }
  }

  /**
   * Queues every game any source knows about: declarations, containers and
   * records. A periodic pass skips games the bulk lists show converged (see
   * resyncTriage), except every FULL_RESYNC_EVERY-th pass, which queues all:
   * a backstop for anything the lists cannot show.
   */
  /** One resync pass now (tests, and a future admin endpoint); null when this replica does not lead. */
  async resyncNow(why: string): Promise<{ queued: string[]; skipped: string[] } | null> {
    return this.queue ? this.resync(this.queue, why) : null;
  }

  private async resync(queue: WorkQueue, why: string): Promise<{ queued: string[]; skipped: string[] }> {
    const { source, docker, state, logger } = this.deps;
    const periodic = why === "periodic";
    const triage = periodic && source.listGenerations !== undefined && ++this.periodicPasses % FULL_RESYNC_EVERY !== 0;
    const results = await Promise.allSettled([
      triage ? source.listGenerations!() : source.listGameIds().then((ids) => new Map(ids.map((id) => [id, -1]))),
      docker.listManaged({ inspect: false }),
      state.listRecords(),
    ]);
    const [decls, containers, records] = results;
    for (const r of results) if (r.status === "rejected") logger.warn({ why, err: toRtmError(r.reason).message }, "resync could not list a source");
    const generations = decls.status === "fulfilled" ? decls.value : new Map<string, number>();
    const byGame = new Map<string, ObservedContainer[]>();
    if (containers.status === "fulfilled") for (const c of containers.value) byGame.set(c.gameId, [...(byGame.get(c.gameId) ?? []), c]);
    const recordOf = new Map<string, RuntimeRecord>();
    if (records.status === "fulfilled") for (const r of records.value) if (r.status !== "removed") recordOf.set(r.gameId, r);
    const ids = new Set([...generations.keys(), ...byGame.keys(), ...recordOf.keys()]);
    // Triage only when every list answered: a missing list cannot prove anything steady.
    const canSkip = triage && results.every((r) => r.status === "fulfilled");
    const queued: string[] = [];
    const skipped: string[] = [];
    for (const id of ids) {
      const containersOf = byGame.get(id) ?? [];
      if (canSkip) {
        const record = recordOf.get(id);
        const steady = isSteady({ generation: generations.get(id), record, containers: containersOf, health: this.health.get(id, record?.currentContainerId ?? null) });
        if (steady) {
          skipped.push(id);
          continue;
        }
      }
      // Periodic passes use the slow lane; a resync after a watch gap is as urgent as any change.
      queue.add(id, periodic ? "low" : "high");
      queued.push(id);
    }
    logger.debug({ why, games: ids.size, skipped: skipped.length }, "resync");
    return { queued, skipped };
  }

  /** Probes every running engine once; transitions wake the loop for that game. */
  private async probeAll(queue: WorkQueue): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const { docker, prober, state, settings, logger, hooks } = this.deps;
    try {
      // One list call for the fleet: a pass over 200 engines must not cost 200 inspects.
      const containers = (await docker.listManaged({ inspect: false })).filter((c) => c.state === "running");
      // A bounded number at a time: 200 engines probed at once is a burst of connections (and,
      // with published ports, of docker-proxy work) that times probes out on a small host.
      await mapLimit(containers, PROBE_CONCURRENCY, async (c) => {
        const url = probeUrl(docker, c);
        if (!url) return;
        const result = await prober.probe(url, settings.probeTimeoutMs);
        hooks?.onProbe?.(result.ok);
        const transition = this.health.observe(c.gameId, c.id, result.ok, new Date(), settings.probeFailureThreshold);
        if (transition) {
          const type = transition === "failed" ? "probe_failed" : "probe_recovered";
          logger.warn({ gameId: c.gameId, containerId: c.id, error: result.error, statusCode: result.statusCode }, type);
          await state.appendEvent({ gameId: c.gameId, type, opId: null, data: { containerId: c.id, error: result.error, statusCode: result.statusCode } });
          queue.add(c.gameId);
        }
      });
    } catch (err) {
      logger.warn({ err: toRtmError(err).message }, "probe pass failed");
    } finally {
      this.probing = false;
    }
  }
}
