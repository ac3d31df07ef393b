/** The runtime_records table: observed state, one row per game. */
import { toSnakeCase } from "../model/declaration.js";
import type { RuntimeRecord } from "../model/record.js";
import { mapRow, type ColumnKind } from "./columns.js";
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
const UPSERT_RECORD_SQL = `INSERT INTO runtime_records (${RECORD_COLUMNS.join(", ")})
  VALUES (${RECORD_KEYS.map((k, i) => `$${i + 1}::${RECORD_FIELDS[k]}`).join(", ")})
  ON CONFLICT (game_id) DO UPDATE SET ${RECORD_COLUMNS.filter((c) => c !== "game_id")
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(", ")}`;

const toRecord = (row: Row): RuntimeRecord => mapRow<RuntimeRecord>(RECORD_FIELDS, row);

export async function getRecord(db: SqlQueryable, gameId: string): Promise<RuntimeRecord | null> {
  const { rows } = await db.query<Row>("SELECT * FROM runtime_records WHERE game_id = $1", [gameId]);
  return rows[0] ? toRecord(rows[0]) : null;
}

export async function listRecords(db: SqlQueryable): Promise<RuntimeRecord[]> {
  const { rows } = await db.query<Row>("SELECT * FROM runtime_records ORDER BY game_id");
  return rows.map(toRecord);
}

export async function putRecord(db: SqlQueryable, record: RuntimeRecord): Promise<void> {
  await db.query(
    UPSERT_RECORD_SQL,
    RECORD_KEYS.map((k) => record[k] ?? null),
  );
}

export async function deleteRecord(db: SqlQueryable, gameId: string): Promise<boolean> {
  const { rows } = await db.query("DELETE FROM runtime_records WHERE game_id = $1 RETURNING game_id", [gameId]);
  return rows.length > 0;
}
