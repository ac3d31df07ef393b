/**
 * An in-memory read model of the runtime records for the REST reads, so a
 * GET does not cost a database round trip. Records written by this process
 * arrive through `put`; a write anywhere (any replica, plain SQL) arrives as a
 * store notification and invalidates that game; a notification gap
 * invalidates everything. Reads after an invalidation go to the store.
 * Until the notifications are known to flow (`setLive(true)`, after the
 * record watch is up) and whenever they stop (the LISTEN connection lost),
 * every read goes to the store: a replica cut off from the database must not
 * answer from a memory that other replicas may have made stale.
 */
import type { StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";

const STALE_REREAD_LIMIT = 16;

export class RecordCache {
  private readonly records = new Map<string, RuntimeRecord>();
  /** Games whose cached value must be re-read before the next list. */
  private readonly stale = new Set<string>();
  private complete = false;
  /** Bumped by every change, so a read that raced one does not store what it read. */
  private epoch = 0;
  /**
   * The sorted list as last served: the same array until something changes,
   * so callers may memoise work on it (the HTTP layer keeps its JSON).
   */
  private sorted: RuntimeRecord[] | null = null;
  private live = false;

  constructor(private readonly state: Pick<StateStore, "getRecord" | "listRecords">) {}

  /** True once store notifications reach this cache; false while they may be missed. */
  setLive(live: boolean): void {
    this.invalidateAll();
    this.live = live;
  }

  put(record: RuntimeRecord): void {
    const cached = this.records.get(record.gameId);
    // A waiter may hand in what it read just before the loop's next write landed here.
    if (cached && cached.updatedAt > record.updatedAt) return;
    this.epoch++;
    this.sorted = null;
    this.records.set(record.gameId, record);
    this.stale.delete(record.gameId);
  }

  invalidate(gameId: string): void {
    this.epoch++;
    this.sorted = null;
    this.records.delete(gameId);
    if (this.complete) this.stale.add(gameId);
  }

  invalidateAll(): void {
    this.epoch++;
    this.sorted = null;
    this.records.clear();
    this.stale.clear();
    this.complete = false;
  }

  /** Same shape as StateStore.getRecord, so callers can take either. */
  getRecord(gameId: string): Promise<RuntimeRecord | null> {
    return this.get(gameId);
  }

  async get(gameId: string): Promise<RuntimeRecord | null> {
    if (!this.live) return this.state.getRecord(gameId);
    const hit = this.records.get(gameId);
    if (hit) return hit;
    const epoch = this.epoch;
    const record = await this.state.getRecord(gameId);
    if (record && epoch === this.epoch) {
      this.sorted = null;
      this.records.set(gameId, record);
      this.stale.delete(gameId);
    }
    return record;
  }

  async list(): Promise<RuntimeRecord[]> {
    if (!this.live) return this.state.listRecords();
    // Past a handful of changed games one query beats one query each.
    if (this.stale.size > STALE_REREAD_LIMIT) this.complete = false;
    if (!this.complete) {
      const epoch = this.epoch;
      const all = await this.state.listRecords();
      if (epoch !== this.epoch) return all;
      this.sorted = null;
      this.records.clear();
      for (const r of all) this.records.set(r.gameId, r);
      this.stale.clear();
      this.complete = true;
    }
    if (this.stale.size > 0) {
      const epoch = this.epoch;
      const ids = [...this.stale];
      const fresh = await Promise.all(ids.map((id) => this.state.getRecord(id)));
      if (epoch === this.epoch) {
        this.sorted = null;
        ids.forEach((id, i) => {
          const r = fresh[i];
          if (r) this.records.set(id, r);
          else this.records.delete(id);
          this.stale.delete(id);
        });
      } else {
        return this.state.listRecords();
      }
    }
    return this.sortedRecords();
  }

  /** The record when memory alone can answer; undefined means ask `get`. Never reads the store. */
  peek(gameId: string): RuntimeRecord | undefined {
    return this.live ? this.records.get(gameId) : undefined;
  }

  /** The sorted list when memory alone can answer; undefined means ask `list`. Never reads the store. */
  peekList(): RuntimeRecord[] | undefined {
    if (!this.live || !this.complete || this.stale.size > 0) return undefined;
    return this.sortedRecords();
  }

  private sortedRecords(): RuntimeRecord[] {
    this.sorted ??= [...this.records.values()].sort((a, b) => (a.gameId < b.gameId ? -1 : a.gameId > b.gameId ? 1 : 0));
    return this.sorted;
  }
}
