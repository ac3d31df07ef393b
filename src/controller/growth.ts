/**
 * Bounds on what REST callers can make the installation store (issue 21):
 * how many games it holds (RTMANAGER_MAX_GAMES), and how many operation-log
 * rows requests that change nothing may add (one per game, kind and code a
 * minute; a flood of replays otherwise grows the table without bound).
 */
import { RtmError } from "../model/errors.js";
import type { DeclarationSource, StateStore } from "../model/ports.js";

/**
 * A start of a game the installation does not know yet is refused with
 * `conflict` once it holds maxGames: the contract's "not allowed in the
 * current state", which a caller does not retry blindly as it would a 503;
 * it changes only when games are removed. Games already known (declared or
 * recorded) are never refused. Concurrent first starts may overshoot by at
 * most their number: the count is read, not locked.
 */
export async function admitNewGame(gameId: string, maxGames: number, source: Pick<DeclarationSource, "get" | "listGameIds">, state: Pick<StateStore, "getRecord" | "listRecords">): Promise<void> {
  const known = await Promise.all([source.get(gameId).catch(() => "invalid"), state.getRecord(gameId)]);
  if (known[0] !== null || known[1] !== null) return;
  const [declared, records] = await Promise.all([source.listGameIds(), state.listRecords()]);
  const games = new Set(declared);
  for (const r of records) games.add(r.gameId);
  if (games.size >= maxGames) {
    throw new RtmError("conflict", `this installation holds ${games.size} games, RTMANAGER_MAX_GAMES=${maxGames}; remove finished games (cleanup, then delete their declarations) before starting new ones`);
  }
}

/** Remembers what was logged lately; at most one row per key and window. */
export class LogThrottle {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when a row for `key` may be written now (and remembers that it was). */
  take(key: string): boolean {
    const now = this.now();
    const at = this.last.get(key);
    if (at !== undefined && now - at < this.windowMs) return false;
    this.last.set(key, now);
    if (this.last.size > 10_000) this.prune(now);
    return true;
  }

  private prune(now: number): void {
    for (const [key, at] of this.last) if (now - at >= this.windowMs) this.last.delete(key);
  }
}
