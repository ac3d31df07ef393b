/**
 * The fleet as the planner's holds see it (planFleet.ts): the quarantined
 * images, and for each image which games gate a patch to it now and which
 * run it proven. The canary state is derived from records, never stored
 * apart: a record with an open patch gate on image T is a canary in flight,
 * a record running T outside a gate is proof that T passed. The leader
 * rebuilds it from every record when it starts leading (so a restart or a
 * failover resumes the canaries where they were) and keeps it from the
 * records its loop writes. Between a canary's plan and its first record,
 * the game is claimed here, synchronously with the plan, so eight workers
 * planning at once never start more than N canaries.
 */
import type { Logger } from "../log.js";
import type { Declaration } from "../model/declaration.js";
import type { NewRuntimeEvent, RuntimeRecord } from "../model/record.js";
import type { StateStore } from "../model/ports.js";
import type { Plan } from "./plan.js";
import { heldByFleet, type FleetView } from "./planFleet.js";
import { Quarantines, type QuarantineSettings, type QuarantineStore } from "./quarantine.js";
import type { Runnable } from "./runnables/runnable.js";

export interface FleetDeps {
  quarantines: Quarantines;
  /** RTMANAGER_PATCH_CANARIES. */
  canaries: number;
  /** Every record (the leader's rebuild). */
  listRecords(): Promise<RuntimeRecord[]>;
  /** Wakes a held game (the manager's queue). */
  enqueue(gameId: string): void;
  logger: Logger;
}

/** A store's one-transaction write of a reconcile's events (and record): only its events matter here. */
type BatchWrite = (commit: { events: NewRuntimeEvent[] }, ...rest: unknown[]) => Promise<unknown>;

/** Which image a record gates a patch to, and which it runs proven; a game is in at most one of each. */
interface Standing {
  gating: string | null;
  proven: string | null;
}

const EMPTY: ReadonlySet<string> = new Set();

export class Fleet {
  private readonly gating = new Map<string, Set<string>>();
  private readonly provenOn = new Map<string, Set<string>>();
  private readonly standing = new Map<string, Standing>();
  /** Games a fleet hold keeps waiting, by target image: woken when a canary passes or fails, or a quarantine changes. */
  private readonly waiting = new Map<string, Set<string>>();

  constructor(private readonly deps: FleetDeps) {}

  view(): FleetView {
    return {
      quarantined: this.deps.quarantines.view(),
      canaries: this.deps.canaries,
      proven: (image) => (this.provenOn.get(image)?.size ?? 0) > 0,
      inFlight: (image) => this.gating.get(image) ?? EMPTY,
    };
  }

  /** Right after the plan, before any await: claims a canary slot, or notes a held game. */
  planned(gameId: string, p: Plan, d: Declaration | null): void {
    if (!d) return;
    if (heldByFleet(p)) {
      add(this.waiting, d.imageRef, gameId);
      return;
    }
    if (p.kind === "patch" && p.gate && this.deps.canaries > 0 && !this.view().proven(d.imageRef)) {
      this.set(gameId, { gating: d.imageRef, proven: this.standing.get(gameId)?.proven ?? null });
    }
  }

  onRecord(record: RuntimeRecord): void {
    this.set(record.gameId, standingOf(record));
  }

  /** A quarantine was imposed or lifted: every held game looks again. */
  wakeAll(): void {
    for (const image of [...this.waiting.keys()]) this.wake(image);
  }

  /**
   * The loop's state store, counting each `patch_rolled_back` it writes
   * (after the write: only an event the store took, under the leader's
   * fence, counts) towards the quarantine of the failed image. Events go
   * through appendEvent, and, on a store that writes a reconcile's events
   * with its record in one transaction, through commitReconcile.
   */
  countingRollbacks(state: StateStore): StateStore {
    const wrapped = Object.create(state) as StateStore;
    wrapped.appendEvent = async (event, ...rest) => {
      const stored = await state.appendEvent(event, ...rest);
      await this.countRollbacks([event]);
      return stored;
    };
    const batch = (state as { commitReconcile?: BatchWrite }).commitReconcile;
    if (batch) {
      const commitReconcile: BatchWrite = async (commit, ...rest) => {
        const stored = await batch.call(state, commit, ...rest);
        await this.countRollbacks(commit.events);
        return stored;
      };
      Object.assign(wrapped, { commitReconcile });
    }
    return wrapped;
  }

  private async countRollbacks(events: readonly NewRuntimeEvent[]): Promise<void> {
    for (const event of events) {
      const failed = event.type === "patch_rolled_back" ? event.data.failedImageRef : undefined;
      if (typeof failed !== "string") continue;
      await this.deps.quarantines.noteRollback(failed, event.gameId).catch((err: unknown) => {
        // The next REST patch to that image counts again (Quarantines.find).
        this.deps.logger.warn({ err, imageRef: failed }, "could not count a rollback towards a quarantine");
      });
    }
  }

  /** Rebuilds everything from the records when this replica starts leading. */
  runnable(): Runnable {
    return {
      name: "fleet",
      needsLeadership: true,
      start: async () => {
        const records = await this.deps.listRecords();
        for (const m of [this.gating, this.provenOn, this.waiting, this.standing]) m.clear();
        for (const r of records) this.onRecord(r);
        await this.deps.quarantines.refresh();
      },
      stop: async () => undefined,
    };
  }

  private set(gameId: string, next: Standing): void {
    const prev = this.standing.get(gameId) ?? { gating: null, proven: null };
    if (prev.gating === next.gating && prev.proven === next.proven) return;
    // Only games that gate or prove an image are kept: a stopped or removed one costs nothing.
    if (next.gating || next.proven) this.standing.set(gameId, next);
    else this.standing.delete(gameId);
    if (prev.gating !== next.gating) {
      if (prev.gating) remove(this.gating, prev.gating, gameId);
      if (next.gating) add(this.gating, next.gating, gameId);
    }
    if (prev.proven !== next.proven) {
      if (prev.proven) remove(this.provenOn, prev.proven, gameId);
      if (next.proven) add(this.provenOn, next.proven, gameId);
    }
    // A canary passed, or left its slot (rolled back, failed before its gate): the games behind it look again.
    if (prev.gating && prev.gating !== next.gating) this.wake(prev.gating);
    if (next.proven && next.proven !== prev.proven) this.wake(next.proven);
  }

  private wake(image: string): void {
    const games = this.waiting.get(image);
    if (!games) return;
    this.waiting.delete(image);
    for (const g of games) this.deps.enqueue(g);
  }
}

/**
 * Gating: a patch gate is open on the record's image (an open gate with an
 * earlier image to go back to; a restart's gate has none). Proven: it runs
 * the image outside any gate and not unhealthy.
 */
export function standingOf(r: RuntimeRecord): Standing {
  const image = r.currentImageRef;
  if (r.status !== "running" || !image) return { gating: null, proven: null };
  if (r.rolloutStartedAt) return { gating: r.previousImageRef && r.previousImageRef !== image ? image : null, proven: null };
  return { gating: null, proven: r.health !== "unhealthy" && !r.degraded ? image : null };
}

function add(m: Map<string, Set<string>>, key: string, value: string): void {
  let s = m.get(key);
  if (!s) m.set(key, (s = new Set()));
  s.add(value);
}

function remove(m: Map<string, Set<string>>, key: string, value: string): void {
  const s = m.get(key);
  if (!s) return;
  s.delete(value);
  if (s.size === 0) m.delete(key);
}

export interface FleetSetup {
  store: QuarantineStore;
  state: Pick<StateStore, "appendEvent" | "listRecords">;
  settings: QuarantineSettings & { canaries: number };
  logger: Logger;
  /** Wakes a game in the leader's queue (a no-op elsewhere). */
  enqueue(gameId: string): void;
  onImposed?(): void;
}

/** The quarantines (REST, metrics) and the fleet (the loop), wired to each other. */
export function createFleet(s: FleetSetup): { fleet: Fleet; quarantines: Quarantines } {
  const logger = s.logger.child({ component: "fleet" });
  let fleet: Fleet | null = null;
  const quarantines = new Quarantines({
    store: s.store,
    settings: s.settings,
    appendEvent: (e) => s.state.appendEvent(e),
    logger,
    onImposed: () => s.onImposed?.(),
    onChange: () => fleet?.wakeAll(),
  });
  fleet = new Fleet({ quarantines, canaries: s.settings.canaries, listRecords: () => s.state.listRecords(), enqueue: s.enqueue, logger });
  return { fleet, quarantines };
}
