/**
 * The narrow waist between the store and its two backends (node-postgres and
 * PGlite). Everything above it is one body of SQL, so the two backends cannot
 * drift apart in behaviour.
 */

export type Row = Record<string, unknown>;

export interface SqlQueryable {
  /** One statement, $n parameters. */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<{ rows: T[] }>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface ListenHandlers {
  onNotify(payload: string): void;
  /**
   * The listening connection was lost and re-established: notifications sent
   * in between are gone, so whatever they would have told must be re-read.
   * Called after LISTEN is active again, so a re-read cannot miss a change.
   */
  onResync?(): void;
}

export interface SqlClient extends SqlQueryable {
  readonly backend: "pg" | "pglite";
  /** Where the data lives, for logs and errors; never carries a password. */
  readonly description: string;
  /** Commits when `fn` resolves, rolls back and rethrows when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /** Connections checked out right now (metrics); a backend without a pool may leave it out. */
  inUse?(): number;
}

/** Structural logger: pino's Logger fits, and tests can pass a stub. */
export interface StoreLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: StoreLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** SQLSTATE of a database error, whichever driver raised it. */
export function sqlState(err: unknown): string | undefined {
  if (err && typeof err === "object" && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(value: string): string {
  // standard_conforming_strings is on in every supported server, so only
  // quotes need doubling; a backslash is an ordinary character.
  return `'${value.replace(/'/g, "''")}'`;
}
