/** The append-mostly tables: operation_log and runtime_events. */
import { RtmError } from "../model/errors.js";
import type { EventQuery } from "../model/ports.js";
import {
  OPERATION_LIST_DEFAULT_LIMIT,
  type NewOperation,
  type NewRuntimeEvent,
  type OperationEntry,
  type OperationResult,
  type RuntimeEvent,
} from "../model/record.js";
import { dateColumn, mapRow, nullableText, type ColumnKind } from "./columns.js";
import type { Row, SqlClient, SqlQueryable } from "./sqlClient.js";

export const DEFAULT_EVENT_LIMIT = 1000;
export const INTERRUPTED_MESSAGE = "controller stopped before the operation finished";

/**
 * Held by every event insert until commit, so seq values become visible in
 * seq order: a reader that saw seq N can never later find N-1 appear.
 */
const EVENTS_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('rtmanager:events'))`;

const OPERATION_FIELDS: { [K in keyof OperationEntry]-?: ColumnKind } = {
  id: "bigint",
  opId: "text",
  gameId: "text",
  kind: "text",
  opSource: "text",
  imageRef: "text",
  generation: "bigint",
  outcome: "text",
  errorCode: "text",
  message: "text",
  stopReason: "text",
  startedAt: "timestamptz",
  finishedAt: "timestamptz",
};

const toOperation = (row: Row): OperationEntry => mapRow<OperationEntry>(OPERATION_FIELDS, row);

function toEvent(row: Row): RuntimeEvent {
  return {
    seq: Number(row.seq),
    gameId: String(row.game_id),
    type: row.type as RuntimeEvent["type"],
    at: dateColumn(row.at),
    opId: nullableText(row.op_id),
    data: (row.data ?? {}) as Record<string, unknown>,
  };
}

// ----------------------------------------------------------- operation log

export async function startOperation(db: SqlQueryable, op: NewOperation): Promise<number> {
  const { rows } = await db.query<{ id: string | number }>(
    `INSERT INTO operation_log
       (op_id, game_id, kind, op_source, image_ref, generation, outcome, error_code, message, stop_reason, started_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6::bigint, $7, $8, $9, $10, $11::timestamptz, $12::timestamptz)
     RETURNING id`,
    [
      op.opId,
      op.gameId,
      op.kind,
      op.opSource,
      op.imageRef,
      op.generation,
      op.outcome ?? "running",
      op.errorCode,
      op.message,
      op.stopReason,
      op.startedAt,
      op.finishedAt ?? null,
    ],
  );
  return Number(rows[0]!.id);
}

export async function finishOperation(db: SqlQueryable, id: number, result: OperationResult): Promise<void> {
  const { rows } = await db.query(
    `UPDATE operation_log
        SET outcome = $2, error_code = $3, message = $4, finished_at = $5::timestamptz,
            image_ref = CASE WHEN $6::boolean THEN $7::text ELSE image_ref END
      WHERE id = $1
      RETURNING id`,
    [id, result.outcome, result.errorCode, result.message, result.finishedAt, result.imageRef !== undefined, result.imageRef ?? null],
  );
  if (rows.length === 0) throw new RtmError("not_found", `operation ${id} is not in the operation log`);
}

/** Newest first. */
export async function listOperations(db: SqlQueryable, gameId: string, limit = OPERATION_LIST_DEFAULT_LIMIT): Promise<OperationEntry[]> {
  const { rows } = await db.query<Row>("SELECT * FROM operation_log WHERE game_id = $1 ORDER BY id DESC LIMIT $2", [gameId, limit]);
  return rows.map(toOperation);
}

/** Every `running` row is taken for dead: see SqlStore.markInterruptedOperations. */
export async function markInterruptedOperations(db: SqlQueryable): Promise<OperationEntry[]> {
  const { rows } = await db.query<Row>(
    `UPDATE operation_log SET outcome = 'interrupted', finished_at = now(), message = $1
      WHERE outcome = 'running'
      RETURNING *`,
    [INTERRUPTED_MESSAGE],
  );
  return rows.map(toOperation).sort((a, b) => a.id - b.id);
}

/** Rows one retention statement deletes at most: a short lock, whatever the backlog. */
export const PRUNE_BATCH_DEFAULT = 1000;

/**
 * One batch of retention: at most `limit` finished operations started before
 * `olderThan`, oldest first. A `running` row is never deleted (the outer
 * condition is re-checked on the row the DELETE locks, so a row cannot slip
 * through between the subquery and the delete). Returns the rows deleted; fewer
 * than `limit` means nothing older is left.
 */
export async function pruneOperations(db: SqlQueryable, olderThan: Date, limit = PRUNE_BATCH_DEFAULT): Promise<number> {
  const { rows } = await db.query(
    `DELETE FROM operation_log
      WHERE id IN (SELECT id FROM operation_log
                    WHERE started_at < $1::timestamptz AND outcome <> 'running'
                    ORDER BY id
                    LIMIT $2)
        AND outcome <> 'running'
      RETURNING id`,
    [olderThan, limit],
  );
  return rows.length;
}

// ------------------------------------------------------------------ events

export async function appendEvent(db: SqlClient, event: NewRuntimeEvent): Promise<RuntimeEvent> {
  return db.transaction((tx) => insertEvent(tx, event));
}

/** The insert of appendEvent, inside a transaction the caller opened (a fenced write opens its own). */
export async function insertEvent(tx: SqlQueryable, event: NewRuntimeEvent): Promise<RuntimeEvent> {
  await tx.query(EVENTS_LOCK_SQL);
  const { rows } = await tx.query<Row>(
    `INSERT INTO runtime_events (game_id, type, at, op_id, data)
     VALUES ($1, $2, COALESCE($3::timestamptz, now()), $4, $5::jsonb)
     RETURNING *`,
    [event.gameId, event.type, event.at ?? null, event.opId, JSON.stringify(event.data ?? {})],
  );
  return toEvent(rows[0]!);
}

export async function eventsAfter(db: SqlQueryable, seq: number, query: EventQuery = {}): Promise<RuntimeEvent[]> {
  const { rows } = await db.query<Row>(
    `SELECT * FROM runtime_events
      WHERE seq > $1::bigint AND ($2::text IS NULL OR game_id = $2::text)
      ORDER BY seq
      LIMIT $3`,
    [seq, query.gameId ?? null, query.limit ?? DEFAULT_EVENT_LIMIT],
  );
  return rows.map(toEvent);
}

export async function eventBounds(db: SqlQueryable): Promise<{ oldest: number | null; latest: number | null }> {
  const { rows } = await db.query<{ oldest: unknown; latest: unknown }>("SELECT min(seq) AS oldest, max(seq) AS latest FROM runtime_events");
  const row = rows[0];
  return {
    oldest: row?.oldest == null ? null : Number(row.oldest),
    latest: row?.latest == null ? null : Number(row.latest),
  };
}

/**
 * One batch of event retention: at most `limit` events, and only a prefix of
 * the log in `seq` order. Of the `limit` oldest events it deletes those before
 * the first one at or after `olderThan`, and never the newest event of all.
 * So the stored events stay one unbroken run of seq values (an event written
 * with an older `at` than its predecessor cannot leave a hole a resuming
 * reader would skip silently), and eventBounds() never comes back empty after
 * pruning: a cursor below the oldest kept event is always reported as
 * `cursor_expired` on the event stream. Returns the events deleted; fewer than
 * `limit` means nothing older is left.
 */
export async function pruneEvents(db: SqlQueryable, olderThan: Date, limit = PRUNE_BATCH_DEFAULT): Promise<number> {
  const { rows } = await db.query(
    `WITH head AS (SELECT seq, at FROM runtime_events ORDER BY seq LIMIT $2),
          keep_from AS (SELECT COALESCE((SELECT min(seq) FROM head WHERE at >= $1::timestamptz),
                                        (SELECT max(seq) FROM runtime_events)) AS seq)
     DELETE FROM runtime_events
      WHERE seq IN (SELECT seq FROM head)
        AND seq < (SELECT seq FROM keep_from)
      RETURNING seq`,
    [olderThan, limit],
  );
  return rows.length;
}
