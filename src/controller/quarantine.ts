/**
 * Image quarantine, the fleet rollout's safety catch: after
 * RTMANAGER_QUARANTINE_AFTER patches to one image were rolled back by the
 * health gate within RTMANAGER_QUARANTINE_WINDOW, further patches to that
 * image are refused at once (REST) or held (any other writer, by the
 * planner) until an operator lifts the quarantine. Another image is never
 * affected: a quarantine names one exact image reference.
 *
 * Where it lives: rollbacks are counted from the event log (the
 * `patch_rolled_back` events the loop already writes, fenced), and a
 * quarantine is a row of `image_quarantines` (migration 5). Both are in the
 * SQL store, so a quarantine survives a restart and every replica sees the
 * same one. Counting from the events rather than an in-memory tally means a
 * crash between a rollback and its quarantine converges: the next check of
 * that image (a REST patch, or the next rollback) counts again.
 *
 * Expiry: none. A quarantine stays until it is lifted (`rtmctl quarantine
 * lift`, POST /api/v1/ext/quarantines/lift): an image that failed three
 * times does not heal by waiting. Rollbacks from before a lift no longer count.
 */
import type { Logger } from "../log.js";
import { RtmError } from "../model/errors.js";
import type { NewRuntimeEvent } from "../model/record.js";

/** What the planner reads of the fleet (planFleet.ts), kept beside Quarantine so plan.ts and planFleet.ts need not import each other. */
export interface FleetView {
  /** Active quarantines by image reference. */
  quarantined: ReadonlyMap<string, Quarantine>;
  /** RTMANAGER_PATCH_CANARIES; 0 turns canaries off. */
  canaries: number;
  /** Some game runs `imageRef` healthy with its gate closed: a canary passed (or the image was never new). */
  proven(imageRef: string): boolean;
  /** Games gating `imageRef` now: records with an open gate on it, and canaries started since the last record. */
  inFlight(imageRef: string): ReadonlySet<string>;
}

export interface Quarantine {
  imageRef: string;
  since: Date;
  /** Rollbacks counted when it was imposed. */
  rollbacks: number;
  /** The game whose rollback imposed it; its events carry `image_quarantined` and `image_quarantine_lifted`. */
  gameId: string;
  /** The games whose rollbacks counted. */
  games: string[];
}

/** What the store keeps (src/store/quarantineSql.ts implements it over both backends). */
export interface QuarantineStore {
  activeQuarantines(): Promise<Quarantine[]>;
  /** Rollbacks of patches to `imageRef` in the last `windowMs`, not counting those before its last lift. */
  recentRollbacks(imageRef: string, windowMs: number): Promise<{ count: number; games: string[] }>;
  /** Imposes it unless one is active; the active one either way. */
  imposeQuarantine(q: Quarantine): Promise<{ quarantine: Quarantine; created: boolean }>;
  /** Lifts the active one; null when there was none. */
  liftQuarantine(imageRef: string, liftedBy: string): Promise<Quarantine | null>;
}

export interface QuarantineSettings {
  /** RTMANAGER_QUARANTINE_AFTER: rollbacks to one image that quarantine it. */
  after: number;
  /** RTMANAGER_QUARANTINE_WINDOW. */
  windowMs: number;
}

export interface QuarantineDeps {
  store: QuarantineStore;
  settings: QuarantineSettings;
  /** Appends an event (unfenced: a lift comes from any replica). */
  appendEvent(event: NewRuntimeEvent): Promise<unknown>;
  logger: Logger;
  /** A quarantine was imposed (metrics). */
  onImposed?(q: Quarantine): void;
  /** The set changed (wakes games held on a lifted image). */
  onChange?(): void;
  now?: () => number;
}

/** How long the in-memory set serves the planner and /metrics before it is read again (lifts by another replica). */
export const QUARANTINE_CACHE_MS = 5_000;

/**
 * How long one count of an image's recent rollbacks answers every REST patch
 * to that image. A fleet patch sends the same image for every game at once:
 * counted per call, 1,000 patches were 1,000 scans of the last window's events.
 */
export const ROLLBACK_COUNT_SHARED_MS = 1_000;

export const LIFT_HINT = "lift it with `rtmctl quarantine lift <image>` (POST /api/v1/ext/quarantines/lift) once the image is fixed or known good";

/** The refusal every path answers with: the contract's container_start_failed, naming the quarantine. */
export function quarantineMessage(q: Quarantine): string {
  const games = q.games.length ? ` (games ${q.games.join(", ")})` : "";
  return `image ${q.imageRef} is quarantined since ${q.since.toISOString()}: ${q.rollbacks} patches to it were rolled back${games}; patches to it are refused until the quarantine is lifted: ${LIFT_HINT.replace("<image>", q.imageRef)}`;
}

export function quarantineError(q: Quarantine): RtmError {
  return new RtmError("container_start_failed", quarantineMessage(q), { quarantinedImageRef: q.imageRef });
}

export function isQuarantineRefusal(err: unknown): boolean {
  return err instanceof RtmError && err.code === "container_start_failed" && typeof err.details?.quarantinedImageRef === "string";
}

export class Quarantines {
  private active = new Map<string, Quarantine>();
  private loadedAt = -Infinity;
  private loading: Promise<void> | null = null;
  /** The latest count of each image's rollbacks (find), shared by the calls within ROLLBACK_COUNT_SHARED_MS. */
  private readonly counts = new Map<string, { at: number; found: Promise<Quarantine | null> }>();
  private readonly now: () => number;

  constructor(private readonly deps: QuarantineDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The active quarantines as last read: what the planner holds patches against. Reads again in the background when stale. */
  view(): ReadonlyMap<string, Quarantine> {
    if (this.now() - this.loadedAt >= QUARANTINE_CACHE_MS) void this.refresh().catch((err: unknown) => this.deps.logger.warn({ err }, "could not read the image quarantines"));
    return this.active;
  }

  /** Reads the table again (one read at a time). */
  refresh(): Promise<void> {
    this.loading ??= this.deps.store
      .activeQuarantines()
      .then((list) => {
        const before = [...this.active.keys()].sort().join(" ");
        this.active = new Map(list.map((q) => [q.imageRef, q]));
        if ([...this.active.keys()].sort().join(" ") !== before) this.deps.onChange?.();
      })
      .finally(() => {
        // A failed read is tried again after the same interval, not on every plan.
        this.loadedAt = this.now();
        this.loading = null;
      });
    return this.loading;
  }

  async list(): Promise<Quarantine[]> {
    await this.refresh();
    return [...this.active.values()].sort((a, b) => a.since.getTime() - b.since.getTime());
  }

  /**
   * The quarantine of `imageRef`, if any, read from the store: counted afresh
   * from the rollbacks, so one missed (a crash right after the third
   * rollback) is imposed here.
   */
  async find(imageRef: string): Promise<Quarantine | null> {
    await this.refresh();
    const active = this.active.get(imageRef);
    if (active) return active;
    const shared = this.counts.get(imageRef);
    if (shared && this.now() - shared.at < ROLLBACK_COUNT_SHARED_MS) return shared.found;
    for (const [image, c] of this.counts) if (this.now() - c.at >= ROLLBACK_COUNT_SHARED_MS) this.counts.delete(image);
    const found = this.countAndImpose(imageRef, null);
    this.counts.set(imageRef, { at: this.now(), found });
    // A failed count is not shared: the next call counts again.
    found.catch(() => this.counts.delete(imageRef));
    return found;
  }

  /** A patch to `imageRef` was rolled back on `gameId`: quarantine the image when that makes enough. */
  async noteRollback(imageRef: string, gameId: string): Promise<Quarantine | null> {
    this.counts.delete(imageRef);
    return this.countAndImpose(imageRef, gameId);
  }

  async lift(imageRef: string, liftedBy: string): Promise<Quarantine> {
    const q = await this.deps.store.liftQuarantine(imageRef, liftedBy);
    if (!q) throw new RtmError("not_found", `image ${imageRef} is not quarantined`);
    this.active.delete(imageRef);
    this.counts.delete(imageRef);
    this.deps.logger.warn({ imageRef, liftedBy, since: q.since }, "image quarantine lifted");
    await this.deps.appendEvent({ gameId: q.gameId, type: "image_quarantine_lifted", opId: null, data: { imageRef, liftedBy, since: q.since.toISOString() } });
    this.deps.onChange?.();
    return q;
  }

  private async countAndImpose(imageRef: string, gameId: string | null): Promise<Quarantine | null> {
    const { after, windowMs } = this.deps.settings;
    const { count, games } = await this.deps.store.recentRollbacks(imageRef, windowMs);
    if (count < after) return null;
    const trigger = gameId ?? games[games.length - 1] ?? "";
    const { quarantine, created } = await this.deps.store.imposeQuarantine({ imageRef, since: new Date(this.now()), rollbacks: count, gameId: trigger, games });
    this.active.set(imageRef, quarantine);
    if (created) {
      this.deps.logger.warn({ imageRef, rollbacks: count, games, windowMs }, "image quarantined: its patches keep rolling back");
      await this.deps.appendEvent({
        gameId: quarantine.gameId,
        type: "image_quarantined",
        opId: null,
        data: { imageRef, rollbacks: count, games, windowSeconds: Math.round(windowMs / 1000), message: quarantineMessage(quarantine) },
      });
      this.deps.onImposed?.(quarantine);
      this.deps.onChange?.();
    }
    return quarantine;
  }
}
