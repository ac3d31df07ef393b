/**
 * Resync: queues every game any source knows about (declarations,
 * containers, records), at start, periodically, and whenever a watch asks
 * after a gap. A periodic pass skips games the bulk lists show converged (see
 * resyncTriage), except every FULL_RESYNC_EVERY-th pass, which queues all: a
 * backstop for anything the lists cannot show. A pass also drops the probe
 * history of games that are gone, so the health tracker does not grow with
 * every game ever run.
 */
import type { Logger } from "../../log.js";
import type { DeclarationSource, RuntimePort, ObservedContainer, StateStore } from "../../model/ports.js";
import type { RuntimeRecord } from "../../model/record.js";
import type { HealthTracker } from "../health.js";
import { isSteady } from "../resyncTriage.js";
import type { Runnable } from "./runnable.js";
import type { Enqueue } from "./watches.js";

/** Every this many periodic resyncs, one reconciles every game, converged or not. */
const FULL_RESYNC_EVERY = 10;

export interface ResyncResult {
  queued: string[];
  skipped: string[];
}

export interface ResyncDeps {
  source: DeclarationSource;
  runtime: RuntimePort;
  state: Pick<StateStore, "listRecords">;
  health: Pick<HealthTracker, "get" | "forget">;
  enqueue: Enqueue;
  intervalMs: number;
  logger: Logger;
  onResync?(why: string): void;
}

/** What one pass read; a list that failed is null. */
interface Listing {
  generations: Map<string, number> | null;
  containers: Map<string, ObservedContainer[]> | null;
  records: RuntimeRecord[] | null;
}

export class ResyncRunnable implements Runnable {
  readonly name = "resync";
  readonly needsLeadership = true;
  private timer: NodeJS.Timeout | null = null;
  private periodicPasses = 0;

  constructor(private readonly deps: ResyncDeps) {}

  start(): void {
    this.timer = setInterval(() => this.request("periodic"), this.deps.intervalMs);
    this.request("start");
  }

  stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return Promise.resolve();
  }

  /** Starts a pass in the background (watches, the timer); ignored while not running. */
  request(why: string): void {
    if (!this.timer) return;
    this.deps.onResync?.(why);
    this.runNow(why).catch((err: unknown) => this.deps.logger.warn({ err, why }, "resync failed"));
  }

  /** One pass now; null while not running (this replica does not lead). */
  async runNow(why: string): Promise<ResyncResult | null> {
    if (!this.timer) return null;
    const periodic = why === "periodic";
    const triage = periodic && this.deps.source.listGenerations !== undefined && ++this.periodicPasses % FULL_RESYNC_EVERY !== 0;
    const listing = await this.list(why, triage);
    this.forgetGone(listing);
    const recordOf = new Map<string, RuntimeRecord>();
    for (const r of listing.records ?? []) if (r.status !== "removed") recordOf.set(r.gameId, r);
    const generations = listing.generations ?? new Map<string, number>();
    const byGame = listing.containers ?? new Map<string, ObservedContainer[]>();
    const ids = new Set([...generations.keys(), ...byGame.keys(), ...recordOf.keys()]);
    // Triage only when every list answered: a missing list cannot prove anything steady.
    const canSkip = triage && listing.generations !== null && listing.containers !== null && listing.records !== null;
    const result: ResyncResult = { queued: [], skipped: [] };
    for (const id of ids) {
      const record = recordOf.get(id);
      const containers = byGame.get(id) ?? [];
      if (canSkip && isSteady({ generation: generations.get(id), record, containers, health: this.deps.health.get(id, record?.currentContainerId ?? null) })) {
        result.skipped.push(id);
        continue;
      }
      // Periodic passes use the slow lane; a resync after a watch gap is as urgent as any change.
      this.deps.enqueue(id, periodic ? "low" : "high");
      result.queued.push(id);
    }
    this.deps.logger.debug({ why, games: ids.size, skipped: result.skipped.length }, "resync");
    return result;
  }

  private async list(why: string, triage: boolean): Promise<Listing> {
    const { source, runtime, state, logger } = this.deps;
    const settled = <T>(r: PromiseSettledResult<T>): T | null => {
      if (r.status === "fulfilled") return r.value;
      logger.warn({ why, err: r.reason as unknown }, "resync could not list a source");
      return null;
    };
    const [decls, containers, records] = await Promise.allSettled([
      triage ? source.listGenerations!() : source.listGameIds().then((ids) => new Map(ids.map((id) => [id, -1]))),
      runtime.listManaged({ inspect: false }),
      state.listRecords(),
    ]);
    const listed = settled(containers);
    let byGame: Map<string, ObservedContainer[]> | null = null;
    if (listed) {
      byGame = new Map();
      for (const c of listed) byGame.set(c.gameId, [...(byGame.get(c.gameId) ?? []), c]);
    }
    return { generations: settled(decls), containers: byGame, records: settled(records) };
  }

  /** A game whose record says removed and that has no container has nothing left to probe. */
  private forgetGone({ containers, records }: Listing): void {
    if (!containers || !records) return;
    for (const r of records) if (r.status === "removed" && !containers.has(r.gameId)) this.deps.health.forget(r.gameId);
  }
}
