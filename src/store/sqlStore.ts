import { RuntimeSpecSchema, describeZodError, toSnakeCase, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import type {
  DeclarationMutator,
  DeclarationSource,
  DeclarationWatch,
  EventQuery,
  StateStore,
  WriteMeta,
} from "../model/ports.js";
import type {
  NewOperation,
  NewRuntimeEvent,
  OperationEntry,
  OperationResult,
  RuntimeEvent,
  RuntimeRecord,
} from "../model/record.js";
import { OP_SOURCES, type OpSource } from "../model/status.js";
import {
  DECLARATIONS_CHANNEL,
  DECLARATION_SPEC_COLUMN_TYPES,
  DECLARATION_SPEC_COLUMNS,
  DECLARATION_SPEC_KEYS,
  RECORDS_CHANNEL,
} from "./migrations.js";
import { SqlLease } from "./sqlLease.js";
import { silentLogger, type Row, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";

/** First key of the two-key advisory locks taken per game ("RTM\x01"). */
const GAME_LOCK_NAMESPACE = 0x52544d01;
/**
 * Held by every event insert until commit, so seq values become visible in
 * seq order: a reader that saw seq N can never later find N-1 appear.
 */
const EVENTS_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('rtmanager:events'))`;

export const DEFAULT_EVENT_LIMIT = 1000;
export const DEFAULT_OPERATION_LIMIT = 100;
export const INTERRUPTED_MESSAGE = "controller stopped before the operation finished";

export interface RecordWatch {
  onChange(gameId: string): void;
  onResync?(): void;
}

type ColumnKind = "text" | "bigint" | "integer" | "boolean" | "timestamptz";

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
  updatedAt: "timestamptz",
};

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

function fromColumn(kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    // node-postgres returns int8 as a string, PGlite as a number.
    case "bigint":
    case "integer":
      return Number(value);
    case "boolean":
      return Boolean(value);
    case "timestamptz":
      return value instanceof Date ? value : new Date(String(value));
    case "text":
      return String(value);
  }
}

/** Field, column and kind of each field map, computed once: mapRow is on every read's hot path. */
const columnPlans = new Map<Record<string, ColumnKind>, [string, string, ColumnKind][]>();

function mapRow<T>(fields: Record<string, ColumnKind>, row: Row): T {
  let plan = columnPlans.get(fields);
  if (!plan) {
    plan = Object.entries(fields).map(([key, kind]) => [key, toSnakeCase(key), kind]);
    columnPlans.set(fields, plan);
  }
  const out: Record<string, unknown> = {};
  for (const [key, column, kind] of plan) out[key] = fromColumn(kind, row[column]);
  return out as T;
}

const toRecord = (row: Row): RuntimeRecord => mapRow<RuntimeRecord>(RECORD_FIELDS, row);
const toOperation = (row: Row): OperationEntry => mapRow<OperationEntry>(OPERATION_FIELDS, row);

function toEvent(row: Row): RuntimeEvent {
  return {
    seq: Number(row.seq),
    gameId: String(row.game_id),
    type: row.type as RuntimeEvent["type"],
    at: fromColumn("timestamptz", row.at) as Date,
    opId: row.op_id == null ? null : String(row.op_id),
    data: (row.data ?? {}) as Record<string, unknown>,
  };
}

function isOpSource(value: unknown): value is OpSource {
  return typeof value === "string" && (OP_SOURCES as readonly string[]).includes(value);
}

/** Parses a declarations row; a row that plain SQL let through but the schema refuses is start_config_invalid. */
function toDeclaration(row: Row): Declaration {
  const candidate: Record<string, unknown> = {};
  for (const key of DECLARATION_SPEC_KEYS) {
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
    opId: row.op_id == null ? null : String(row.op_id),
    opSource: isOpSource(row.op_source) ? row.op_source : null,
    createdAt: fromColumn("timestamptz", row.created_at) as Date,
    updatedAt: fromColumn("timestamptz", row.updated_at) as Date,
  };
}

function specValues(spec: RuntimeSpec): unknown[] {
  return DECLARATION_SPEC_KEYS.map((key) => {
    const value = spec[key];
    if (value === undefined || value === null) return null;
    // Passed as text and cast, so both drivers store exactly this JSON.
    return DECLARATION_SPEC_COLUMN_TYPES[key] === "jsonb" ? JSON.stringify(value) : value;
  });
}

const specParams = (offset: number): string[] =>
  DECLARATION_SPEC_KEYS.map((key, i) => `$${i + offset}::${DECLARATION_SPEC_COLUMN_TYPES[key]}`);

function assertGameId(gameId: string): void {
  const parsed = GameIdSchema.safeParse(gameId);
  if (!parsed.success) {
    const shown = gameId.length > 70 ? `${JSON.stringify(gameId.slice(0, 64))}...` : JSON.stringify(gameId);
    throw new RtmError("invalid_request", `gameId ${shown}: ${parsed.error.issues.map((i) => i.message).join("; ")}`, { gameId });
  }
}

export interface SqlStoreOptions {
  logger?: StoreLogger;
}

/**
 * The SQL store over either backend: desired state (declarations), observed
 * state (records), the operation log, the event stream and leases.
 */
export class SqlStore implements StateStore, DeclarationSource {
  private readonly logger: StoreLogger;
  private closed = false;

  constructor(
    private readonly client: SqlClient,
    options: SqlStoreOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
  }

  /** The underlying client, for plain SQL (tests, admin tooling). */
  get sql(): SqlClient {
    return this.client;
  }

  get backend(): SqlClient["backend"] {
    return this.client.backend;
  }

  get description(): string {
    return this.client.description;
  }

  async ping(): Promise<void> {
    await this.client.query("SELECT 1");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
    this.logger.debug({ db: this.client.description }, "store closed");
  }

  // ------------------------------------------------------------ declarations

  async get(gameId: string): Promise<Declaration | null> {
    const { rows } = await this.client.query<Row>("SELECT * FROM declarations WHERE game_id = $1", [gameId]);
    return rows[0] ? toDeclaration(rows[0]) : null;
  }

  async listGameIds(): Promise<string[]> {
    const { rows } = await this.client.query<{ game_id: string }>("SELECT game_id FROM declarations ORDER BY game_id");
    return rows.map((r) => r.game_id);
  }

  async listGenerations(): Promise<Map<string, number>> {
    const { rows } = await this.client.query<{ game_id: string; generation: string | number }>("SELECT game_id, generation FROM declarations");
    return new Map(rows.map((r) => [r.game_id, Number(r.generation)]));
  }

  /**
   * A stored row the schema refuses makes this throw start_config_invalid
   * before `mutate` is called: the mutator's contract has no way to say
   * "replace whatever is there", so the row must be fixed where it was
   * written (plain SQL).
   */
  async mutate(
    gameId: string,
    mutate: DeclarationMutator,
    meta: WriteMeta,
  ): Promise<{ declaration: Declaration | null; changed: boolean }> {
    assertGameId(gameId);
    return this.client.transaction(async (tx) => {
      // The advisory lock serialises API writers even while the row does not
      // exist yet; FOR UPDATE also holds off plain SQL writers of an existing
      // row between the read and the write.
      await tx.query("SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))", [GAME_LOCK_NAMESPACE, gameId]);
      const { rows } = await tx.query<Row>("SELECT * FROM declarations WHERE game_id = $1 FOR UPDATE", [gameId]);
      const current = rows[0] ? toDeclaration(rows[0]) : null;
      const next = mutate(current);
      if (next === null) return { declaration: current, changed: false };

      const parsed = RuntimeSpecSchema.safeParse(next);
      if (!parsed.success) throw new RtmError("invalid_request", describeZodError(parsed.error), { gameId });
      if (parsed.data.gameId !== gameId) {
        throw new RtmError("invalid_request", `gameId: must be ${JSON.stringify(gameId)}, got ${JSON.stringify(parsed.data.gameId)}`);
      }
      const values = specValues(parsed.data);
      const n = DECLARATION_SPEC_COLUMNS.length;
      const cols = DECLARATION_SPEC_COLUMNS.join(", ");

      if (!current) {
        const inserted = await tx.query<Row>(
          `INSERT INTO declarations (${cols}, op_id, op_source)
           VALUES (${specParams(1).join(", ")}, $${n + 1}, $${n + 2})
           ON CONFLICT (game_id) DO NOTHING
           RETURNING *`,
          [...values, meta.opId, meta.opSource],
        );
        if (!inserted.rows[0]) {
          // Only plain SQL can get here: it inserted between our read and write.
          throw new RtmError("conflict", `declaration of game ${gameId} was created concurrently; retry`);
        }
        return { declaration: toDeclaration(inserted.rows[0]), changed: true };
      }

      // The WHERE makes a same-spec write no write at all: no generation bump
      // (the trigger would agree), no notification, and the previous
      // writer's op id stays, since this caller changed nothing.
      const sets = DECLARATION_SPEC_COLUMNS.map((c, i) => `${c} = $${i + 2}::${DECLARATION_SPEC_COLUMN_TYPES[DECLARATION_SPEC_KEYS[i]!]}`);
      const updated = await tx.query<Row>(
        `UPDATE declarations SET ${sets.join(", ")}, op_id = $${n + 2}, op_source = $${n + 3}
          WHERE game_id = $1 AND (${cols}) IS DISTINCT FROM (${specParams(2).join(", ")})
          RETURNING *`,
        [gameId, ...values, meta.opId, meta.opSource],
      );
      if (!updated.rows[0]) return { declaration: current, changed: false };
      return { declaration: toDeclaration(updated.rows[0]), changed: true };
    });
  }

  async delete(gameId: string): Promise<boolean> {
    const { rows } = await this.client.query("DELETE FROM declarations WHERE game_id = $1 RETURNING game_id", [gameId]);
    return rows.length > 0;
  }

  /**
   * Subscribe before listing: a change between the list and the subscription
   * would otherwise be missed. `onResync` fires (pg only) after the listening
   * connection came back from a loss, once it is listening again.
   */
  async watch(handler: DeclarationWatch): Promise<() => Promise<void>> {
    return this.client.listen(DECLARATIONS_CHANNEL, {
      onNotify: (gameId) => handler.onChange(gameId),
      onResync: () => handler.onResync(),
    });
  }

  /** Record writes by any replica, for REST waiters that did not do the write themselves. */
  async watchRecords(handler: RecordWatch): Promise<() => Promise<void>> {
    return this.client.listen(RECORDS_CHANNEL, {
      onNotify: (gameId) => handler.onChange(gameId),
      onResync: () => handler.onResync?.(),
    });
  }

  // ----------------------------------------------------------------- records

  async getRecord(gameId: string): Promise<RuntimeRecord | null> {
    const { rows } = await this.client.query<Row>("SELECT * FROM runtime_records WHERE game_id = $1", [gameId]);
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async listRecords(): Promise<RuntimeRecord[]> {
    const { rows } = await this.client.query<Row>("SELECT * FROM runtime_records ORDER BY game_id");
    return rows.map(toRecord);
  }

  async putRecord(record: RuntimeRecord): Promise<void> {
    const keys = Object.keys(RECORD_FIELDS) as (keyof RuntimeRecord)[];
    const cols = keys.map(toSnakeCase);
    const params = keys.map((k, i) => `$${i + 1}::${RECORD_FIELDS[k]}`);
    const updates = cols.filter((c) => c !== "game_id").map((c) => `${c} = EXCLUDED.${c}`);
    await this.client.query(
      `INSERT INTO runtime_records (${cols.join(", ")}) VALUES (${params.join(", ")})
       ON CONFLICT (game_id) DO UPDATE SET ${updates.join(", ")}`,
      keys.map((k) => record[k] ?? null),
    );
  }

  /** Not part of StateStore: retention of records whose runtime is long gone. */
  async deleteRecord(gameId: string): Promise<boolean> {
    const { rows } = await this.client.query("DELETE FROM runtime_records WHERE game_id = $1 RETURNING game_id", [gameId]);
    return rows.length > 0;
  }

  // ----------------------------------------------------------- operation log

  async startOperation(op: NewOperation): Promise<number> {
    const { rows } = await this.client.query<{ id: string | number }>(
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

  async finishOperation(id: number, result: OperationResult): Promise<void> {
    const { rows } = await this.client.query(
      `UPDATE operation_log
          SET outcome = $2, error_code = $3, message = $4, finished_at = $5::timestamptz,
              image_ref = CASE WHEN $6::boolean THEN $7::text ELSE image_ref END
        WHERE id = $1
        RETURNING id`,
      [
        id,
        result.outcome,
        result.errorCode,
        result.message,
        result.finishedAt,
        result.imageRef !== undefined,
        result.imageRef ?? null,
      ],
    );
    if (rows.length === 0) throw new RtmError("not_found", `operation ${id} is not in the operation log`);
  }

  /** Newest first. */
  async listOperations(gameId: string, limit = DEFAULT_OPERATION_LIMIT): Promise<OperationEntry[]> {
    const { rows } = await this.client.query<Row>(
      "SELECT * FROM operation_log WHERE game_id = $1 ORDER BY id DESC LIMIT $2",
      [gameId, limit],
    );
    return rows.map(toOperation);
  }

  /**
   * Call only where no other process can be running operations (the leader,
   * right after taking the lease): every `running` row is taken for dead.
   */
  async markInterruptedOperations(): Promise<OperationEntry[]> {
    const { rows } = await this.client.query<Row>(
      `UPDATE operation_log SET outcome = 'interrupted', finished_at = now(), message = $1
        WHERE outcome = 'running'
        RETURNING *`,
      [INTERRUPTED_MESSAGE],
    );
    return rows.map(toOperation).sort((a, b) => a.id - b.id);
  }

  /** Not part of StateStore: retention. Running operations are kept. */
  async pruneOperations(olderThan: Date): Promise<number> {
    const { rows } = await this.client.query(
      "DELETE FROM operation_log WHERE started_at < $1::timestamptz AND outcome <> 'running' RETURNING id",
      [olderThan],
    );
    return rows.length;
  }

  // ------------------------------------------------------------------ events

  async appendEvent(event: NewRuntimeEvent): Promise<RuntimeEvent> {
    return this.client.transaction(async (tx: SqlQueryable) => {
      await tx.query(EVENTS_LOCK_SQL);
      const { rows } = await tx.query<Row>(
        `INSERT INTO runtime_events (game_id, type, at, op_id, data)
         VALUES ($1, $2, COALESCE($3::timestamptz, now()), $4, $5::jsonb)
         RETURNING *`,
        [event.gameId, event.type, event.at ?? null, event.opId, JSON.stringify(event.data ?? {})],
      );
      return toEvent(rows[0]!);
    });
  }

  async eventsAfter(seq: number, query: EventQuery = {}): Promise<RuntimeEvent[]> {
    const { rows } = await this.client.query<Row>(
      `SELECT * FROM runtime_events
        WHERE seq > $1::bigint AND ($2::text IS NULL OR game_id = $2::text)
        ORDER BY seq
        LIMIT $3`,
      [seq, query.gameId ?? null, query.limit ?? DEFAULT_EVENT_LIMIT],
    );
    return rows.map(toEvent);
  }

  async eventBounds(): Promise<{ oldest: number | null; latest: number | null }> {
    const { rows } = await this.client.query<{ oldest: unknown; latest: unknown }>(
      "SELECT min(seq) AS oldest, max(seq) AS latest FROM runtime_events",
    );
    const row = rows[0];
    return {
      oldest: row?.oldest == null ? null : Number(row.oldest),
      latest: row?.latest == null ? null : Number(row.latest),
    };
  }

  /** Not part of StateStore: retention. */
  async pruneEvents(olderThan: Date): Promise<number> {
    const { rows } = await this.client.query("DELETE FROM runtime_events WHERE at < $1::timestamptz RETURNING seq", [olderThan]);
    return rows.length;
  }

  // ------------------------------------------------------------------ leases

  /** The lease row `name` (one per installation), for leader election. */
  lease(name: string): SqlLease {
    return new SqlLease(this.client, name);
  }
}
