/**
 * The leader_epochs table: one row per installation, advanced by every new
 * leader before it acts, and checked by every write the loop makes.
 *
 * Why a row of its own and a check in the write's transaction: the lease says
 * who may act, but a former leader that was paused (SIGSTOP, a long GC, a
 * network partition) can wake up and finish a write after a standby took the
 * lease over. One mechanism serves both modes: in store mode the lease is a
 * SQL row, in Kubernetes mode a coordination.k8s.io Lease while records live
 * here, so the epoch lives with the records either way and the manager
 * advances it when leading starts (src/controller/manager.ts).
 *
 * A fenced write reads the epoch row `FOR SHARE` in the same transaction and
 * writes only when it still holds this leader's epoch. `advance` updates that
 * row, which takes a row lock conflicting with FOR SHARE: a bump waits for
 * every fenced write already past its check to commit, and every fenced write
 * that checks after the bump sees the new epoch (PostgreSQL re-reads a
 * row locked after a concurrent update). So once `advance` returns, no write
 * of an older term can land, and all of its earlier ones are visible to the
 * new leader's first read.
 */
import { FencedWriteError, type Fence } from "../model/fence.js";
import type { SqlClient, SqlQueryable, StoreLogger } from "./sqlClient.js";

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
 * Runs `write` in a transaction that first checks `fence` (see above); a
 * stale epoch rolls it back, is logged, and rejects with FencedWriteError.
 */
export async function fencedWrite<T>(
  client: SqlClient,
  fence: Fence,
  what: string,
  logger: StoreLogger,
  write: (tx: SqlQueryable) => Promise<T>,
): Promise<T> {
  return client.transaction(async (tx) => {
    const { rows } = await tx.query<{ epoch: string | number }>("SELECT epoch FROM leader_epochs WHERE name = $1 FOR SHARE", [fence.name]);
    const current = rows[0] ? Number(rows[0].epoch) : null;
    if (current !== fence.epoch) {
      logger.warn({ write: what, fence: fence.name, epoch: fence.epoch, currentEpoch: current }, "fenced write refused: a newer leader has taken over");
      throw new FencedWriteError(what, fence, current);
    }
    return write(tx);
  });
}
