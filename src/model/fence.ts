/**
 * Fencing of a former leader's store writes. Leadership (a SQL lease row or a
 * Kubernetes Lease) only tells a replica when it may act; it cannot stop a
 * process that was paused, partitioned or slow from finishing a write after
 * its term ended. So every new leader first advances an epoch kept in the SQL
 * store (one row per installation), and every write the loop makes carries the
 * epoch its leader got: the store refuses a write whose epoch is no longer the
 * current one, in the same transaction as the write (see src/store/fenceSql.ts).
 */
import { RtmError } from "./errors.js";

/** One leader's term: the installation's fencing row and the epoch this leader advanced it to. */
export interface Fence {
  name: string;
  epoch: number;
}

/** Advances the installation's epoch; called by every new leader before it acts. */
export interface LeaderFencing {
  advance(holder: string): Promise<Fence>;
}

/** A write carrying a stale epoch: a newer leader has taken over, and nothing was written. */
export class FencedWriteError extends RtmError {
  constructor(
    readonly write: string,
    readonly fence: Fence,
    readonly currentEpoch: number | null,
  ) {
    super(
      "service_unavailable",
      `${write} refused: this replica's leader epoch ${fence.epoch} is no longer current (now ${currentEpoch ?? "none"}); a newer leader has taken over`,
      { fence: fence.name, epoch: fence.epoch, currentEpoch },
    );
  }
}

export function isFencedWrite(err: unknown): err is FencedWriteError {
  return err instanceof FencedWriteError;
}
