/** The runtime_records table: observed state, one row per game. */
import { toSnakeCase } from "../model/declaration.js";
import type { Fence } from "../model/fence.js";
import type { RuntimeRecord } from "../model/record.js";
import { mapRow, type ColumnKind } from "./columns.js";
import { fenceGuard, fenceParams } from "./fenceSql.js";
import type { Row, SqlQueryable } from "./sqlClient.js";

/** Every RuntimeRecord field and its column kind; the mapped type keeps it complete. */
const RECORD_FIELDS: { [K in keyof RuntimeRecord]-?: ColumnKind } = {
  gameId: "text",
  status: "text",
  currentContainerId: "text",
  currentImageRef: "text",
  engineEndpoint: "text",
  statePath: "text",
  dockerNetwork: "text",
  startedAt: "timestamptz",
  stoppedAt: "timestamptz",
  removedAt: "timestamptz",
  lastOpAt: "timestamptz",
  createdAt: "timestamptz",
  observedGeneration: "bigint",
  restartCount: "integer",
  lastExitCode: "integer",
  lastErrorCode: "text",
  lastErrorMessage: "text",
  lastErrorGeneration: "bigint",
  health: "text",
  consecutiveProbeFailures: "integer",
  lastProbeAt: "timestamptz",
  previousImageRef: "text",
  rolloutStartedAt: "timestamptz",
  degraded: "boolean",
  heldGeneration: "bigint",
  lostNode: "text",
  lostNodeSince: "timestamptz",
  updatedAt: "timestamptz",
};

const RECORD_KEYS = Object.keys(RECORD_FIELDS) as (keyof RuntimeRecord)[];
const RECORD_COLUMNS = RECORD_KEYS.map(toSnakeCase);

/**
 * The upsert of one record from the parameters starting at `$first` (in
 * RECORD_KEYS order), written only when `guard` holds (a fence, or a gate in a
 * larger statement). Returns the game id of a row written.
 */
export function upsertRecordSql(first: number, guard: string): string {
  return `INSERT INTO runtime_records (${RECORD_COLUMNS.join(", ")})
  SELECT ${RECORD_KEYS.map((k, i) => `$${first + i}::${RECORD_FIELDS[k]}`).join(", ")}
   WHERE ${guard}
  ON CONFLICT (game_id) DO UPDATE SET ${RECORD_COLUMNS.filter((c) => c !== "game_id")
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(", ")}
  RETURNING game_id`;
}

export const recordParams = (record: RuntimeRecord): unknown[] => RECORD_KEYS.map((k) => record[k] ?? null);

const UPSERT_RECORD_SQL = upsertRecordSql(1, "true");
const FENCED_UPSERT_RECORD_SQL = upsertRecordSql(1, fenceGuard(RECORD_KEYS.length + 1));

const toRecord = (row: Row): RuntimeRecord => mapRow<RuntimeRecord>(RECORD_FIELDS, row);

export async function getRecord(db: SqlQueryable, gameId: string): Promise<RuntimeRecord | null> {
  const { rows } = await db.query<Row>("SELECT * FROM runtime_records WHERE game_id = $1", [gameId]);
  return rows[0] ? toRecord(rows[0]) : null;
}

export async function listRecords(db: SqlQueryable): Promise<RuntimeRecord[]> {
  const { rows } = await db.query<Row>("SELECT * FROM runtime_records ORDER BY game_id");
  return rows.map(toRecord);
}

/** False when the fence refused it (nothing was written). */
export async function putRecord(db: SqlQueryable, record: RuntimeRecord, fence?: Fence): Promise<boolean> {
  const { rows } = fence
    ? await db.query(FENCED_UPSERT_RECORD_SQL, [...recordParams(record), ...fenceParams(fence)])
    : await db.query(UPSERT_RECORD_SQL, recordParams(record));
  return rows.length > 0;
}

export async function deleteRecord(db: SqlQueryable, gameId: string): Promise<boolean> {
  const { rows } = await db.query("DELETE FROM runtime_records WHERE game_id = $1 RETURNING game_id", [gameId]);
  return rows.length > 0;
}
