/**
 * The trace a REST call carried (W3C traceparent, src/http/traceparent.ts),
 * kept by op id so every operation-log row of that op, whoever writes it and
 * whenever (the REST replica's own refusal rows, the leader's reconcile and
 * gate rows, after a failover too), is stamped with it at insert.
 *
 * Keyed by op id rather than carried in the declaration: the op id already
 * travels from the REST call through the declaration (a column, or a
 * GameRuntime annotation) to the loop, so the trace needs no new path
 * through the controller.
 */
import type { SqlQueryable } from "./sqlClient.js";

/** A Migration (migrations.ts), typed where MIGRATIONS lists it: this file is imported by migrations.ts, not the reverse. */
export const TRACE_MIGRATION = {
  version: 7,
  name: "W3C traceparent of the REST call behind an operation-log row",
  sql: `
ALTER TABLE operation_log ADD COLUMN trace_parent text NULL;
CREATE TABLE operation_traces (
  op_id text PRIMARY KEY,
  trace_parent text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operation_traces_recorded_at_idx ON operation_traces (recorded_at);
`,
};

/** The value the operation-log insert takes for trace_parent, given the op id as `$param`. */
export const traceOfOpSql = (param: string): string => `(SELECT trace_parent FROM operation_traces WHERE op_id = ${param})`;

/** A retried call with the same op id and a new trace: the newest trace wins for rows written from now on. */
export async function recordTrace(db: SqlQueryable, opId: string, traceParent: string): Promise<void> {
  await db.query(
    `INSERT INTO operation_traces (op_id, trace_parent) VALUES ($1, $2)
     ON CONFLICT (op_id) DO UPDATE SET trace_parent = EXCLUDED.trace_parent, recorded_at = now()`,
    [opId, traceParent],
  );
}

/** Traces recorded before `olderThan`, at most `limit`: pruned with the operation log they annotate. */
export async function pruneTraces(db: SqlQueryable, olderThan: Date, limit: number): Promise<number> {
  const { rows } = await db.query(
    `DELETE FROM operation_traces
      WHERE op_id IN (SELECT op_id FROM operation_traces WHERE recorded_at < $1::timestamptz ORDER BY recorded_at LIMIT $2)
      RETURNING op_id`,
    [olderThan, limit],
  );
  return rows.length;
}
