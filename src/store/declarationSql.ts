/** The declarations table: desired state, one row per game, spec columns derived from the model. */
import { checkedSpecFor, describeZodError, RuntimeSpecSchema, SPEC_KEYS, toSnakeCase, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import type { DeclarationMutator, WriteMeta } from "../model/ports.js";
import { OP_SOURCES, type OpSource } from "../model/status.js";
import { dateColumn, nullableText } from "./columns.js";
import { ownerConflictOf } from "./ownerSql.js";
import { DECLARATION_SPEC_COLUMN_TYPES, DECLARATION_SPEC_COLUMNS } from "./tables.js";
import type { Row, SqlClient, SqlQueryable } from "./sqlClient.js";

/** First key of the two-key advisory locks taken per game ("RTM\x01"). */
const GAME_LOCK_NAMESPACE = 0x52544d01;

function isOpSource(value: unknown): value is OpSource {
  return typeof value === "string" && (OP_SOURCES as readonly string[]).includes(value);
}

/** Parses a declarations row; a row that plain SQL let through but the schema refuses is start_config_invalid. */
function toDeclaration(row: Row): Declaration {
  const candidate: Record<string, unknown> = {};
  for (const key of SPEC_KEYS) {
    const value = row[toSnakeCase(key)];
    // SQL NULL means "not set": the schema's optional fields take undefined, not null.
    if (value !== null && value !== undefined) candidate[key] = value;
  }
  const parsed = RuntimeSpecSchema.safeParse(candidate);
  if (!parsed.success) {
    const gameId = String(row.game_id);
    throw new RtmError(
      "start_config_invalid",
      `stored declaration of game ${JSON.stringify(gameId)} does not pass the schema: ${describeZodError(parsed.error)}`,
      { gameId, issues: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })) },
    );
  }
  return {
    ...parsed.data,
    generation: Number(row.generation),
    opId: nullableText(row.op_id),
    opSource: isOpSource(row.op_source) ? row.op_source : null,
    createdAt: dateColumn(row.created_at),
    updatedAt: dateColumn(row.updated_at),
  };
}

function specValues(spec: RuntimeSpec): unknown[] {
  return SPEC_KEYS.map((key) => {
    const value = spec[key];
    if (value === undefined || value === null) return null;
    // Passed as text and cast, so both drivers store exactly this JSON.
    return DECLARATION_SPEC_COLUMN_TYPES[key] === "jsonb" ? JSON.stringify(value) : value;
  });
}

/** `$offset::type, ...` for the spec columns, in SPEC_KEYS order. */
const specParams = (offset: number): string[] => SPEC_KEYS.map((key, i) => `$${i + offset}::${DECLARATION_SPEC_COLUMN_TYPES[key]}`);

function assertGameId(gameId: string): void {
  const parsed = GameIdSchema.safeParse(gameId);
  if (!parsed.success) {
    const shown = gameId.length > 70 ? `${JSON.stringify(gameId.slice(0, 64))}...` : JSON.stringify(gameId);
    throw new RtmError("invalid_request", `gameId ${shown}: ${parsed.error.issues.map((i) => i.message).join("; ")}`, { gameId });
  }
}

export async function getDeclaration(db: SqlQueryable, gameId: string): Promise<Declaration | null> {
  const { rows } = await db.query<Row>("SELECT * FROM declarations WHERE game_id = $1", [gameId]);
  return rows[0] ? toDeclaration(rows[0]) : null;
}

export async function listGameIds(db: SqlQueryable): Promise<string[]> {
  const { rows } = await db.query<{ game_id: string }>("SELECT game_id FROM declarations ORDER BY game_id");
  return rows.map((r) => r.game_id);
}

export async function listGenerations(db: SqlQueryable): Promise<Map<string, number>> {
  const { rows } = await db.query<{ game_id: string; generation: string | number }>("SELECT game_id, generation FROM declarations");
  return new Map(rows.map((r) => [r.game_id, Number(r.generation)]));
}

/** Every declaration; a row the schema refuses maps to its start_config_invalid error. */
export async function listDeclarations(db: SqlQueryable): Promise<Map<string, Declaration | RtmError>> {
  const { rows } = await db.query<Row>("SELECT * FROM declarations");
  const out = new Map<string, Declaration | RtmError>();
  for (const row of rows) {
    try {
      out.set(String(row.game_id), toDeclaration(row));
    } catch (err) {
      if (!(err instanceof RtmError)) throw err;
      out.set(String(row.game_id), err);
    }
  }
  return out;
}

export async function deleteDeclaration(db: SqlQueryable, gameId: string): Promise<boolean> {
  const { rows } = await db.query("DELETE FROM declarations WHERE game_id = $1 RETURNING game_id", [gameId]);
  return rows.length > 0;
}

/** See SqlStore.mutate. */
export async function mutateDeclaration(
  db: SqlClient,
  gameId: string,
  mutate: DeclarationMutator,
  meta: WriteMeta,
): Promise<{ declaration: Declaration | null; changed: boolean }> {
  assertGameId(gameId);
  return db.transaction(async (tx) => {
    // The advisory lock serialises API writers even while the row does not
    // exist yet; FOR UPDATE also holds off plain SQL writers of an existing
    // row between the read and the write.
    await tx.query("SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))", [GAME_LOCK_NAMESPACE, gameId]);
    const { rows } = await tx.query<Row>("SELECT * FROM declarations WHERE game_id = $1 FOR UPDATE", [gameId]);
    const current = rows[0] ? toDeclaration(rows[0]) : null;
    const next = mutate(current);
    if (next === null) return { declaration: current, changed: false };
    const values = specValues(checkedSpecFor(gameId, next));
    const written = current ? await updateSpec(tx, gameId, values, meta) : await insertSpec(tx, gameId, values, meta);
    return written ? { declaration: written, changed: true } : { declaration: current, changed: false };
  });
}

async function insertSpec(tx: SqlQueryable, gameId: string, values: unknown[], meta: WriteMeta): Promise<Declaration> {
  const n = DECLARATION_SPEC_COLUMNS.length;
  // The insert trigger claims the game id (ownerSql.ts); a GameRuntime's id is refused as a conflict.
  const { rows } = await tx
    .query<Row>(
      `INSERT INTO declarations (${DECLARATION_SPEC_COLUMNS.join(", ")}, op_id, op_source)
     VALUES (${specParams(1).join(", ")}, $${n + 1}, $${n + 2})
     ON CONFLICT (game_id) DO NOTHING
     RETURNING *`,
      [...values, meta.opId, meta.opSource],
    )
    .catch((err: unknown) => {
      throw ownerConflictOf(err);
    });
  // Only plain SQL can get here: it inserted between our read and write.
  if (!rows[0]) throw new RtmError("conflict", `declaration of game ${gameId} was created concurrently; retry`);
  return toDeclaration(rows[0]);
}

/**
 * The WHERE makes a same-spec write no write at all: no generation bump (the
 * trigger would agree), no notification, and the previous writer's op id
 * stays, since this caller changed nothing. Null then.
 */
async function updateSpec(tx: SqlQueryable, gameId: string, values: unknown[], meta: WriteMeta): Promise<Declaration | null> {
  const n = DECLARATION_SPEC_COLUMNS.length;
  const sets = DECLARATION_SPEC_COLUMNS.map((c, i) => `${c} = $${i + 2}::${DECLARATION_SPEC_COLUMN_TYPES[SPEC_KEYS[i]!]}`);
  const { rows } = await tx.query<Row>(
    `UPDATE declarations SET ${sets.join(", ")}, op_id = $${n + 2}, op_source = $${n + 3}
      WHERE game_id = $1 AND (${DECLARATION_SPEC_COLUMNS.join(", ")}) IS DISTINCT FROM (${specParams(2).join(", ")})
      RETURNING *`,
    [gameId, ...values, meta.opId, meta.opSource],
  );
  return rows[0] ? toDeclaration(rows[0]) : null;
}
