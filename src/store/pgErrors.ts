/** What a node-postgres failure means for callers, and how to name a database without its password. */
import { RtmError } from "../model/errors.js";
import { sqlState } from "./sqlClient.js";

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
export function mapError(err: unknown, description: string, secret: string | null): unknown {
  if (err instanceof RtmError || !isConnectionError(err)) return err;
  let message = err instanceof Error ? err.message : String(err);
  if (secret) message = message.split(secret).join("***");
  return new RtmError("service_unavailable", `database ${description} is unavailable: ${message}`, undefined, { cause: err });
}

export function passwordOf(connectionString: string): string | null {
  try {
    const pw = new URL(connectionString).password;
    return pw ? decodeURIComponent(pw) : null;
  } catch {
    return null;
  }
}
