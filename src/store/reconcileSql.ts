/**
 * The end of one reconcile as one statement: its events, the end of its
 * operation-log row and its record, all or nothing (StateStore.commitReconcile).
 *
 * Data-modifying CTEs share one snapshot and one transaction, so the three
 * writes commit together and each is gated on the ones before it through their
 * RETURNING rows: the fence (the epoch row FOR SHARE, see fenceSql.ts) gates
 * the operation-log row, the row's update gates the events and the record. A
 * stale fence or a missing operation-log row therefore writes nothing, and the
 * caller learns which from the statement's `ok`. One round trip instead of
 * BEGIN, check, write, COMMIT for each of them.
 */
import type { Fence } from "../model/fence.js";
import type { ReconcileCommit } from "../model/ports.js";
import type { RuntimeEvent } from "../model/record.js";
import { EVENTS_LOCK_FROM, finishOperationParams, finishOperationSql, toEvent } from "./historySql.js";
import { recordParams, upsertRecordSql } from "./recordSql.js";
import type { Row, SqlQueryable } from "./sqlClient.js";

/** `ok` false: nothing was written, because the fence is stale or the operation-log row is missing. */
export async function commitReconcile(db: SqlQueryable, c: ReconcileCommit, fence?: Fence): Promise<{ ok: boolean; events: RuntimeEvent[] }> {
  const params: unknown[] = [];
  const param = (value: unknown, cast: string): string => {
    params.push(value);
    return `$${params.length}::${cast}`;
  };
  const ctes = [
    fence
      ? `fence AS (SELECT 1 FROM leader_epochs WHERE name = ${param(fence.name, "text")} AND epoch = ${param(fence.epoch, "bigint")} FOR SHARE)`
      : "fence AS (SELECT 1)",
  ];
  // The CTE whose row everything after it needs: the fence, then the operation-log row once it is updated.
  let gate = "fence";
  if (c.finishOperation) {
    const first = params.length + 1;
    params.push(...finishOperationParams(c.finishOperation.id, c.finishOperation.result));
    ctes.push(`op AS (${finishOperationSql(first, "EXISTS (SELECT 1 FROM fence)")})`);
    gate = "op";
  }
  if (c.events.length > 0) {
    const events = c.events.map((e) => ({ gameId: e.gameId, type: e.type, at: e.at ?? null, opId: e.opId, data: e.data ?? {} }));
    // The lock is a FROM item joined before the ORDER BY, so it is held before
    // the first seq is drawn (nextval runs in the insert's projection, above the sort).
    ctes.push(`ev AS (INSERT INTO runtime_events (game_id, type, at, op_id, data)
       SELECT e.value->>'gameId', e.value->>'type', COALESCE((e.value->>'at')::timestamptz, now()), e.value->>'opId', e.value->'data'
         FROM (SELECT 1 FROM ${gate}) AS gate, ${EVENTS_LOCK_FROM},
              jsonb_array_elements(${param(JSON.stringify(events), "jsonb")}) WITH ORDINALITY AS e(value, n)
        ORDER BY e.n
       RETURNING *)`);
  }
  if (c.record) {
    const first = params.length + 1;
    params.push(...recordParams(c.record));
    ctes.push(`rec AS (${upsertRecordSql(first, `EXISTS (SELECT 1 FROM ${gate})`)})`);
  }
  const eventsOut = c.events.length > 0 ? "(SELECT json_agg(ev ORDER BY ev.seq) FROM ev)" : "NULL::json";
  const { rows } = await db.query<{ ok: boolean; events: Row[] | null }>(
    `WITH ${ctes.join(",\n")}
     SELECT EXISTS (SELECT 1 FROM ${gate}) AS ok, ${eventsOut} AS events`,
    params,
  );
  const row = rows[0]!;
  return { ok: row.ok, events: (row.events ?? []).map(toEvent) };
}
