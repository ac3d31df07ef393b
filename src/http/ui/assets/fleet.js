// The fleet as the console knows it: every record from the event stream's
// snapshot, kept current by the events that follow. An event says which game
// changed, not how, so each changed game's record is fetched again, at most
// once per flush however many events it had (no polling loop per row).
import { api, fleetStreamPath } from "./api.js";
import { openStream } from "./sse.js";

const FLUSH_MS = 200;
/** Two record fetches at once: with the fleet's and a game's streams that leaves two of a browser's six connections per host for the views. */
const PARALLEL_FETCHES = 2;
/** Past this many changed games, one fresh snapshot is cheaper than fetching each (client-go's relist). */
const RELIST_ABOVE = 100;
const MAX_OUTCOMES = 200;
/** Events a rollout watcher wants to see as they happen. */
export const OUTCOME_TYPES = new Set(["patch_rolled_back", "rollback_failed", "image_updated", "image_quarantined", "image_quarantine_lifted", "crash_loop", "reconcile_failed"]);

export class Fleet {
  constructor() {
    /** gameId -> {record, lastEvent} */
    this.games = new Map();
    this.outcomes = [];
    this.listeners = new Set();
    this.dirty = new Set();
    this.timer = null;
    this.ready = false;
    this.cursor = null;
    this.state = "connecting";
    this.onFailed = null;
    this.onEvent = null;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  notify(kind) {
    for (const fn of this.listeners) fn(kind);
  }

  start(signal) {
    this.signal = signal;
    this.connect();
  }

  /** A stream of its own, so a relist can drop it without ending the session. */
  connect() {
    this.connection?.abort();
    const own = new AbortController();
    this.connection = own;
    const signal = AbortSignal.any([this.signal, own.signal]);
    this.relisting = true;
    openStream(
      fleetStreamPath(),
      {
        snapshot: (snap) => this.applySnapshot(snap),
        event: (evt) => this.applyEvent(evt),
        state: (state, detail) => {
          this.state = state;
          if (state === "failed") this.onFailed?.(detail);
          this.notify("state");
        },
      },
      signal,
    );
  }

  applySnapshot(snap) {
    // Marks for bench/console.ts: where the first render's time goes.
    performance.mark("rtm:snapshot");
    const seen = new Set();
    for (const r of snap.records) {
      seen.add(r.gameId);
      const g = this.games.get(r.gameId);
      if (g) g.record = r;
      else this.games.set(r.gameId, { record: r, lastEvent: null });
    }
    // The first snapshot and a relist's are the whole fleet; a resumed connection's is followed by what changed.
    if (this.relisting) for (const id of [...this.games.keys()]) if (!seen.has(id)) this.games.delete(id);
    this.relisting = false;
    this.ready = true;
    this.cursor = snap.cursor;
    this.notify("records");
  }

  applyEvent(evt) {
    this.cursor = evt.seq;
    const g = this.games.get(evt.gameId);
    if (g) g.lastEvent = evt;
    if (OUTCOME_TYPES.has(evt.type)) {
      this.outcomes.unshift(evt);
      if (this.outcomes.length > MAX_OUTCOMES) this.outcomes.length = MAX_OUTCOMES;
    }
    this.onEvent?.(evt);
    this.dirty.add(evt.gameId);
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  async flush() {
    const ids = [...this.dirty];
    this.dirty.clear();
    if (ids.length > RELIST_ABOVE) {
      this.timer = null;
      this.connect();
      return;
    }
    const work = ids.slice();
    const one = async () => {
      for (let id = work.shift(); id !== undefined; id = work.shift()) {
        try {
          const { data } = await api.runtime(id);
          if (data.record) {
            const g = this.games.get(id);
            if (g) g.record = data.record;
            else this.games.set(id, { record: data.record, lastEvent: null });
          }
        } catch (err) {
          if (err.status === 404) this.games.delete(id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_FETCHES, ids.length) }, one));
    this.timer = null;
    if (this.dirty.size > 0) this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
    this.notify("records");
  }

  counts() {
    const c = { total: 0, running: 0, stopped: 0, removed: 0, unhealthy: 0, degraded: 0, held: 0, gated: 0, lostNode: 0 };
    for (const { record: r } of this.games.values()) {
      c.total++;
      c[r.status] = (c[r.status] ?? 0) + 1;
      if (r.health === "unhealthy") c.unhealthy++;
      if (r.degraded) c.degraded++;
      if (r.heldGeneration !== null && r.heldGeneration !== undefined) c.held++;
      if (r.rolloutStartedAt) c.gated++;
      if (r.lostNode) c.lostNode++;
    }
    return c;
  }
}
