export { openStore, type OpenStoreOptions } from "./open.js";
export { SqlStore, type RecordWatch, type SqlStoreOptions } from "./sqlStore.js";
export { SqlLease, type LeaseInfo } from "./sqlLease.js";
export type { ListenHandlers, SqlClient, SqlQueryable, StoreLogger } from "./sqlClient.js";
export { PgSqlClient, describeDatabaseUrl, type PgClientOptions } from "./pgClient.js";
export { PgliteSqlClient } from "./pgliteClient.js";
export { MIGRATIONS, applyMigrations, DECLARATIONS_CHANNEL, RECORDS_CHANNEL } from "./migrations.js";
export { SqlQuarantines } from "./quarantineSql.js";
