/** Names the schema shares between the migrations, the derived SQL and the store's queries. */
import { SPEC_KEYS, toSnakeCase, type RuntimeSpec } from "../model/declaration.js";

export const DECLARATIONS_CHANNEL = "rtm_declarations";
export const RECORDS_CHANNEL = "rtm_records";

/**
 * SQL type of each spec key's column. The mapped type makes adding a key to
 * RuntimeSpecSchema a compile error here until it gets a column (and then a
 * migration: `verifySchema` refuses to start on a table without it).
 */
export const DECLARATION_SPEC_COLUMN_TYPES: { [K in keyof RuntimeSpec]-?: "text" | "jsonb" } = {
  gameId: "text",
  imageRef: "text",
  desiredState: "text",
  restartPolicy: "text",
  resources: "jsonb",
  env: "jsonb",
  stopReason: "text",
  restartToken: "text",
};

/** The spec columns, in SPEC_KEYS order (the store binds values in that order). */
export const DECLARATION_SPEC_COLUMNS = SPEC_KEYS.map(toSnakeCase);
/** Columns the store maintains next to the spec. */
export const DECLARATION_META_COLUMNS = ["generation", "op_id", "op_source", "created_at", "updated_at"] as const;
