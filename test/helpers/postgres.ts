/**
 * A throwaway PostgreSQL server for integration tests: initdb in a temp dir,
 * trust auth, 127.0.0.1 on a free port, durability off for speed.
 *
 * Missing binaries fail loudly: a store suite that silently skipped its real
 * PostgreSQL half would pass while covering only PGlite.
 */
import { execFile, execFileSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

export interface PostgresServer {
  /** URL of the `postgres` database, as the superuser `postgres`. */
  url: string;
  port: number;
  /** Creates an empty database and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Kills every backend that is LISTENing (by last query or by the store's
   * `-listen` application name), optionally only those on `database`.
   * Returns how many were terminated.
   */
  terminateListeners(database?: string): Promise<number>;
  /** Runs one statement as superuser on `database` (default `postgres`). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Stops the server (fast shutdown: clients are disconnected), keeping its data and port for startServer(). */
  stopServer(): Promise<void>;
  /** Starts a server stopped by stopServer() again, on the same port with the same data. */
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

function findBinDir(): string {
  const candidates: string[] = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const debianRoot = "/usr/lib/postgresql";
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(debianRoot, v, "bin")));
  }
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) if (dir) candidates.push(dir);
  const found = candidates.find((dir) => existsSync(path.join(dir, "initdb")) && existsSync(path.join(dir, "pg_ctl")));
  if (!found) {
    throw new Error(
      "PostgreSQL server binaries (initdb, pg_ctl) not found in PG_BIN, /usr/lib/postgresql/*/bin or PATH. " +
        "Install them (Debian: apt-get install postgresql) or set PG_BIN; the store tests need a real server.",
    );
  }
  return found;
}

/** A free TCP port on 127.0.0.1 (for a server a test starts: PostgreSQL, a controller). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** initdb refuses to run as root, so as root everything runs as `postgres`. */
function asServerUser(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [bin, args];
  return ["runuser", ["-u", "postgres", "--", bin, ...args]];
}

function serverUserIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    return { uid, gid };
  } catch {
    throw new Error("running as root, but there is no `postgres` user to run initdb as (initdb refuses root)");
  }
}

const running = new Set<() => void>();
process.once("exit", () => {
  for (const kill of running) kill();
});

export async function startPostgres(): Promise<PostgresServer> {
  const binDir = findBinDir();
  const initdb = path.join(binDir, "initdb");
  const pgCtl = path.join(binDir, "pg_ctl");
  const ids = serverUserIds();
  const root = mkdtempSync(path.join(os.tmpdir(), "rtm-pg-"));
  if (ids) chownSync(root, ids.uid, ids.gid);
  const dataDir = path.join(root, "data");
  const logFile = path.join(root, "server.log");

  const exec = async (bin: string, args: string[]): Promise<void> => {
    const [cmd, argv] = asServerUser(bin, args);
    await run(cmd, argv, { timeout: 60_000 });
  };

  try {
    await exec(initdb, ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as Error).message}`);
  }

  let port = 0;
  let lastError: unknown;
  const serverOptions = (p: number): string =>
    [
      "-c listen_addresses=127.0.0.1",
      `-p ${p}`,
      `-k ${root}`,
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      "-c max_connections=200",
    ].join(" ");
  // The free port can be taken between probing and binding; try a few.
  for (let attempt = 0; attempt < 3 && !port; attempt++) {
    const candidate = await freePort();
    try {
      await exec(pgCtl, ["-D", dataDir, "-l", logFile, "-w", "-t", "30", "-o", serverOptions(candidate), "start"]);
      port = candidate;
    } catch (err) {
      lastError = err;
    }
  }
  if (!port) {
    const log = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "(no log)";
    rmSync(root, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${(lastError as Error)?.message}\n${log}`);
  }

  const killNow = (): void => {
    try {
      const [cmd, argv] = asServerUser(pgCtl, ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
      execFileSync(cmd, argv, { stdio: "ignore", timeout: 30_000 });
    } catch {
      // already stopped
    }
    rmSync(root, { recursive: true, force: true });
  };
  running.add(killNow);

  const urlFor = (database: string): string => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;

  const query = async <T>(sql: string, params?: unknown[], database = "postgres"): Promise<T[]> => {
    const client = new pg.Client({ connectionString: urlFor(database) });
    await client.connect();
    try {
      const result = await client.query(sql, params);
      return result.rows as T[];
    } finally {
      await client.end();
    }
  };

  let counter = 0;
  return {
    url: urlFor("postgres"),
    port,
    async createDatabase(name?: string) {
      const db = name ?? `rtm_test_${process.pid}_${++counter}`;
      await query(`CREATE DATABASE "${db.replace(/"/g, '""')}"`);
      return urlFor(db);
    },
    async terminateListeners(database?: string) {
      const rows = await query<{ pid: number }>(
        `SELECT pg_terminate_backend(pid) AS terminated, pid FROM pg_stat_activity
          WHERE pid <> pg_backend_pid()
            AND (query ILIKE 'LISTEN%' OR application_name LIKE '%-listen')
            AND ($1::text IS NULL OR datname = $1::text)`,
        [database ?? null],
      );
      return rows.length;
    },
    query,
    async stopServer() {
      await exec(pgCtl, ["-D", dataDir, "-m", "fast", "-w", "stop"]);
    },
    async startServer() {
      await exec(pgCtl, ["-D", dataDir, "-l", logFile, "-w", "-t", "30", "-o", serverOptions(port), "start"]);
    },
    async stop() {
      running.delete(killNow);
      try {
        await exec(pgCtl, ["-D", dataDir, "-m", "fast", "-w", "stop"]);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
