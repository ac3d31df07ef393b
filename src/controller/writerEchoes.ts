/**
 * A writer in this process (a REST patch) wakes its game's key itself, in the
 * lane it chooses (the rollout lane), right after its write. The declaration
 * watch then reports the same write (a PostgreSQL NOTIFY, a GameRuntime watch
 * event), and a plain report would move the key up to the high lane, in
 * front of fresh starts: every patch of a fleet would wait there for a first
 * reconcile that only defers it (1,000 patch keys ahead of a start sent a
 * second after them, in the bench). So for a short while after the write the
 * watch's report of that game is queued in the writer's lane instead. Nothing
 * is dropped: if the report was another writer's change after all, it is
 * still reconciled, from the lower lane.
 */
import type { Lane } from "./queue.js";

export const ECHO_WINDOW_MS = 2_000;
const SWEEP_AT = 1_024;

export class WriterEchoes {
  private readonly expected = new Map<string, { lane: Lane; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** This process wrote a change of the game's declaration and queued the game itself in `lane`. */
  expect(gameId: string, lane: Lane): void {
    if (this.expected.size >= SWEEP_AT) this.sweep();
    this.expected.set(gameId, { lane, until: this.now() + ECHO_WINDOW_MS });
  }

  /** The lane for the declaration watch's report of the game: the writer's within the window, once; else high. */
  laneFor(gameId: string): Lane {
    const e = this.expected.get(gameId);
    if (!e) return "high";
    this.expected.delete(gameId);
    return e.until >= this.now() ? e.lane : "high";
  }

  private sweep(): void {
    const now = this.now();
    for (const [gameId, e] of this.expected) if (e.until < now) this.expected.delete(gameId);
  }
}
