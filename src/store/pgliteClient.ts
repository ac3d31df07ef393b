import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PGlite, type Transaction } from "@electric-sql/pglite";
import { RtmError } from "../model/errors.js";
import { silentLogger, type ListenHandlers, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";

/**
 * PGlite happily opens a data directory another instance is using and both
 * then lose writes, so the directory is claimed with a pid file next to it.
 * The in-process set covers two stores in one process (same pid).
 */
const heldInProcess = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function claimDataDir(dataDir: string): () => void {
  const lockPath = `${dataDir}.lock`;
  if (heldInProcess.has(dataDir)) {
    throw new RtmError("service_unavailable", `PGlite data directory ${dataDir} is already open in this process`);
  }
  try {
    writeFileSync(lockPath, String(process.pid), { flag: "wx" });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const holder = Number.parseInt(readFileSync(lockPath, "utf8").trim(), 10);
    if (Number.isInteger(holder) && holder !== process.pid && processAlive(holder)) {
      throw new RtmError(
        "service_unavailable",
        `PGlite data directory ${dataDir} is in use by process ${holder} (lock file ${lockPath}); PGlite allows one process only, use PostgreSQL for several`,
      );
    }
    // The previous holder is gone: the lock is stale.
    writeFileSync(lockPath, String(process.pid));
  }
  heldInProcess.add(dataDir);
  return () => {
    heldInProcess.delete(dataDir);
    rmSync(lockPath, { force: true });
  };
}

function wrapTx(tx: Transaction): SqlQueryable {
  return {
    async query<T>(sql: string, params?: readonly unknown[]) {
      const result = await tx.query<T>(sql, params ? [...params] : undefined);
      return { rows: result.rows };
    },
    async exec(sql: string) {
      await tx.exec(sql);
    },
  };
}

export class PgliteSqlClient implements SqlClient {
  readonly backend = "pglite" as const;
  private closed = false;

  private constructor(
    private readonly db: PGlite,
    readonly description: string,
    private readonly release: () => void,
    private readonly logger: StoreLogger,
  ) {}

  /** `dataDir` is a directory (created when missing) or `memory://` for a throwaway database. */
  static async open(dataDir: string, logger: StoreLogger = silentLogger): Promise<PgliteSqlClient> {
    const inMemory = dataDir.startsWith("memory://");
    const dir = inMemory ? dataDir : path.resolve(dataDir);
    const description = inMemory ? `pglite ${dataDir}` : `pglite ${dir}`;
    let release = (): void => undefined;
    try {
      if (!inMemory) {
        mkdirSync(dir, { recursive: true });
        release = claimDataDir(dir);
      }
      const db = await PGlite.create(dir);
      logger.debug({ db: description }, "PGlite opened");
      return new PgliteSqlClient(db, description, release, logger);
    } catch (err) {
      release();
      if (err instanceof RtmError) throw err;
      throw new RtmError("service_unavailable", `cannot open ${description}: ${(err as Error).message}`, undefined, {
        cause: err,
      });
    }
  }

  private check(): void {
    if (this.closed) throw new RtmError("service_unavailable", `${this.description} is closed`);
  }

  async query<T>(sql: string, params?: readonly unknown[]): Promise<{ rows: T[] }> {
    this.check();
    const result = await this.db.query<T>(sql, params ? [...params] : undefined);
    return { rows: result.rows };
  }

  async exec(sql: string): Promise<void> {
    this.check();
    await this.db.exec(sql);
  }

  /**
   * PGlite is one connection: it runs every query and transaction through a
   * single mutex, so transactions are serialised and a lone query waits for
   * the open transaction. Calling the client (not `tx`) inside `fn` would
   * therefore wait forever; the SqlQueryable handed to `fn` is the only way in.
   */
  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    this.check();
    return this.db.transaction((tx) => fn(wrapTx(tx)));
  }

  /** The connection cannot drop, so onResync is never called. */
  async listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    this.check();
    const unlisten = await this.db.listen(channel, (payload) => {
      try {
        handlers.onNotify(payload);
      } catch (err) {
        this.logger.error({ err, channel }, "notification handler threw");
      }
    });
    return async () => {
      if (!this.closed) await unlisten();
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.db.close();
    } finally {
      this.release();
    }
  }
}
