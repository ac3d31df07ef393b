import pg from "pg";
import { withTimeout } from "../model/timeout.js";
import { RtmError } from "../model/errors.js";
import {
  quoteIdent,
  silentLogger,
  sqlState,
  type ListenHandlers,
  type SqlClient,
  type SqlQueryable,
  type StoreLogger,
} from "./sqlClient.js";

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

/** `user@host:port/database` of a connection URL: never the password. */
export function describeDatabaseUrl(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    const socketHost = url.searchParams.get("host");
    const host = url.hostname || socketHost || "localhost";
    const port = url.port || "5432";
    const database = decodeURIComponent(url.pathname.replace(/^\//, "")) || "(default database)";
    const user = url.username ? `${decodeURIComponent(url.username)}@` : "";
    return `postgresql ${user}${host}:${port}/${database}`;
  } catch {
    return "postgresql (unparseable database URL)";
  }
}

const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  "28000", // invalid_authorization_specification
  "28P01", // invalid_password
  "3D000", // invalid_catalog_name: the database does not exist
]);

const CONNECTION_ERROR_MESSAGES = /connection terminated|connection error|timeout exceeded when trying to connect|connect ECONNREFUSED|Client was closed|Cannot use a pool after calling end/i;

export function isConnectionError(err: unknown): boolean {
  const code = sqlState(err);
  if (code && CONNECTION_ERROR_CODES.has(code)) return true;
  return err instanceof Error && CONNECTION_ERROR_MESSAGES.test(err.message);
}

/** Connection trouble becomes service_unavailable; SQL errors pass through untouched. */
function mapError(err: unknown, description: string, secret: string | null): unknown {
  if (err instanceof RtmError || !isConnectionError(err)) return err;
  let message = err instanceof Error ? err.message : String(err);
  if (secret) message = message.split(secret).join("***");
  return new RtmError("service_unavailable", `database ${description} is unavailable: ${message}`, undefined, { cause: err });
}

function passwordOf(connectionString: string): string | null {
  try {
    const pw = new URL(connectionString).password;
    return pw ? decodeURIComponent(pw) : null;
  } catch {
    return null;
  }
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
  private readonly channels = new Map<string, Set<ListenHandlers>>();
  private listener: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeatBusy = false;
  private reconnectAttempt = 0;
  private needResync = false;
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
      this.logger.warn({ err: err.message, db: this.description }, "idle database connection failed");
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

  async listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    if (this.closed) throw new RtmError("service_unavailable", `database ${this.description} is closed`);
    let set = this.channels.get(channel);
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(handlers);
    const forget = (): void => {
      const current = this.channels.get(channel);
      if (!current) return;
      current.delete(handlers);
      if (current.size === 0) this.channels.delete(channel);
    };
    try {
      const client = await this.ensureListener();
      // Harmless when the connect above already listened on it.
      await client.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (err) {
      forget();
      throw this.wrap(err);
    }
    return async () => {
      forget();
      if (!this.channels.has(channel) && this.listener) {
        await this.listener.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
      }
    };
  }

  private ensureListener(): Promise<pg.Client> {
    if (this.listener) return Promise.resolve(this.listener);
    if (!this.connecting) {
      this.connecting = this.connectListener().finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  private async connectListener(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: `${this.options.applicationName ?? "rtmanager"}-listen`,
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 10_000,
      keepAlive: true,
    });
    let dead: Error | null = null;
    client.on("notification", (msg) => {
      if (client === this.listener) this.dispatch(msg.channel, msg.payload ?? "");
    });
    client.on("error", (err) => {
      dead ??= err;
      this.lost(client, err);
    });
    client.on("end", () => {
      dead ??= new Error("LISTEN connection ended");
      this.lost(client, dead);
    });
    try {
      await client.connect();
      for (const channel of this.channels.keys()) {
        await client.query(`LISTEN ${quoteIdent(channel)}`);
      }
    } catch (err) {
      client.end().catch(() => undefined);
      throw err;
    }
    if (dead) throw dead;
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new RtmError("service_unavailable", `database ${this.description} is closed`);
    }
    this.listener = client;
    this.reconnectAttempt = 0;
    this.startHeartbeat();
    if (this.needResync) {
      this.needResync = false;
      this.logger.info({ db: this.description }, "LISTEN connection re-established; resyncing");
      this.resyncAll();
    }
    return client;
  }

  private lost(client: pg.Client, err: Error): void {
    if (client !== this.listener) return;
    this.listener = null;
    this.stopHeartbeat();
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.needResync = true;
    this.logger.warn({ err: err.message, db: this.description }, "LISTEN connection lost; reconnecting");
    try {
      this.options.onConnectionLost?.(err);
    } catch (hookErr) {
      this.logger.error({ err: (hookErr as Error).message }, "onConnectionLost hook threw");
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const min = this.options.reconnectMinMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5_000;
    const base = Math.min(max, min * 2 ** this.reconnectAttempt);
    // Jitter keeps replicas that lost the server together from reconnecting in lockstep.
    const delay = base / 2 + Math.random() * (base / 2);
    this.reconnectAttempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed || this.listener) return;
      this.ensureListener().catch((err: unknown) => {
        this.logger.warn(
          { err: (err as Error).message, attempt: this.reconnectAttempt, db: this.description },
          "LISTEN reconnect failed",
        );
        this.scheduleReconnect();
      });
    }, delay);
    this.reconnectTimer.unref();
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.options.listenHeartbeatMs ?? 15_000;
    if (every <= 0) return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(every), every);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async heartbeat(timeoutMs: number): Promise<void> {
    const client = this.listener;
    if (!client || this.heartbeatBusy) return;
    this.heartbeatBusy = true;
    try {
      await withTimeout(client.query("SELECT 1"), timeoutMs, () => new Error(`LISTEN connection did not answer within ${timeoutMs} ms`));
      this.options.onHeartbeat?.();
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      this.heartbeatBusy = false;
    }
  }

  private dispatch(channel: string, payload: string): void {
    for (const handlers of this.channels.get(channel) ?? []) {
      try {
        handlers.onNotify(payload);
      } catch (err) {
        this.logger.error({ err: (err as Error).message, channel }, "notification handler threw");
      }
    }
  }

  private resyncAll(): void {
    const all = [...this.channels.values()].flatMap((set) => [...set]);
    for (const handlers of all) {
      try {
        handlers.onResync?.();
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, "resync handler threw");
      }
    }
    try {
      this.options.onResync?.();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, "onResync hook threw");
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopHeartbeat();
    const listener = this.listener;
    this.listener = null;
    this.channels.clear();
    await Promise.allSettled([listener?.end(), this.connecting, this.pool.end()]);
  }
}
