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
import type { Declaration } from "../../model/declaration.js";
import { RtmError } from "../../model/errors.js";
import type { DeclarationSource, RuntimePort, ObservedContainer, StateStore } from "../../model/ports.js";
import type { RuntimeRecord } from "../../model/record.js";
import { recordLocationOf } from "../actions.js";
import type { HealthTracker } from "../health.js";
import type { PlannerSettings } from "../plan.js";
import { isSteady, reconcileWouldDoNothing } from "../resyncTriage.js";
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
  /** The planner's settings: with them (and a source that lists declarations) the full pass plans on bulk lists. */
  settings?: PlannerSettings & { stateRoot: string; engineNetwork?: string };
  logger: Logger;
  onResync?(why: string): void;
}

/** What one pass read; a list that failed is null. */
interface Listing {
  generations: Map<string, number> | null;
  /** Only on a full pass that plans on bulk lists. */
  declarations: Map<string, Declaration | RtmError> | null;
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
    const pass = periodic && this.deps.source.listGenerations !== undefined ? ++this.periodicPasses : 0;
    const triage = pass > 0 && pass % FULL_RESYNC_EVERY !== 0;
    const planned = pass > 0 && !triage && this.deps.source.listDeclarations !== undefined && this.deps.settings !== undefined;
    const cpu = process.cpuUsage();
    const started = Date.now();
    const listing = await this.list(why, triage, planned);
    this.forgetGone(listing);
    const recordOf = new Map<string, RuntimeRecord>();
    for (const r of listing.records ?? []) if (r.status !== "removed") recordOf.set(r.gameId, r);
    const generations = listing.generations ?? new Map<string, number>();
    const byGame = listing.containers ?? new Map<string, ObservedContainer[]>();
    const ids = new Set([...generations.keys(), ...byGame.keys(), ...recordOf.keys()]);
    // Skip only when every list answered: a missing list cannot prove anything steady.
    const listed = listing.generations !== null && listing.containers !== null && listing.records !== null;
    const skip = !listed ? () => false : triage ? this.steady(generations, recordOf, byGame) : planned ? this.quiet(listing, byGame) : () => false;
    const result: ResyncResult = { queued: [], skipped: [] };
    for (const id of ids) {
      if (skip(id)) {
        result.skipped.push(id);
        continue;
      }
      // Periodic passes use the slow lane; a resync after a watch gap is as urgent as any change.
      this.deps.enqueue(id, periodic ? "low" : "high");
      result.queued.push(id);
    }
    const fields = { why, games: ids.size, queued: result.queued.length, skipped: result.skipped.length };
    // The full pass once in FULL_RESYNC_EVERY, with what it cost this process (the lists and the planning, not the reconciles it queued).
    if (planned) this.deps.logger.info({ ...fields, ms: Date.now() - started, cpuMs: Math.round(cpuMsSince(cpu)) }, "full resync pass");
    else this.deps.logger.debug(fields, "resync");
    return result;
  }

  /** A triaged pass: skips what the bulk lists show converged (resyncTriage.isSteady). */
  private steady(generations: Map<string, number>, recordOf: Map<string, RuntimeRecord>, byGame: Map<string, ObservedContainer[]>): (id: string) => boolean {
    return (id) => {
      const record = recordOf.get(id);
      return isSteady({ generation: generations.get(id), record, containers: byGame.get(id) ?? [], health: this.deps.health.get(id, record?.currentContainerId ?? null) });
    };
  }

  /** A full pass: skips a game only when the planner, on the bulk lists, would do nothing and write nothing (resyncTriage). */
  private quiet(listing: Listing, byGame: Map<string, ObservedContainer[]>): (id: string) => boolean {
    const { runtime, health } = this.deps;
    const settings = this.deps.settings!;
    const records = new Map((listing.records ?? []).map((r) => [r.gameId, r]));
    const now = new Date();
    return (id) => {
      const declaration = listing.declarations?.get(id) ?? null;
      if (declaration instanceof RtmError) return false;
      return reconcileWouldDoNothing({
        gameId: id,
        declaration,
        record: records.get(id) ?? null,
        containers: byGame.get(id) ?? [],
        health,
        now,
        settings,
        verbs: runtime.verbs,
        location: recordLocationOf(runtime, settings, id),
      });
    };
  }

  private async list(why: string, triage: boolean, planned: boolean): Promise<Listing> {
    const { source, runtime, state, logger } = this.deps;
    const settled = <T>(r: PromiseSettledResult<T>): T | null => {
      if (r.status === "fulfilled") return r.value;
      logger.warn({ why, err: r.reason as unknown }, "resync could not list a source");
      return null;
    };
    const [decls, containers, records] = await Promise.allSettled([
      planned ? source.listDeclarations!() : triage ? source.listGenerations!() : source.listGameIds().then((ids) => new Map(ids.map((id) => [id, -1]))),
      // The full pass plans on what a reconcile would observe: exit codes and times come from inspect.
      runtime.listManaged({ inspect: planned }),
      state.listRecords(),
    ]);
    const listed = settled(containers);
    let byGame: Map<string, ObservedContainer[]> | null = null;
    if (listed) {
      byGame = new Map();
      for (const c of listed) {
        const list = byGame.get(c.gameId);
        if (list) list.push(c);
        else byGame.set(c.gameId, [c]);
      }
    }
    const declared = settled<Map<string, unknown>>(decls);
    const declarations = planned ? (declared as Map<string, Declaration | RtmError> | null) : null;
    const generations = declared && planned ? new Map([...declared.keys()].map((id) => [id, -1])) : (declared as Map<string, number> | null);
    return { generations, declarations, containers: byGame, records: settled(records) };
  }

  /** A game whose record says removed and that has no container has nothing left to probe. */
  private forgetGone({ containers, records }: Listing): void {
    if (!containers || !records) return;
    for (const r of records) if (r.status === "removed" && !containers.has(r.gameId)) this.deps.health.forget(r.gameId);
  }
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}
