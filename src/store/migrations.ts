import { createHash } from "node:crypto";
import { RuntimeSpecSchema, SPEC_KEYS, toSnakeCase, type RuntimeSpec } from "../model/declaration.js";
import { ERROR_CODES, RtmError } from "../model/errors.js";
import { GAME_ID_MAX_LENGTH, GAME_ID_PATTERN } from "../model/gameId.js";
import { IMAGE_REF_MAX_LENGTH, IMAGE_REF_PATTERN } from "../model/imageRef.js";
import { HEALTH_STATES } from "../model/record.js";
import {
  DESIRED_STATES,
  EVENT_TYPES,
  OP_KINDS,
  OP_OUTCOMES,
  OP_SOURCES,
  RESTART_POLICIES,
  RUNTIME_STATUSES,
  STOP_REASONS,
} from "../model/status.js";
import { quoteLiteral, silentLogger, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";

export const DECLARATIONS_CHANNEL = "rtm_declarations";
export const RECORDS_CHANNEL = "rtm_records";

/**
 * SQL type of each spec key's column. The mapped type makes adding a key to
 * RuntimeSpecSchema a compile error here until it gets a column (and then a
 * migration: `verifySchema` refuses to start on a table without it).
 */
export const DECLARATION_SPEC_COLUMN_TYPES: { [K in keyof RuntimeSpec]-?: "text" | "jsonb" } = {
  gameId: "text",
  imageRef: "text",
  desiredState: "text",
  restartPolicy: "text",
  resources: "jsonb",
  env: "jsonb",
  stopReason: "text",
  restartToken: "text",
};

/** The spec columns, in SPEC_KEYS order (the store binds values in that order). */
export const DECLARATION_SPEC_COLUMNS = SPEC_KEYS.map(toSnakeCase);
/** Columns the store maintains next to the spec. */
export const DECLARATION_META_COLUMNS = ["generation", "op_id", "op_source", "created_at", "updated_at"] as const;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Versioned, append-only. Never edit an applied one: add a new version.
 * Table shapes live here as literal SQL so history stays frozen; everything
 * computed from the model (CHECKs, triggers) lives in `derivedSchemaSql()`,
 * which is re-applied whenever the model changes.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "initial tables",
    sql: `
CREATE TABLE declarations (
  game_id text PRIMARY KEY,
  image_ref text NOT NULL,
  desired_state text NOT NULL DEFAULT 'running',
  restart_policy text NOT NULL DEFAULT 'on-failure',
  resources jsonb NULL,
  env jsonb NULL,
  stop_reason text NULL,
  restart_token text NULL,
  generation bigint NOT NULL DEFAULT 1,
  op_id text NULL,
  op_source text NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE runtime_records (
  game_id text PRIMARY KEY,
  status text NOT NULL,
  current_container_id text NULL,
  current_image_ref text NULL,
  engine_endpoint text NULL,
  state_path text NOT NULL,
  docker_network text NOT NULL,
  started_at timestamptz NULL,
  stopped_at timestamptz NULL,
  removed_at timestamptz NULL,
  last_op_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  observed_generation bigint NOT NULL DEFAULT 0,
  restart_count integer NOT NULL DEFAULT 0,
  last_exit_code integer NULL,
  last_error_code text NULL,
  last_error_message text NULL,
  last_error_generation bigint NULL,
  health text NOT NULL DEFAULT 'unknown',
  consecutive_probe_failures integer NOT NULL DEFAULT 0,
  last_probe_at timestamptz NULL,
  previous_image_ref text NULL,
  rollout_started_at timestamptz NULL,
  degraded boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operation_log (
  id bigserial PRIMARY KEY,
  op_id text NOT NULL,
  game_id text NOT NULL,
  kind text NOT NULL,
  op_source text NOT NULL,
  image_ref text NULL,
  generation bigint NULL,
  outcome text NOT NULL DEFAULT 'running',
  error_code text NULL,
  message text NULL,
  stop_reason text NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz NULL
);
CREATE INDEX operation_log_game_id_idx ON operation_log (game_id, id);
CREATE INDEX operation_log_op_id_idx ON operation_log (op_id);
CREATE INDEX operation_log_running_idx ON operation_log (id) WHERE outcome = 'running';

CREATE TABLE runtime_events (
  seq bigserial PRIMARY KEY,
  game_id text NOT NULL,
  type text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  op_id text NULL,
  data jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX runtime_events_game_id_idx ON runtime_events (game_id, seq);
CREATE INDEX runtime_events_at_idx ON runtime_events (at);

CREATE TABLE leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL,
  acquired_at timestamptz NOT NULL DEFAULT now(),
  renewed_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 2,
    name: "held generation of a rolled-back patch",
    sql: `ALTER TABLE runtime_records ADD COLUMN held_generation bigint NULL;`,
  },
];

const list = (values: readonly string[]): string => values.map(quoteLiteral).join(", ");

function gameIdCheck(column: string): string {
  return `char_length(${column}) BETWEEN 1 AND ${GAME_ID_MAX_LENGTH} AND ${column} ~ ${quoteLiteral(GAME_ID_PATTERN.source)}`;
}

function restartTokenMaxLength(): number {
  const max = RuntimeSpecSchema.shape.restartToken.unwrap().maxLength;
  if (max === null) throw new Error("restartToken has no max length in RuntimeSpecSchema; the SQL CHECK needs one");
  return max;
}

interface DerivedCheck {
  table: string;
  name: string;
  expr: string;
}

export function derivedChecks(): DerivedCheck[] {
  return [
    { table: "declarations", name: "declarations_game_id_check", expr: gameIdCheck("game_id") },
    {
      table: "declarations",
      name: "declarations_image_ref_check",
      expr: `char_length(image_ref) BETWEEN 1 AND ${IMAGE_REF_MAX_LENGTH} AND image_ref ~ ${quoteLiteral(IMAGE_REF_PATTERN.source)}`,
    },
    { table: "declarations", name: "declarations_desired_state_check", expr: `desired_state IN (${list(DESIRED_STATES)})` },
    { table: "declarations", name: "declarations_restart_policy_check", expr: `restart_policy IN (${list(RESTART_POLICIES)})` },
    {
      table: "declarations",
      name: "declarations_stop_reason_check",
      expr: `stop_reason IS NULL OR stop_reason IN (${list(STOP_REASONS)})`,
    },
    {
      table: "declarations",
      name: "declarations_restart_token_check",
      expr: `restart_token IS NULL OR char_length(restart_token) <= ${restartTokenMaxLength()}`,
    },
    // The inner shape of these objects is left to zod (a row that passes here
    // but fails the schema surfaces as start_config_invalid); SQL only keeps
    // them from being arrays or scalars.
    {
      table: "declarations",
      name: "declarations_resources_check",
      expr: `resources IS NULL OR jsonb_typeof(resources) = 'object'`,
    },
    { table: "declarations", name: "declarations_env_check", expr: `env IS NULL OR jsonb_typeof(env) = 'object'` },
    {
      table: "declarations",
      name: "declarations_op_source_check",
      expr: `op_source IS NULL OR op_source IN (${list(OP_SOURCES)})`,
    },
    { table: "declarations", name: "declarations_generation_check", expr: `generation >= 1` },

    { table: "runtime_records", name: "runtime_records_game_id_check", expr: gameIdCheck("game_id") },
    { table: "runtime_records", name: "runtime_records_status_check", expr: `status IN (${list(RUNTIME_STATUSES)})` },
    { table: "runtime_records", name: "runtime_records_health_check", expr: `health IN (${list(HEALTH_STATES)})` },
    {
      table: "runtime_records",
      name: "runtime_records_last_error_code_check",
      expr: `last_error_code IS NULL OR last_error_code IN (${list(ERROR_CODES)})`,
    },

    { table: "operation_log", name: "operation_log_game_id_check", expr: gameIdCheck("game_id") },
    { table: "operation_log", name: "operation_log_kind_check", expr: `kind IN (${list(OP_KINDS)})` },
    { table: "operation_log", name: "operation_log_op_source_check", expr: `op_source IN (${list(OP_SOURCES)})` },
    { table: "operation_log", name: "operation_log_outcome_check", expr: `outcome IN (${list(OP_OUTCOMES)})` },
    {
      table: "operation_log",
      name: "operation_log_error_code_check",
      expr: `error_code IS NULL OR error_code IN (${list(ERROR_CODES)})`,
    },
    {
      table: "operation_log",
      name: "operation_log_stop_reason_check",
      expr: `stop_reason IS NULL OR stop_reason IN (${list(STOP_REASONS)})`,
    },

    { table: "runtime_events", name: "runtime_events_game_id_check", expr: gameIdCheck("game_id") },
    { table: "runtime_events", name: "runtime_events_type_check", expr: `type IN (${list(EVENT_TYPES)})` },
  ];
}

function checkSql(check: DerivedCheck): string {
  // NOT VALID + a guarded VALIDATE: when the model narrows (an enum value
  // dropped), old rows must not keep the controller from starting; new writes
  // are checked either way, and an old bad declaration surfaces through
  // get() as start_config_invalid.
  return `
ALTER TABLE ${check.table} DROP CONSTRAINT IF EXISTS ${check.name};
ALTER TABLE ${check.table} ADD CONSTRAINT ${check.name} CHECK (${check.expr}) NOT VALID;
DO $v$
BEGIN
  ALTER TABLE ${check.table} VALIDATE CONSTRAINT ${check.name};
EXCEPTION WHEN check_violation THEN
  RAISE WARNING 'rows of ${check.table} violate ${check.name}; new writes are checked, old rows are left as they are';
END
$v$;`;
}

/** CHECK constraints and triggers computed from the model constants. */
export function derivedSchemaSql(): string {
  const specNew = DECLARATION_SPEC_COLUMNS.map((c) => `NEW.${c}`).join(", ");
  const specOld = DECLARATION_SPEC_COLUMNS.map((c) => `OLD.${c}`).join(", ");
  return `
${derivedChecks().map(checkSql).join("\n")}

-- The generation is the store's, not the writer's: plain SQL gets the same
-- bumps as the API, and a re-created game starts above what the controller
-- last observed for it, so an old record can never look up to date.
CREATE OR REPLACE FUNCTION rtm_declarations_before_write() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.generation := COALESCE(
      (SELECT r.observed_generation FROM runtime_records r WHERE r.game_id = NEW.game_id), 0) + 1;
    NEW.op_source := COALESCE(NEW.op_source, 'sql');
    RETURN NEW;
  END IF;
  IF (${specNew}) IS DISTINCT FROM (${specOld}) THEN
    NEW.generation := OLD.generation + 1;
    NEW.updated_at := now();
    -- A spec change that does not name its writer was made by hand; do not
    -- let the previous writer's op id take the credit.
    IF NEW.op_id IS NOT DISTINCT FROM OLD.op_id THEN
      NEW.op_id := NULL;
      NEW.op_source := 'sql';
    END IF;
  ELSE
    NEW.generation := OLD.generation;
    NEW.updated_at := OLD.updated_at;
  END IF;
  RETURN NEW;
END
$fn$;

CREATE OR REPLACE TRIGGER rtm_declarations_before_write
  BEFORE INSERT OR UPDATE ON declarations
  FOR EACH ROW EXECUTE FUNCTION rtm_declarations_before_write();

CREATE OR REPLACE FUNCTION rtm_declarations_notify() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify(${quoteLiteral(DECLARATIONS_CHANNEL)}, OLD.game_id);
  ELSE
    PERFORM pg_notify(${quoteLiteral(DECLARATIONS_CHANNEL)}, NEW.game_id);
    IF TG_OP = 'UPDATE' AND OLD.game_id <> NEW.game_id THEN
      PERFORM pg_notify(${quoteLiteral(DECLARATIONS_CHANNEL)}, OLD.game_id);
    END IF;
  END IF;
  RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS rtm_declarations_notify ON declarations;
DROP TRIGGER IF EXISTS rtm_declarations_notify_update ON declarations;
CREATE TRIGGER rtm_declarations_notify
  AFTER INSERT OR DELETE ON declarations
  FOR EACH ROW EXECUTE FUNCTION rtm_declarations_notify();
-- A no-op UPDATE wakes nobody.
CREATE TRIGGER rtm_declarations_notify_update
  AFTER UPDATE ON declarations
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION rtm_declarations_notify();

CREATE OR REPLACE FUNCTION rtm_records_notify() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM pg_notify(${quoteLiteral(RECORDS_CHANNEL)}, NEW.game_id);
  RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS rtm_records_notify ON runtime_records;
DROP TRIGGER IF EXISTS rtm_records_notify_update ON runtime_records;
CREATE TRIGGER rtm_records_notify
  AFTER INSERT ON runtime_records
  FOR EACH ROW EXECUTE FUNCTION rtm_records_notify();
CREATE TRIGGER rtm_records_notify_update
  AFTER UPDATE ON runtime_records
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION rtm_records_notify();
`;
}

const checksum = (sql: string): string => createHash("sha256").update(sql).digest("hex");

/**
 * Serialises concurrent starts: the second process waits here, then finds
 * everything applied. The two-key per-game locks live in another key space.
 */
const MIGRATION_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('rtmanager:migrations'))`;

export interface MigrationResult {
  applied: number[];
  derivedReapplied: boolean;
}

export async function applyMigrations(
  client: SqlClient,
  logger: StoreLogger = silentLogger,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<MigrationResult> {
  const derived = derivedSchemaSql();
  const result = await client.transaction(async (tx) => {
    await tx.query(MIGRATION_LOCK_SQL);
    await tx.exec(`
CREATE TABLE IF NOT EXISTS schema_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_derived (
  name text PRIMARY KEY,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);`);
    const { rows } = await tx.query<{ version: number; checksum: string }>(
      "SELECT version, checksum FROM schema_migrations ORDER BY version",
    );
    const known = new Map(rows.map((r) => [Number(r.version), r.checksum]));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      const sum = checksum(m.sql);
      const existing = known.get(m.version);
      if (existing !== undefined) {
        if (existing !== sum) {
          logger.warn({ version: m.version, name: m.name }, "applied migration differs from the code's copy; it is not re-run");
        }
        continue;
      }
      try {
        await tx.exec(m.sql);
      } catch (err) {
        throw new RtmError("internal_error", `migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, undefined, {
          cause: err,
        });
      }
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, sum]);
      applied.push(m.version);
    }
    const newest = Math.max(0, ...migrations.map((m) => m.version));
    const ahead = [...known.keys()].filter((v) => v > newest);
    if (ahead.length) {
      logger.warn({ versions: ahead }, "database has migrations this build does not know; running an older build on a newer schema");
    }

    const derivedSum = checksum(derived);
    const { rows: d } = await tx.query<{ checksum: string }>("SELECT checksum FROM schema_derived WHERE name = 'model'");
    let derivedReapplied = false;
    // An older build (during a rolling upgrade) must not put back its older
    // CHECKs and triggers over the newer build's.
    if (d[0]?.checksum !== derivedSum && ahead.length === 0) {
      await tx.exec(derived);
      await tx.query(
        `INSERT INTO schema_derived (name, checksum) VALUES ('model', $1)
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
        [derivedSum],
      );
      derivedReapplied = true;
    }
    await verifyDeclarationColumns(tx);
    return { applied, derivedReapplied };
  });
  if (result.applied.length || result.derivedReapplied) {
    logger.info({ applied: result.applied, derivedReapplied: result.derivedReapplied, db: client.description }, "database schema updated");
  }
  return result;
}

/**
 * The model is the source of truth: a spec key without a column (or a column
 * the model no longer knows) means a migration is missing, and running on
 * would silently drop or invent fields.
 */
async function verifyDeclarationColumns(tx: SqlQueryable): Promise<void> {
  const { rows } = await tx.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'declarations'`,
  );
  const actual = new Set(rows.map((r) => r.column_name));
  const expected = new Set<string>([...DECLARATION_SPEC_COLUMNS, ...DECLARATION_META_COLUMNS]);
  const missing = [...expected].filter((c) => !actual.has(c));
  const extra = [...actual].filter((c) => !expected.has(c));
  if (missing.length || extra.length) {
    throw new RtmError(
      "internal_error",
      `declarations table does not match RuntimeSpecSchema (missing: ${missing.join(", ") || "none"}; unknown: ${extra.join(", ") || "none"}): add a migration`,
    );
  }
}
