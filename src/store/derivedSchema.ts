/**
 * The part of the schema computed from the model: CHECK constraints from its
 * enums and patterns, and the triggers that bump generations and notify.
 * Re-applied by applyMigrations whenever this SQL changes.
 */
import { MEMORY_PATTERN, RESOURCE_FLOORS, RESOURCE_MAXIMA, RuntimeSpecSchema } from "../model/declaration.js";
import { ERROR_CODES } from "../model/errors.js";
import { GAME_ID_MAX_LENGTH, GAME_ID_PATTERN } from "../model/gameId.js";
import { IMAGE_REF_MAX_LENGTH, IMAGE_REF_PATTERN } from "../model/imageRef.js";
import { HEALTH_STATES } from "../model/record.js";
import { DESIRED_STATES, EVENT_TYPES, OP_KINDS, OP_OUTCOMES, OP_SOURCES, RESTART_POLICIES, RUNTIME_STATUSES, STOP_REASONS } from "../model/status.js";
import { quoteLiteral } from "./sqlClient.js";
import { DECLARATION_SPEC_COLUMNS, DECLARATIONS_CHANNEL, RECORDS_CHANNEL } from "./tables.js";

const list = (values: readonly string[]): string => values.map(quoteLiteral).join(", ");
/** An optional enum column: NULL or one of the model's values. */
const nullOrIn = (column: string, values: readonly string[]): string => `${column} IS NULL OR ${column} IN (${list(values)})`;

function gameIdCheck(column: string): string {
  return `char_length(${column}) BETWEEN 1 AND ${GAME_ID_MAX_LENGTH} AND ${column} ~ ${quoteLiteral(GAME_ID_PATTERN.source)}`;
}

function restartTokenMaxLength(): number {
  const max = RuntimeSpecSchema.shape.restartToken.unwrap().maxLength;
  if (max === null) throw new Error("restartToken has no max length in RuntimeSpecSchema; the SQL CHECK needs one");
  return max;
}

/** `resources->'key'` absent, or a JSON number within [min, max]; integers only when `integer`. */
function numberFieldCheck(key: string, min: number, max: number, integer: boolean): string {
  const v = `resources->${quoteLiteral(key)}`;
  // CASE, not AND: PostgreSQL does not promise to evaluate AND left to right, and the cast must only see numbers.
  const inRange = `(${v}::text)::numeric BETWEEN ${min} AND ${max}${integer ? ` AND (${v}::text)::numeric = trunc((${v}::text)::numeric)` : ""}`;
  return `CASE WHEN ${v} IS NULL THEN true WHEN jsonb_typeof(${v}) = 'number' THEN ${inRange} ELSE false END`;
}

/** `resources->'memory'` absent, or a MEMORY_PATTERN string of at least the floor in bytes. */
function memoryFieldCheck(): string {
  const v = `resources->>'memory'`;
  const bytes = `substring(${v} from '^[0-9]+')::numeric * CASE right(${v}, 1) WHEN 'k' THEN 1024 WHEN 'm' THEN ${1024 ** 2} WHEN 'g' THEN ${1024 ** 3} ELSE 1 END`;
  return (
    `CASE WHEN resources->'memory' IS NULL THEN true ` +
    `WHEN jsonb_typeof(resources->'memory') = 'string' AND ${v} ~ ${quoteLiteral(MEMORY_PATTERN.source)} THEN ${bytes} >= ${RESOURCE_FLOORS.memoryBytes} ` +
    `ELSE false END`
  );
}

/**
 * The limits' floors and ceilings from ResourcesSchema: a limit that would
 * round to "none" (cpus 1e-10 is 0 nano-CPUs) is refused by plain SQL too.
 */
function resourceLimitsCheck(): string {
  return [
    numberFieldCheck("cpus", RESOURCE_FLOORS.cpus, RESOURCE_MAXIMA.cpus, false),
    numberFieldCheck("pidsLimit", RESOURCE_FLOORS.pidsLimit, RESOURCE_MAXIMA.pidsLimit, true),
    memoryFieldCheck(),
  ]
    .map((c) => `(${c})`)
    .join(" AND ");
}

interface DerivedCheck {
  table: string;
  name: string;
  expr: string;
}

function declarationChecks(): DerivedCheck[] {
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
      expr: nullOrIn("stop_reason", STOP_REASONS),
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
    {
      table: "declarations",
      name: "declarations_resource_limits_check",
      expr: `resources IS NULL OR jsonb_typeof(resources) <> 'object' OR (${resourceLimitsCheck()})`,
    },
    { table: "declarations", name: "declarations_env_check", expr: `env IS NULL OR jsonb_typeof(env) = 'object'` },
    {
      table: "declarations",
      name: "declarations_op_source_check",
      expr: nullOrIn("op_source", OP_SOURCES),
    },
    { table: "declarations", name: "declarations_generation_check", expr: `generation >= 1` },
  ];
}

function recordChecks(): DerivedCheck[] {
  return [
    { table: "runtime_records", name: "runtime_records_game_id_check", expr: gameIdCheck("game_id") },
    { table: "runtime_records", name: "runtime_records_status_check", expr: `status IN (${list(RUNTIME_STATUSES)})` },
    { table: "runtime_records", name: "runtime_records_health_check", expr: `health IN (${list(HEALTH_STATES)})` },
    {
      table: "runtime_records",
      name: "runtime_records_last_error_code_check",
      expr: nullOrIn("last_error_code", ERROR_CODES),
    },
  ];
}

function operationLogChecks(): DerivedCheck[] {
  return [
    { table: "operation_log", name: "operation_log_game_id_check", expr: gameIdCheck("game_id") },
    { table: "operation_log", name: "operation_log_kind_check", expr: `kind IN (${list(OP_KINDS)})` },
    { table: "operation_log", name: "operation_log_op_source_check", expr: `op_source IN (${list(OP_SOURCES)})` },
    { table: "operation_log", name: "operation_log_outcome_check", expr: `outcome IN (${list(OP_OUTCOMES)})` },
    {
      table: "operation_log",
      name: "operation_log_error_code_check",
      expr: nullOrIn("error_code", ERROR_CODES),
    },
    {
      table: "operation_log",
      name: "operation_log_stop_reason_check",
      expr: nullOrIn("stop_reason", STOP_REASONS),
    },
  ];
}

function eventChecks(): DerivedCheck[] {
  return [
    { table: "runtime_events", name: "runtime_events_game_id_check", expr: gameIdCheck("game_id") },
    { table: "runtime_events", name: "runtime_events_type_check", expr: `type IN (${list(EVENT_TYPES)})` },
  ];
}

/** Every CHECK the model implies, table by table. */
export function derivedChecks(): DerivedCheck[] {
  return [...declarationChecks(), ...recordChecks(), ...operationLogChecks(), ...eventChecks()];
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

/** The BEFORE trigger that bumps a declaration's generation (the SQL's own comment says why). */
function generationTriggerSql(): string {
  const specNew = DECLARATION_SPEC_COLUMNS.map((c) => `NEW.${c}`).join(", ");
  const specOld = DECLARATION_SPEC_COLUMNS.map((c) => `OLD.${c}`).join(", ");
  return `-- The generation is the store's, not the writer's: plain SQL gets the same
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

`;
}

/** NOTIFY on the declarations channel for every declaration that really changed. */
function declarationNotifySql(): string {
  return `CREATE OR REPLACE FUNCTION rtm_declarations_notify() RETURNS trigger
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

`;
}

/** NOTIFY on the records channel for every runtime record that really changed. */
function recordNotifySql(): string {
  return `CREATE OR REPLACE FUNCTION rtm_records_notify() RETURNS trigger
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

/** CHECK constraints and triggers computed from the model constants. */
export function derivedSchemaSql(): string {
  return `
${derivedChecks().map(checkSql).join("\n")}

${generationTriggerSql()}${declarationNotifySql()}${recordNotifySql()}`;
}
