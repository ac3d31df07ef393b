import pg from "pg";
import { describeDatabaseUrl, mapError, passwordOf } from "./pgErrors.js";
import { PgListener } from "./pgListener.js";
import { silentLogger, type ListenHandlers, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";

export { describeDatabaseUrl, isConnectionError } from "./pgErrors.js";

export interface PgClientOptions {
  connectionString: string;
  logger?: StoreLogger;
  /** Pool size for queries and transactions; LISTEN has its own connection on top. */
  poolSize?: number;
  /** application_name of the pool; the LISTEN connection gets `${applicationName}-listen`. */
  applicationName?: string;
  connectTimeoutMs?: number;
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
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      application_name: options.applicationName ?? "rtmanager",
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
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

  private wrap = (err: unknown): unknown => mapError(err, this.description, this.secret);

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
