import { RtmError } from "../model/errors.js";
import { applyMigrations } from "./migrations.js";
import { PgSqlClient, describeDatabaseUrl, type PgClientOptions } from "./pgClient.js";
import { PgliteSqlClient } from "./pgliteClient.js";
import { silentLogger, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";
import { SqlStore } from "./sqlStore.js";

export interface OpenStoreOptions {
  /** PostgreSQL URL; when absent the store is PGlite in `dataDir`. */
  databaseUrl?: string;
  /** PGlite data directory (created when missing), e.g. ./.rtmanager/pglite; or memory:// */
  dataDir: string;
  logger?: StoreLogger;
  /** pg only: pool size, LISTEN heartbeat, reconnect backoff and the connection-loss hooks. */
  pg?: Omit<PgClientOptions, "connectionString" | "logger">;
  /** Called for every statement or transaction the database failed (metrics). */
  onQueryError?(err: unknown): void;
}

/** Opens the backend, applies migrations and returns the store. */
export async function openStore(options: OpenStoreOptions): Promise<SqlStore> {
  const logger = options.logger ?? silentLogger;
  let client: SqlClient;
  if (options.databaseUrl) {
    client = new PgSqlClient({ ...options.pg, connectionString: options.databaseUrl, logger });
    try {
      await client.query("SELECT 1");
    } catch (err) {
      await client.close().catch(() => undefined);
      // Always name the host here: the pg client only rewrites connection
      // errors, and a first failure can be anything (bad URL, TLS, ...).
      const where = describeDatabaseUrl(options.databaseUrl);
      if (err instanceof RtmError && err.code === "service_unavailable") throw err;
      throw new RtmError("service_unavailable", `cannot connect to ${where}: ${(err as Error).message}`, undefined, { cause: err });
    }
  } else {
    // An empty path would resolve to the working directory and fill it with
    // database files.
    if (!options.dataDir) {
      throw new RtmError("service_unavailable", "no database configured: set a PostgreSQL URL or a PGlite data directory");
    }
    client = await PgliteSqlClient.open(options.dataDir, logger);
  }
  try {
    await migrate(client, options, logger);
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
  logger.info({ db: client.description }, "store open");
  return new SqlStore(options.onQueryError ? observeErrors(client, options.onQueryError) : client, { logger });
}

/**
 * Migrations may wait for another replica's migration (the lock) and a
 * schema change on a large table may take minutes: on PostgreSQL they run on
 * a connection of their own without the statement timeout (a start-up probe
 * bounds start-up as a whole).
 */
async function migrate(client: SqlClient, options: OpenStoreOptions, logger: StoreLogger): Promise<void> {
  if (!options.databaseUrl || !options.pg?.statementTimeoutMs) {
    await applyMigrations(client, logger);
    return;
  }
  const unbounded = new PgSqlClient({ ...options.pg, connectionString: options.databaseUrl, logger, poolSize: 1, statementTimeoutMs: 0 });
  try {
    await applyMigrations(unbounded, logger);
  } finally {
    await unbounded.close();
  }
}

/**
 * Reports database failures to `onError`. A transaction callback's own
 * refusal (an RtmError thrown by a mutator) is not a database failure, so
 * only failing statements inside it and a failing BEGIN/COMMIT count. PGlite
 * has no pool; its "in use" is whether a call is running (0 or 1).
 */
function observeErrors(client: SqlClient, onError: (err: unknown) => void): SqlClient {
  let inFlight = 0;
  const track = async <T>(call: () => Promise<T>, counts: () => boolean = () => true): Promise<T> => {
    inFlight++;
    try {
      return await call();
    } catch (err) {
      if (counts()) onError(err);
      throw err;
    } finally {
      inFlight--;
    }
  };
  const observe = (q: SqlQueryable): SqlQueryable => ({
    query: <T>(sql: string, params?: readonly unknown[]) => track(() => q.query<T>(sql, params)),
    exec: (sql: string) => track(() => q.exec(sql)),
  });
  return {
    backend: client.backend,
    description: client.description,
    ...observe(client),
    transaction: <T>(fn: (tx: SqlQueryable) => Promise<T>) => {
      let thrownByFn = false;
      return track(
        () =>
          client.transaction((tx) =>
            fn(observe(tx)).catch((err: unknown) => {
              thrownByFn = true;
              throw err;
            }),
          ),
        () => !thrownByFn,
      );
    },
    listen: (channel, handlers) => client.listen(channel, handlers),
    close: () => client.close(),
    inUse: () => client.inUse?.() ?? Math.min(1, inFlight),
  };
}
