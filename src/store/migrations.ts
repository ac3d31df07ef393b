import { createHash } from "node:crypto";
import { RtmError } from "../model/errors.js";
import { derivedSchemaSql } from "./derivedSchema.js";
import { OWNER_MIGRATION } from "./ownerSql.js";
import { QUARANTINE_MIGRATION } from "./quarantineSql.js";
import { TRACE_MIGRATION } from "./traceSql.js";
import { silentLogger, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";
import { DECLARATION_META_COLUMNS, DECLARATION_SPEC_COLUMNS } from "./tables.js";

export { DECLARATIONS_CHANNEL, RECORDS_CHANNEL } from "./tables.js";

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
  {
    version: 3,
    name: "leader epochs for fencing a former leader's writes",
    sql: `
CREATE TABLE leader_epochs (
  name text PRIMARY KEY,
  epoch bigint NOT NULL,
  holder text NOT NULL,
  advanced_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 4,
    name: "the lost node an engine's Pod is stuck on",
    sql: `ALTER TABLE runtime_records ADD COLUMN lost_node text NULL, ADD COLUMN lost_node_since timestamptz NULL;`,
  },
  QUARANTINE_MIGRATION,
  OWNER_MIGRATION,
  TRACE_MIGRATION,
];

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
    await tx.exec(BOOKKEEPING_SQL);
    const { applied, ahead } = await applyVersioned(tx, logger, migrations);
    const derivedReapplied = await reapplyDerived(tx, derived, ahead);
    await verifyDeclarationColumns(tx);
    return { applied, derivedReapplied };
  });
  if (result.applied.length || result.derivedReapplied) {
    logger.info({ applied: result.applied, derivedReapplied: result.derivedReapplied, db: client.description }, "database schema updated");
  }
  return result;
}

/** Which versions and which derived SQL a database has had applied. */
const BOOKKEEPING_SQL = `
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
);`;

/** Runs the versions the database lacks, in order; `ahead` lists versions it has that this build does not know. */
async function applyVersioned(tx: SqlQueryable, logger: StoreLogger, migrations: readonly Migration[]): Promise<{ applied: number[]; ahead: number[] }> {
  const { rows } = await tx.query<{ version: number; checksum: string }>("SELECT version, checksum FROM schema_migrations ORDER BY version");
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
    await runMigration(tx, m);
    await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [m.version, m.name, sum]);
    applied.push(m.version);
  }
  const newest = Math.max(0, ...migrations.map((m) => m.version));
  const ahead = [...known.keys()].filter((v) => v > newest);
  if (ahead.length) {
    logger.warn({ versions: ahead }, "database has migrations this build does not know; running an older build on a newer schema");
  }
  return { applied, ahead };
}

async function runMigration(tx: SqlQueryable, m: Migration): Promise<void> {
  try {
    await tx.exec(m.sql);
  } catch (err) {
    throw new RtmError("internal_error", `migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
}

/** Re-applies the model's CHECKs and triggers when they changed; true if it did. */
async function reapplyDerived(tx: SqlQueryable, derived: string, ahead: number[]): Promise<boolean> {
  const derivedSum = checksum(derived);
  const { rows: d } = await tx.query<{ checksum: string }>("SELECT checksum FROM schema_derived WHERE name = 'model'");
  // An older build (during a rolling upgrade) must not put back its older
  // CHECKs and triggers over the newer build's.
  if (d[0]?.checksum === derivedSum || ahead.length > 0) return false;
  await tx.exec(derived);
  await tx.query(
    `INSERT INTO schema_derived (name, checksum) VALUES ('model', $1)
         ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()`,
    [derivedSum],
  );
  return true;
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
