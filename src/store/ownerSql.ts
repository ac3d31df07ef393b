/**
 * The game_owners table (issue 21, src/model/owner.ts): one owner per game
 * id, recorded by the first claimer and never handed on, so a second
 * controller replica or a restart sees the same owner.
 *
 * Store declarations claim in a trigger, so plain SQL obeys the rule as the
 * REST API does; a GameRuntime claims through `claimForKube` before it is
 * adopted (kubeSource.ts ensureFinalizer).
 */
import { OWNER_KINDS, type GameOwner, type GameOwners, type KubeClaim, type OwnerKind } from "../model/owner.js";
import { RtmError } from "../model/errors.js";
import { dateColumn, nullableText } from "./columns.js";
import { sqlState, type Row, type SqlQueryable } from "./sqlClient.js";

/** SQLSTATE the declarations trigger raises when a GameRuntime owns the id. */
export const OWNED_ELSEWHERE_SQLSTATE = "RTM01";

/** A Migration (migrations.ts), typed where MIGRATIONS lists it: this file is imported by migrations.ts, not the reverse. */
export const OWNER_MIGRATION = {
  version: 6,
  name: "one recorded owner per game id",
  sql: `
CREATE TABLE game_owners (
  game_id text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('kube', 'rest', 'sql', 'legacy')),
  namespace text NULL,
  uid text NULL,
  claimed_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'kube') = (namespace IS NOT NULL))
);

-- Games from before owners were recorded: whoever held them then is unknown here.
INSERT INTO game_owners (game_id, kind)
  SELECT game_id, 'legacy' FROM runtime_records
  UNION SELECT game_id, 'legacy' FROM declarations
ON CONFLICT (game_id) DO NOTHING;

CREATE FUNCTION rtm_declarations_claim_owner() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  claimant text := CASE WHEN NEW.op_source IN ('gm_rest', 'admin_rest') THEN 'rest' ELSE 'sql' END;
  owner_kind text;
  owner_namespace text;
BEGIN
  INSERT INTO game_owners (game_id, kind) VALUES (NEW.game_id, claimant)
  ON CONFLICT (game_id) DO UPDATE SET kind = EXCLUDED.kind, claimed_at = now() WHERE game_owners.kind = 'legacy';
  SELECT kind, namespace INTO owner_kind, owner_namespace FROM game_owners WHERE game_id = NEW.game_id;
  IF owner_kind = 'kube' THEN
    RAISE EXCEPTION 'game id % belongs to a GameRuntime in namespace %; a declaration cannot claim it (one owner per game id)', NEW.game_id, owner_namespace
      USING ERRCODE = '${OWNED_ELSEWHERE_SQLSTATE}';
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER rtm_declarations_claim_owner BEFORE INSERT ON declarations FOR EACH ROW EXECUTE FUNCTION rtm_declarations_claim_owner();
`,
};

const COLUMNS = "game_id, kind, namespace, uid, claimed_at";

function isOwnerKind(value: unknown): value is OwnerKind {
  return typeof value === "string" && (OWNER_KINDS as readonly string[]).includes(value);
}

function toOwner(row: Row): GameOwner {
  const kind = isOwnerKind(row.kind) ? row.kind : "legacy";
  return { gameId: String(row.game_id), kind, namespace: nullableText(row.namespace), uid: nullableText(row.uid), claimedAt: dateColumn(row.claimed_at) };
}

/** The trigger's refusal as the contract's conflict; anything else passes through. */
export function ownerConflictOf(err: unknown): unknown {
  if (sqlState(err) !== OWNED_ELSEWHERE_SQLSTATE) return err;
  return new RtmError("conflict", err instanceof Error ? err.message : String(err), undefined, { cause: err });
}

export class SqlGameOwners implements GameOwners {
  constructor(private readonly db: SqlQueryable) {}

  async get(gameId: string): Promise<GameOwner | null> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM game_owners WHERE game_id = $1`, [gameId]);
    return rows[0] ? toOwner(rows[0]) : null;
  }

  /**
   * Inserts the claim, or, when an owner is recorded, takes it only where it
   * is the same owner (the namespace; a re-created object has a new uid) or
   * a legacy owner the claimer was adopted under. Then reads what won.
   */
  async claimForKube(gameId: string, claim: KubeClaim): Promise<GameOwner> {
    const { rows } = await this.db.query<Row>(
      `INSERT INTO game_owners (game_id, kind, namespace, uid) VALUES ($1, 'kube', $2, $3)
       ON CONFLICT (game_id) DO UPDATE SET kind = 'kube', namespace = EXCLUDED.namespace, uid = EXCLUDED.uid
        WHERE (game_owners.kind = 'kube' AND game_owners.namespace = EXCLUDED.namespace AND game_owners.uid IS DISTINCT FROM EXCLUDED.uid)
           OR (game_owners.kind = 'legacy' AND $4::boolean)
       RETURNING ${COLUMNS}`,
      [gameId, claim.namespace, claim.uid, claim.adopted],
    );
    if (rows[0]) return toOwner(rows[0]);
    // Nothing written: the same claim was recorded before, or another owner holds the id.
    const owner = await this.get(gameId);
    if (!owner) throw new RtmError("internal_error", `game ${gameId}: no owner recorded after a claim`);
    return owner;
  }
}
