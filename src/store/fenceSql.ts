/**
 * The leader_epochs table: one row per installation, advanced by every new
 * leader before it acts, and checked by every write the loop makes.
 *
 * Why a row of its own and a check inside the write: the lease says who may
 * act, but a former leader that was paused (SIGSTOP, a long GC, a network
 * partition) can wake up and finish a write after a standby took the lease
 * over. One mechanism serves both modes: in store mode the lease is a SQL row,
 * in Kubernetes mode a coordination.k8s.io Lease while records live here, so
 * the epoch lives with the records either way and the manager advances it
 * when leading starts (src/controller/manager.ts).
 *
 * A fenced write is one statement whose WHERE carries `fenceGuard`: it reads
 * the epoch row `FOR SHARE` and writes only while the row still holds this
 * leader's epoch. `advance` updates that row, which takes a row lock
 * conflicting with FOR SHARE: a bump waits for every fenced write already past
 * its check to commit, and every fenced write that checks after the bump sees
 * the new epoch (PostgreSQL re-reads a row locked after a concurrent update
 * and re-checks `epoch = $n` on the new version). So once `advance` returns,
 * no write of an older term can land, and all of its earlier ones are visible
 * to the new leader's first read. The check costs no round trip of its own:
 * a fenced write is one statement, not BEGIN, check, write, COMMIT.
 */
import { FencedWriteError, type Fence } from "../model/fence.js";
import type { SqlQueryable, StoreLogger } from "./sqlClient.js";

export async function advanceEpoch(db: SqlQueryable, name: string, holder: string): Promise<Fence> {
  const { rows } = await db.query<{ epoch: string | number }>(
    `INSERT INTO leader_epochs AS e (name, epoch, holder, advanced_at) VALUES ($1, 1, $2, now())
     ON CONFLICT (name) DO UPDATE SET epoch = e.epoch + 1, holder = EXCLUDED.holder, advanced_at = now()
     RETURNING epoch`,
    [name, holder],
  );
  return { name, epoch: Number(rows[0]!.epoch) };
}

export async function currentEpoch(db: SqlQueryable, name: string): Promise<number | null> {
  const { rows } = await db.query<{ epoch: string | number }>("SELECT epoch FROM leader_epochs WHERE name = $1", [name]);
  return rows[0] ? Number(rows[0].epoch) : null;
}

/**
 * The condition that fences a statement: true while the fence named by the
 * parameters `$first` (name) and `$first+1` (epoch) is current, holding the
 * epoch row FOR SHARE until the statement's transaction ends (see above).
 */
export function fenceGuard(first: number): string {
  return `EXISTS (SELECT 1 FROM leader_epochs WHERE name = $${first}::text AND epoch = $${first + 1}::bigint FOR SHARE)`;
}

export function fenceParams(fence: Fence): [string, number] {
  return [fence.name, fence.epoch];
}

/**
 * A fenced statement wrote nothing: either a newer leader advanced the epoch
 * (rejects with FencedWriteError, logged) or the write matched no row (returns,
 * and the caller says what that means). The epoch only grows, so a stale
 * fence seen by the statement is still stale here.
 */
export async function refuseIfStale(db: SqlQueryable, fence: Fence, what: string, logger: StoreLogger): Promise<void> {
  const current = await currentEpoch(db, fence.name);
  if (current === fence.epoch) return;
  logger.warn({ write: what, fence: fence.name, epoch: fence.epoch, currentEpoch: current }, "fenced write refused: a newer leader has taken over");
  throw new FencedWriteError(what, fence, current);
}
