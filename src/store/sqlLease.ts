/**
 * A lease as one row of the `leases` table. Every call is one statement
 * judged by the database clock, so replicas with skewed clocks still agree on
 * who holds it.
 */
import type { Lease } from "../model/ports.js";
import type { Row, SqlQueryable } from "./sqlClient.js";

export interface LeaseInfo {
  name: string;
  holder: string;
  expiresAt: Date;
  acquiredAt: Date;
  renewedAt: Date;
}

const asDate = (value: unknown): Date => (value instanceof Date ? value : new Date(String(value)));

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error("lease call aborted");
}

export class SqlLease implements Lease {
  constructor(
    private readonly client: SqlQueryable,
    readonly name: string,
  ) {}

  /**
   * A statement already sent cannot be called back; `signal` only keeps an
   * aborted call from being sent (the elector stops waiting at its bound anyway).
   */
  async tryAcquire(holder: string, durationMs: number, signal?: AbortSignal): Promise<boolean> {
    checkAborted(signal);
    const { rows } = await this.client.query<{ holder: string }>(
      `INSERT INTO leases AS l (name, holder, expires_at, acquired_at, renewed_at)
       VALUES ($1, $2, now() + $3::double precision * interval '1 millisecond', now(), now())
       ON CONFLICT (name) DO UPDATE SET
         holder = EXCLUDED.holder,
         expires_at = EXCLUDED.expires_at,
         acquired_at = CASE WHEN l.holder = EXCLUDED.holder AND l.expires_at >= now() THEN l.acquired_at ELSE now() END,
         renewed_at = now()
       WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
       RETURNING holder`,
      [this.name, holder, durationMs],
    );
    return rows[0]?.holder === holder;
  }

  async release(holder: string, signal?: AbortSignal): Promise<void> {
    checkAborted(signal);
    await this.client.query("DELETE FROM leases WHERE name = $1 AND holder = $2", [this.name, holder]);
  }

  /** Not part of Lease: who holds it, for status pages and tests; null when nobody or expired. */
  async current(): Promise<LeaseInfo | null> {
    const { rows } = await this.client.query<Row>("SELECT * FROM leases WHERE name = $1 AND expires_at >= now()", [this.name]);
    const row = rows[0];
    if (!row) return null;
    return {
      name: String(row.name),
      holder: String(row.holder),
      expiresAt: asDate(row.expires_at),
      acquiredAt: asDate(row.acquired_at),
      renewedAt: asDate(row.renewed_at),
    };
  }
}
