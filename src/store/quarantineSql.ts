/**
 * The image_quarantines table and the rollback count it is imposed from
 * (src/controller/quarantine.ts says why both live in the store). A row is
 * kept after its lift (lifted_at, lifted_by): the lift is when rollbacks
 * start counting again, and it is history an operator may want.
 */
import type { Quarantine, QuarantineStore } from "../controller/quarantine.js";
import { dateColumn } from "./columns.js";
import type { Row, SqlQueryable } from "./sqlClient.js";

/** A Migration (migrations.ts), typed where MIGRATIONS lists it: this file is imported by migrations.ts, not the reverse. */
export const QUARANTINE_MIGRATION = {
  version: 5,
  name: "image quarantines, and rollbacks counted per failed image",
  sql: `
CREATE TABLE image_quarantines (
  image_ref text PRIMARY KEY,
  quarantined_at timestamptz NOT NULL,
  rollbacks integer NOT NULL,
  game_id text NOT NULL,
  games jsonb NOT NULL DEFAULT '[]'::jsonb,
  lifted_at timestamptz NULL,
  lifted_by text NULL
);
CREATE INDEX runtime_events_rollback_image_idx ON runtime_events ((data->>'failedImageRef'), at) WHERE type = 'patch_rolled_back';
`,
};

const COLUMNS = "image_ref, quarantined_at, rollbacks, game_id, games";

function toQuarantine(row: Row): Quarantine {
  const games = Array.isArray(row.games) ? row.games.map(String) : [];
  return { imageRef: String(row.image_ref), since: dateColumn(row.quarantined_at), rollbacks: Number(row.rollbacks), gameId: String(row.game_id), games };
}

export class SqlQuarantines implements QuarantineStore {
  constructor(private readonly db: SqlQueryable) {}

  async activeQuarantines(): Promise<Quarantine[]> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM image_quarantines WHERE lifted_at IS NULL ORDER BY quarantined_at`);
    return rows.map(toQuarantine);
  }

  async recentRollbacks(imageRef: string, windowMs: number): Promise<{ count: number; games: string[] }> {
    const { rows } = await this.db.query<{ n: string | number; games: unknown }>(
      `SELECT count(*) AS n, coalesce(jsonb_agg(DISTINCT e.game_id), '[]'::jsonb) AS games
         FROM runtime_events e
        WHERE e.type = 'patch_rolled_back' AND e.data->>'failedImageRef' = $1
          AND e.at > now() - ($2::bigint * interval '1 millisecond')
          AND e.at > coalesce((SELECT lifted_at FROM image_quarantines WHERE image_ref = $1), '-infinity'::timestamptz)`,
      [imageRef, Math.round(windowMs)],
    );
    const games = rows[0]?.games;
    return { count: Number(rows[0]?.n ?? 0), games: Array.isArray(games) ? games.map(String).sort() : [] };
  }

  async imposeQuarantine(q: Quarantine): Promise<{ quarantine: Quarantine; created: boolean }> {
    // A lifted row is imposed again; an active one is left as it is (another replica, or an earlier count, was first).
    const { rows } = await this.db.query(
      `INSERT INTO image_quarantines AS q (image_ref, quarantined_at, rollbacks, game_id, games)
       VALUES ($1, $2::timestamptz, $3, $4, $5::jsonb)
       ON CONFLICT (image_ref) DO UPDATE
         SET quarantined_at = EXCLUDED.quarantined_at, rollbacks = EXCLUDED.rollbacks, game_id = EXCLUDED.game_id,
             games = EXCLUDED.games, lifted_at = NULL, lifted_by = NULL
       WHERE q.lifted_at IS NOT NULL
       RETURNING ${COLUMNS}`,
      [q.imageRef, q.since.toISOString(), q.rollbacks, q.gameId, JSON.stringify(q.games)],
    );
    if (rows[0]) return { quarantine: toQuarantine(rows[0]), created: true };
    const { rows: active } = await this.db.query(`SELECT ${COLUMNS} FROM image_quarantines WHERE image_ref = $1`, [q.imageRef]);
    return { quarantine: active[0] ? toQuarantine(active[0]) : q, created: false };
  }

  async liftQuarantine(imageRef: string, liftedBy: string): Promise<Quarantine | null> {
    const { rows } = await this.db.query(
      `UPDATE image_quarantines SET lifted_at = now(), lifted_by = $2 WHERE image_ref = $1 AND lifted_at IS NULL RETURNING ${COLUMNS}`,
      [imageRef, liftedBy],
    );
    return rows[0] ? toQuarantine(rows[0]) : null;
  }
}
