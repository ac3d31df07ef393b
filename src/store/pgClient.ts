import pg from "pg";
import { describeDatabaseUrl, mapError, passwordOf } from "./pgErrors.js";
import { PgListener } from "./pgListener.js";
import { RtmError } from "../model/errors.js";
import { silentLogger, sqlState, type ListenHandlers, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";

export { describeDatabaseUrl, isConnectionError } from "./pgErrors.js";

/** How much longer than the server's statement_timeout the client waits before it gives up on its own. */
export const CLIENT_TIMEOUT_GRACE_MS = 5_000;

/** node-postgres gave up waiting for an answer (query_timeout), whether or not the error was wrapped since. */
function isReadTimeout(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.message === "Query read timeout" || (err.cause !== undefined && err.cause !== err && isReadTimeout(err.cause));
}

/** The server cancelled a statement for its timeout, or the client gave up waiting for an answer. */
function isStatementTimeout(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof RtmError) return false;
  const code = sqlState(err);
  if ((code === "57014" || code === "25P03") && /timeout/i.test(err.message)) return true;
  return err.message === "Query read timeout";
}

/**
 * A timeout as service_unavailable naming the setting, so a log line or a 503
 * says what was slow and what bounds it; everything else goes to mapError.
 */
function mapTimeout(err: unknown, description: string, statementTimeoutMs: number): RtmError | null {
  if (!isStatementTimeout(err)) return null;
  const message = (err as Error).message === "Query read timeout"
    ? `no answer within ${statementTimeoutMs + CLIENT_TIMEOUT_GRACE_MS} ms`
    : (err as Error).message;
  return new RtmError(
    "service_unavailable",
    `database ${description}: statement timed out (RTMANAGER_SQL_STATEMENT_TIMEOUT=${statementTimeoutMs} ms): ${message}`,
    undefined,
    { cause: err },
  );
}

export interface PgClientOptions {
  connectionString: string;
  logger?: StoreLogger;
  /** Pool size for queries and transactions; LISTEN has its own connection on top. */
  poolSize?: number;
  /** application_name of the pool; the LISTEN connection gets `${applicationName}-listen`. */
  applicationName?: string;
  connectTimeoutMs?: number;
  /**
   * Server-side `statement_timeout` and `idle_in_transaction_session_timeout`
   * of every pooled connection (0 or absent: none). A statement past it fails
   * with service_unavailable instead of holding a worker, and a transaction
   * left open by a stuck client gives its locks back. The client itself gives
   * up CLIENT_TIMEOUT_GRACE_MS later, for a server that answers nothing at all
   * (frozen, or cut off without a reset): then the connection is discarded.
   */
  statementTimeoutMs?: number;
  /**
   * How often the LISTEN connection is asked `SELECT 1`. A silently dropped
   * TCP connection raises no event; without this probe the watch would go
   * deaf until the OS gives up on the socket, which takes many minutes.
   */
  listenHeartbeatMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** The LISTEN connection answered its heartbeat: a quiet watch, not a dead one. */
  onHeartbeat?(): void;
  /** The LISTEN connection died; notifications are being missed until it is back. */
  onConnectionLost?(err: Error): void;
  /** The LISTEN connection is back after a loss (each listener's onResync is called too). */
  onResync?(): void;
}

function queryable(conn: pg.PoolClient, isOpen: () => boolean, wrap: (err: unknown) => unknown): SqlQueryable {
  const guard = (): void => {
    if (!isOpen()) throw new Error("transaction is already finished");
  };
  return {
    async query<T>(sql: string, params?: readonly unknown[]) {
      guard();
      try {
        const result = await conn.query(sql, params ? [...params] : undefined);
        return { rows: result.rows as T[] };
      } catch (err) {
        throw wrap(err);
      }
    },
    async exec(sql: string) {
      guard();
      try {
        await conn.query(sql);
      } catch (err) {
        throw wrap(err);
      }
    },
  };
}

export class PgSqlClient implements SqlClient {
  readonly backend = "pg" as const;
  readonly description: string;
  private readonly pool: pg.Pool;
  private readonly logger: StoreLogger;
  private readonly secret: string | null;
  private readonly listener: PgListener;
  private closed = false;

  constructor(private readonly options: PgClientOptions) {
    this.description = describeDatabaseUrl(options.connectionString);
    this.logger = options.logger ?? silentLogger;
    this.secret = passwordOf(options.connectionString);
    const statementTimeoutMs = options.statementTimeoutMs ?? 0;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      application_name: options.applicationName ?? "rtmanager",
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      // Startup parameters: they hold for every statement on the connection.
      // No lock_timeout: a lock wait is part of its statement and already
      // bounded by statement_timeout; a shorter one would turn ordinary
      // waits on the events lock into failures.
      ...(statementTimeoutMs > 0
        ? {
            statement_timeout: statementTimeoutMs,
            idle_in_transaction_session_timeout: statementTimeoutMs,
            query_timeout: statementTimeoutMs + CLIENT_TIMEOUT_GRACE_MS,
          }
        : {}),
    });
    // An idle pooled connection that dies emits here; without a listener
    // the process would crash. The pool replaces it on the next checkout.
    this.pool.on("error", (err) => {
      this.logger.warn({ err, db: this.description }, "idle database connection failed");
    });
    this.listener = new PgListener({
      connectionString: options.connectionString,
      applicationName: `${options.applicationName ?? "rtmanager"}-listen`,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      queryTimeoutMs: statementTimeoutMs > 0 ? statementTimeoutMs + CLIENT_TIMEOUT_GRACE_MS : undefined,
      heartbeatMs: options.listenHeartbeatMs ?? 15_000,
      reconnectMinMs: options.reconnectMinMs ?? 100,
      reconnectMaxMs: options.reconnectMaxMs ?? 5_000,
      description: this.description,
      logger: this.logger,
      onHeartbeat: options.onHeartbeat,
      onConnectionLost: options.onConnectionLost,
      onResync: options.onResync,
    });
  }

  private wrap = (err: unknown): unknown =>
    mapTimeout(err, this.description, this.options.statementTimeoutMs ?? 0) ?? mapError(err, this.description, this.secret);

  inUse(): number {
    return this.pool.totalCount - this.pool.idleCount;
  }

  async query<T>(sql: string, params?: readonly unknown[]): Promise<{ rows: T[] }> {
    try {
      const result = await this.pool.query(sql, params ? [...params] : undefined);
      return { rows: result.rows as T[] };
    } catch (err) {
      throw this.wrap(err);
    }
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.pool.query(sql);
    } catch (err) {
      throw this.wrap(err);
    }
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    let conn: pg.PoolClient;
    try {
      conn = await this.pool.connect();
    } catch (err) {
      throw this.wrap(err);
    }
    let open = true;
    let broken = false;
    try {
      await conn.query("BEGIN");
      const result = await fn(queryable(conn, () => open, this.wrap));
      await conn.query("COMMIT");
      return result;
    } catch (err) {
      try {
        // After a client-side timeout the connection still waits for the
        // lost answer: a ROLLBACK would queue behind it. Discarding the
        // connection rolls the transaction back on the server.
        if (isReadTimeout(err)) throw err;
        await conn.query("ROLLBACK");
      } catch {
        // A connection that cannot roll back must not go back to the pool
        // with a transaction still open on it.
        broken = true;
      }
      throw this.wrap(err);
    } finally {
      open = false;
      conn.release(broken ? true : undefined);
    }
  }

  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    return this.listener.listen(channel, handlers, this.wrap);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.listener.close(), this.pool.end()]);
  }
}
