/**
 * The LISTEN side of the pg backend: one dedicated connection for every
 * channel, kept alive by a heartbeat and re-established with jittered
 * backoff; after a loss every listener is told to resync, since the
 * notifications sent meanwhile are gone.
 */
import pg from "pg";
import { Backoff } from "../model/backoff.js";
import { RtmError } from "../model/errors.js";
import { withTimeout } from "../model/timeout.js";
import { quoteIdent, type ListenHandlers, type StoreLogger } from "./sqlClient.js";

export interface PgListenerOptions {
  connectionString: string;
  /** application_name of the connection. */
  applicationName: string;
  connectTimeoutMs: number;
  /**
   * Client-side bound of LISTEN and UNLISTEN (absent: none), so subscribing
   * or unsubscribing never hangs on a server that answers nothing. The
   * connection gets no server-side statement_timeout: it only runs trivial
   * statements, and its liveness is the heartbeat's job.
   */
  queryTimeoutMs?: number;
  /** How often the connection is asked `SELECT 1`; 0 turns the heartbeat off. */
  heartbeatMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Where the data lives, for logs and errors. */
  description: string;
  logger: StoreLogger;
  onHeartbeat?(): void;
  onConnectionLost?(err: Error): void;
  onResync?(): void;
}

export class PgListener {
  private readonly channels = new Map<string, Set<ListenHandlers>>();
  private readonly backoff: Backoff;
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeatBusy = false;
  private needResync = false;
  private closed = false;

  constructor(private readonly options: PgListenerOptions) {
    // Jitter keeps replicas that lost the server together from reconnecting in lockstep.
    this.backoff = new Backoff({ baseMs: options.reconnectMinMs, maxMs: options.reconnectMaxMs });
  }

  private get logger(): StoreLogger {
    return this.options.logger;
  }

  /** Resolves once LISTEN is active; `wrap` turns a connection failure into the caller's error. */
  async listen(channel: string, handlers: ListenHandlers, wrap: (err: unknown) => unknown): Promise<() => Promise<void>> {
    if (this.closed) throw new RtmError("service_unavailable", `database ${this.options.description} is closed`);
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
      const client = await this.ensureConnected();
      // Harmless when the connect above already listened on it.
      await client.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (err) {
      forget();
      throw wrap(err);
    }
    return async () => {
      forget();
      if (!this.channels.has(channel) && this.client) {
        await this.client.query(`UNLISTEN ${quoteIdent(channel)}`).catch(() => undefined);
      }
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopHeartbeat();
    const client = this.client;
    this.client = null;
    this.channels.clear();
    await Promise.allSettled([client?.end(), this.connecting]);
  }

  private ensureConnected(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = null;
      });
    }
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: this.options.applicationName,
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      keepAlive: true,
      ...(this.options.queryTimeoutMs ? { query_timeout: this.options.queryTimeoutMs } : {}),
    });
    let dead: Error | null = null;
    client.on("notification", (msg) => {
      if (client === this.client) this.dispatch(msg.channel, msg.payload ?? "");
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
      throw new RtmError("service_unavailable", `database ${this.options.description} is closed`);
    }
    this.client = client;
    this.backoff.reset();
    this.startHeartbeat();
    if (this.needResync) {
      this.needResync = false;
      this.logger.info({ db: this.options.description }, "LISTEN connection re-established; resyncing");
      this.resyncAll();
    }
    return client;
  }

  private lost(client: pg.Client, err: Error): void {
    if (client !== this.client) return;
    this.client = null;
    this.stopHeartbeat();
    client.end().catch(() => undefined);
    if (this.closed) return;
    this.needResync = true;
    this.logger.warn({ err, db: this.options.description }, "LISTEN connection lost; reconnecting");
    this.callHook("onConnectionLost hook", () => this.options.onConnectionLost?.(err));
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.closed || this.client) return;
      this.ensureConnected().catch((err: unknown) => {
        this.logger.warn({ err, attempt: this.backoff.attempts, db: this.options.description }, "LISTEN reconnect failed");
        this.scheduleReconnect();
      });
    }, this.backoff.next());
    this.reconnectTimer.unref();
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = this.options.heartbeatMs;
    if (every <= 0) return;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(every), every);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private async heartbeat(timeoutMs: number): Promise<void> {
    const client = this.client;
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
      this.callHook("notification handler", () => handlers.onNotify(payload), { channel });
    }
  }

  private resyncAll(): void {
    const all = [...this.channels.values()].flatMap((set) => [...set]);
    for (const handlers of all) this.callHook("resync handler", () => handlers.onResync?.());
    this.callHook("onResync hook", () => this.options.onResync?.());
  }

  /** A throwing hook or handler is logged, never allowed to break the connection's bookkeeping. */
  private callHook(what: string, fn: () => void, context: object = {}): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ err, ...context }, `${what} threw`);
    }
  }
}
