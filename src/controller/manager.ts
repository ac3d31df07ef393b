/**
 * The host of the loop. It holds the runnables (the workers, the declaration
 * watch, the runtime's event watch, resync, the health prober, and any the app
 * adds, such as the Kubernetes status writer) and runs them by leadership:
 * the ones that need it start when this replica is elected, in the order they
 * were added, and stop in reverse when it steps down, within a bound; the
 * others run for the life of the Manager. Only the leader reconciles; every
 * replica serves reads and accepts writes. Each reconcile runs under the
 * term's AbortSignal (`termSignal`), which fires on lost leadership and on
 * shutdown, before the runnables are stopped, so a stop never waits for a
 * slow runtime call.
 */
import type { Logger } from "../log.js";
import { AbortedError } from "../model/abort.js";
import type { Fence, FencedWriteError, LeaderFencing } from "../model/fence.js";
import { isDeclarative, type DeclarationSource, type RuntimePort, type HealthProber, type Lease, type StateStore } from "../model/ports.js";
import { fencedState } from "./fencedState.js";
import type { Fleet } from "./fleet.js";
import { HealthTracker } from "./health.js";
import { LeaderElector, type LeaderSettings } from "./leader.js";
import type { Lane, QueueHooks } from "./queue.js";
import { Reconciler, type ReconcileObserver, type ReconcilerDeps, type ReconcilerSettings } from "./reconciler.js";
import { HealthProbeRunnable } from "./runnables/prober.js";
import { ResyncRunnable, type ResyncResult } from "./runnables/resync.js";
import { RunnableGroup, type Runnable } from "./runnables/runnable.js";
import { DeclarationWatchRunnable, RuntimeEventWatchRunnable, type Enqueue, type RequestResync, type RuntimeEventStream, type WatchHooks, type WatchName } from "./runnables/watches.js";
import { Workers, type QueueStats } from "./runnables/workers.js";
import { RecordWaiters } from "./waiters.js";
import { MAX_HOLD_MS, ROLLOUT_CALLS_AT_ONCE, RuntimeTurns } from "./runtimeTurns.js";
import { WriterEchoes } from "./writerEchoes.js";

export { PROBE_CONCURRENCY } from "./runnables/prober.js";
export type { Runnable, RunnableContext } from "./runnables/runnable.js";
export type { RuntimeEventStream, WatchName } from "./runnables/watches.js";

/**
 * How long a step-down or a shutdown waits for the leader's runnables to stop,
 * all of them together: under the Deployment's 30 s termination grace, so the
 * lease is still released before the kubelet kills the pod.
 */
export const DEFAULT_RUNNABLE_STOP_TIMEOUT_MS = 20_000;

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
  /** Default DEFAULT_RUNNABLE_STOP_TIMEOUT_MS. */
  runnableStopTimeoutMs?: number;
}

export interface ManagerHooks extends ReconcileObserver, WatchHooks {
  queue?: QueueHooks;
  onLeaderChange?(leading: boolean): void;
  onResync?(why: string): void;
  onProbe?(ok: boolean): void;
  /** A store write of the loop was refused: this replica's leader epoch is stale (see src/model/fence.ts). */
  onFencedWrite?(err: FencedWriteError): void;
}

export interface ManagerDeps {
  source: DeclarationSource;
  state: StateStore;
  runtime: RuntimePort;
  /**
   * The runtime's event stream: its metric label and liveness rule (the
   * runtime module's). Default: labelled with the runtime's name, replaced
   * when silent past watchSilenceLimitMs.
   */
  runtimeEvents?: RuntimeEventStream;
  prober: HealthProber;
  /** Absent: this replica leads unconditionally (single-replica setups and tests). */
  lease?: Lease;
  /**
   * Advanced each time this replica starts leading, before any leader runnable
   * starts; the loop's store writes then carry that epoch and are refused once
   * another leader has advanced it. Absent: the loop's writes are not fenced.
   */
  fencing?: LeaderFencing;
  identity: string;
  settings: ManagerSettings;
  logger: Logger;
  hooks?: ManagerHooks;
  finalizer?: ReconcilerDeps["finalizer"];
  /**
   * Runnables added before the loop's own: a leader one starts before the
   * workers and stops after them (what the workers feed, such as a status
   * writer that must flush before the lease is released).
   */
  runnables?: readonly Runnable[];
  /** Quarantines and canaries: the plan reads it, the loop's records and rollbacks feed it. */
  fleet?: Fleet;
}

export class Manager {
  readonly waiters = new RecordWaiters();
  private readonly echoes = new WriterEchoes();
  readonly health = new HealthTracker();
  readonly reconciler: Reconciler;
  /** The state store as this replica's loop writes it: every write carries the leader epoch (fencedState). */
  readonly loopState: StateStore;
  private readonly leaderGroup: RunnableGroup;
  private readonly alwaysGroup: RunnableGroup;
  private readonly workers: Workers;
  private readonly resync: ResyncRunnable;
  private elector: LeaderElector | null = null;
  private leadingDirectly = false;
  /** Without a lease: the one term, from start to stop. */
  private directTerm = new AbortController();
  private started = false;
  /**
   * The epoch of this replica's latest term. Kept after a step-down on purpose:
   * an in-flight reconcile may still record what it did until another leader
   * advances the epoch, and the store, not this process, judges that.
   */
  private fence: Fence | null = null;

  constructor(private readonly deps: ManagerDeps) {
    const { settings, logger, hooks } = deps;
    const stopTimeoutMs = settings.runnableStopTimeoutMs ?? DEFAULT_RUNNABLE_STOP_TIMEOUT_MS;
    this.leaderGroup = new RunnableGroup(logger, stopTimeoutMs);
    this.alwaysGroup = new RunnableGroup(logger, stopTimeoutMs);
    // The store logs each refusal (warn "fenced write refused"); here it is counted.
    const fenced = fencedState(deps.state, () => this.fence, (err) => hooks?.onFencedWrite?.(err));
    const state = deps.fleet ? deps.fleet.countingRollbacks(fenced) : fenced;
    this.loopState = state;
    this.reconciler = new Reconciler({
      source: deps.source,
      state,
      runtime: deps.runtime,
      prober: deps.prober,
      health: this.health,
      settings,
      logger,
      mayAct: () => this.mayAct(),
      finalizer: deps.finalizer,
      fleet: deps.fleet,
      laneOf: (gameId) => this.workers.laneOf(gameId),
      // A declarative runtime's calls answer once accepted: nothing of ours waits behind them at the engine.
      turns: new RuntimeTurns(MAX_HOLD_MS, isDeclarative(deps.runtime.verbs) ? Infinity : ROLLOUT_CALLS_AT_ONCE),
      observer: {
        onRecord: (record) => {
          deps.fleet?.onRecord(record);
          // Nothing left to probe: the tracker must not keep every game ever run.
          if (record.status === "removed") this.health.forget(record.gameId);
          this.waiters.notify(record.gameId);
          hooks?.onRecord?.(record);
        },
        onReconcile: (result, seconds) => hooks?.onReconcile?.(result, seconds),
      },
    });
    const enqueue: Enqueue = (gameId, lane) => this.workers.add(gameId, lane);
    const requestResync: RequestResync = (why) => this.resync.request(why);
    this.workers = new Workers({ reconcile: (key) => this.reconciler.reconcile(key, this.termSignal()), state, settings, logger, hooks: hooks?.queue });
    this.resync = new ResyncRunnable({ ...deps, health: this.health, enqueue, intervalMs: settings.resyncIntervalMs, onResync: hooks?.onResync });
    const watch = { enqueue, requestResync, logger, hooks };
    for (const r of deps.runnables ?? []) this.add(r);
    // Before the workers: the canaries are rebuilt from the records before anything is planned.
    if (deps.fleet) this.add(deps.fleet.runnable());
    this.add(this.workers);
    // The echo of this process's own write waits in the writer's lane (writerEchoes.ts).
    const declarationChanged: Enqueue = (gameId) => void this.workers.add(gameId, this.echoes.laneFor(gameId));
    this.add(new DeclarationWatchRunnable({ ...watch, enqueue: declarationChanged, source: deps.source, watch: settings.declarationWatch ?? "postgres" }));
    const stream = deps.runtimeEvents ?? { label: deps.runtime.name, liveness: "replace-when-silent" };
    this.add(new RuntimeEventWatchRunnable({ ...watch, runtime: deps.runtime, stream, silenceLimitMs: settings.watchSilenceLimitMs }));
    this.add(this.resync);
    this.add(new HealthProbeRunnable({ ...deps, state, health: this.health, enqueue, onProbe: hooks?.onProbe }));
  }

  /** Registers a runnable before `start` (controller-runtime's mgr.Add); it starts after those added earlier. */
  add(runnable: Runnable): void {
    if (this.started) throw new Error(`cannot add runnable ${runnable.name}: the manager has started`);
    (runnable.needsLeadership ? this.leaderGroup : this.alwaysGroup).add(runnable);
  }

  get isLeader(): boolean {
    return this.elector ? this.elector.isLeader : this.leadingDirectly;
  }

  mayAct(): boolean {
    return this.elector ? this.elector.mayAct() : this.leadingDirectly;
  }

  /** Fires when this replica's current term of leadership ends (lost, stepped down, shut down). */
  termSignal(): AbortSignal {
    return this.elector ? this.elector.signal : this.directTerm.signal;
  }

  /** Wakes the loop for one game (used by writers in this process); a no-op while not leading. */
  enqueue(gameId: string, lane: Lane = "high"): void {
    this.workers.add(gameId, lane);
  }

  /**
   * A writer in this process is about to change the game's declaration and
   * will wake the loop in `lane` (a patch: the rollout lane): the declaration
   * watch's report of that write goes there too, even when it arrives before
   * the writer's wake. A no-op while not leading.
   */
  expectWrite(gameId: string, lane: Lane): void {
    if (this.workers.taking && lane !== "high") this.echoes.expect(gameId, lane);
  }

  queueStats(): QueueStats {
    return this.workers.stats();
  }

  /** One resync pass now (tests, and a future admin endpoint); null when this replica does not lead. */
  resyncNow(why: string): Promise<ResyncResult | null> {
    return this.resync.runNow(why);
  }

  /** Starts the runnables that need no leadership, then runs for leadership (or leads at once without a lease). */
  async start(): Promise<void> {
    const { lease, settings, identity, logger } = this.deps;
    this.started = true;
    await this.alwaysGroup.start();
    if (!lease) {
      this.leadingDirectly = true;
      this.directTerm = new AbortController();
      try {
        await this.startLeading();
      } catch (err) {
        this.leadingDirectly = false;
        this.directTerm.abort(new AbortedError("the leader's work did not start"));
        await this.stopLeading();
        throw err;
      }
      return;
    }
    this.elector = new LeaderElector(
      lease,
      identity,
      settings,
      { onStartedLeading: () => this.startLeading(), onStoppedLeading: () => this.stopLeading() },
      logger,
    );
    this.elector.start();
  }

  /** Steps down (leader runnables stop, then the lease is released), then stops the others. */
  async stop(): Promise<void> {
    if (this.elector) await this.elector.stop();
    else if (this.leadingDirectly) {
      this.leadingDirectly = false;
      this.directTerm.abort(new AbortedError("rtmanager is shutting down; the next start finishes the job"));
      await this.stopLeading();
    }
    await this.alwaysGroup.stop();
  }

  /** Throws when a runnable did not start; the group has then stopped the ones that had. */
  private async startLeading(): Promise<void> {
    const { fencing, identity, logger } = this.deps;
    if (fencing) {
      // Before anything acts: from here on no write of an earlier term can land.
      this.fence = await fencing.advance(identity);
      logger.info({ identity, fence: this.fence.name, epoch: this.fence.epoch }, "leader epoch advanced");
    }
    this.deps.hooks?.onLeaderChange?.(true);
    this.reconciler.newTerm();
    await this.leaderGroup.start();
    this.deps.logger.info({ concurrency: this.deps.settings.concurrency, instance: this.deps.settings.instanceId, runnables: this.leaderGroup.names }, "controller loop started");
  }

  private async stopLeading(): Promise<void> {
    this.deps.hooks?.onLeaderChange?.(false);
    await this.leaderGroup.stop();
  }
}
