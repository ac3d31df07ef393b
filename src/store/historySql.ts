/** The append-mostly tables: operation_log and runtime_events. */
import { RtmError } from "../model/errors.js";
import type { Fence } from "../model/fence.js";
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
import { fenceGuard, fenceParams } from "./fenceSql.js";
import type { Row, SqlQueryable } from "./sqlClient.js";
import { pruneTraces, traceOfOpSql } from "./traceSql.js";

export const DEFAULT_EVENT_LIMIT = 1000;
export const INTERRUPTED_MESSAGE = "controller stopped before the operation finished";

/**
 * Taken by every event insert before its seq is drawn and held until commit,
 * so seq values become visible in seq order: a reader that saw seq N can never
 * later find N-1 appear. A FROM item of the insert itself, so the lock costs
 * no statement of its own.
 */
export const EVENTS_LOCK_FROM = `(SELECT pg_advisory_xact_lock(hashtext('rtmanager:events'))) AS events_lock`;

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
  traceParent: "text",
};

const toOperation = (row: Row): OperationEntry => mapRow<OperationEntry>(OPERATION_FIELDS, row);

export function toEvent(row: Row): RuntimeEvent {
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

const OPERATION_PARAMS = 12;
const insertOperationSql = (guard: string) => `INSERT INTO operation_log
       (op_id, game_id, kind, op_source, image_ref, generation, outcome, error_code, message, stop_reason, started_at, finished_at, trace_parent)
     SELECT $1, $2, $3, $4, $5, $6::bigint, $7, $8, $9, $10, $11::timestamptz, $12::timestamptz, ${traceOfOpSql("$1")}
      WHERE ${guard}
     RETURNING id`;
const INSERT_OPERATION_SQL = insertOperationSql("true");
const FENCED_INSERT_OPERATION_SQL = insertOperationSql(fenceGuard(OPERATION_PARAMS + 1));

/** The new row's id, or null when the fence refused it. */
export async function startOperation(db: SqlQueryable, op: NewOperation, fence?: Fence): Promise<number | null> {
  const params = [
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
  ];
  const { rows } = fence
    ? await db.query<{ id: string | number }>(FENCED_INSERT_OPERATION_SQL, [...params, ...fenceParams(fence)])
    : await db.query<{ id: string | number }>(INSERT_OPERATION_SQL, params);
  return rows[0] ? Number(rows[0].id) : null;
}

/** The end of an operation-log row `$first` ... `$first+6`, as one UPDATE under `guard`; RETURNING id. */
export function finishOperationSql(first: number, guard: string): string {
  const p = (i: number) => `$${first + i}`;
  return `UPDATE operation_log
        SET outcome = ${p(1)}, error_code = ${p(2)}, message = ${p(3)}, finished_at = ${p(4)}::timestamptz,
            image_ref = CASE WHEN ${p(5)}::boolean THEN ${p(6)}::text ELSE image_ref END
      WHERE id = ${p(0)}::bigint AND ${guard}
      RETURNING id`;
}

export const finishOperationParams = (id: number, result: OperationResult): unknown[] => [
  id,
  result.outcome,
  result.errorCode,
  result.message,
  result.finishedAt,
  result.imageRef !== undefined,
  result.imageRef ?? null,
];

const FINISH_OPERATION_SQL = finishOperationSql(1, "true");
const FENCED_FINISH_OPERATION_SQL = finishOperationSql(1, fenceGuard(8));

/** False when nothing was updated: no such row, or the fence refused it (the caller tells which). */
export async function finishOperation(db: SqlQueryable, id: number, result: OperationResult, fence?: Fence): Promise<boolean> {
  const params = finishOperationParams(id, result);
  const { rows } = fence ? await db.query(FENCED_FINISH_OPERATION_SQL, [...params, ...fenceParams(fence)]) : await db.query(FINISH_OPERATION_SQL, params);
  return rows.length > 0;
}

export function operationNotFound(id: number): RtmError {
  return new RtmError("not_found", `operation ${id} is not in the operation log`);
}

/** Newest first. */
export async function listOperations(db: SqlQueryable, gameId: string, limit = OPERATION_LIST_DEFAULT_LIMIT): Promise<OperationEntry[]> {
  const { rows } = await db.query<Row>("SELECT * FROM operation_log WHERE game_id = $1 ORDER BY id DESC LIMIT $2", [gameId, limit]);
  return rows.map(toOperation);
}

/** Every `running` row is taken for dead: see SqlStore.markInterruptedOperations. Under a fence, empty when it refused. */
export async function markInterruptedOperations(db: SqlQueryable, fence?: Fence): Promise<OperationEntry[]> {
  const { rows } = await db.query<Row>(
    `UPDATE operation_log SET outcome = 'interrupted', finished_at = now(), message = $1
      WHERE outcome = 'running' AND ${fence ? fenceGuard(2) : "true"}
      RETURNING *`,
    fence ? [INTERRUPTED_MESSAGE, ...fenceParams(fence)] : [INTERRUPTED_MESSAGE],
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
  // Traces are kept as long as the rows they annotate, batch for batch.
  await pruneTraces(db, olderThan, limit);
  return rows.length;
}

// ------------------------------------------------------------------ events

const insertEventSql = (guard: string) => `INSERT INTO runtime_events (game_id, type, at, op_id, data)
     SELECT $1, $2, COALESCE($3::timestamptz, now()), $4, $5::jsonb
       FROM ${EVENTS_LOCK_FROM}
      WHERE ${guard}
     RETURNING *`;
const INSERT_EVENT_SQL = insertEventSql("true");
const FENCED_INSERT_EVENT_SQL = insertEventSql(fenceGuard(6));

/** One statement, lock included; null when the fence refused it. */
export async function appendEvent(db: SqlQueryable, event: NewRuntimeEvent, fence?: Fence): Promise<RuntimeEvent | null> {
  const params = [event.gameId, event.type, event.at ?? null, event.opId, JSON.stringify(event.data ?? {})];
  const { rows } = fence ? await db.query<Row>(FENCED_INSERT_EVENT_SQL, [...params, ...fenceParams(fence)]) : await db.query<Row>(INSERT_EVENT_SQL, params);
  return rows[0] ? toEvent(rows[0]) : null;
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
