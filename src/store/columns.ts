/** Turning columns of either driver into model values. */
import { toSnakeCase } from "../model/declaration.js";
import type { Row } from "./sqlClient.js";

export type ColumnKind = "text" | "bigint" | "integer" | "boolean" | "timestamptz";

export function fromColumn(kind: ColumnKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    // node-postgres returns int8 as a string, PGlite as a number.
    case "bigint":
    case "integer":
      return Number(value);
    case "boolean":
      return Boolean(value);
    case "timestamptz":
      return value instanceof Date ? value : new Date(String(value));
    case "text":
      return String(value);
  }
}

export const dateColumn = (value: unknown): Date => fromColumn("timestamptz", value) as Date;
export const nullableText = (value: unknown): string | null => (value == null ? null : String(value));

/** Field, column and kind of each field map, computed once: mapRow is on every read's hot path. */
const columnPlans = new Map<Record<string, ColumnKind>, [string, string, ColumnKind][]>();

/** A row read through a field map whose keys are the model's camelCase names of the columns. */
export function mapRow<T>(fields: Record<string, ColumnKind>, row: Row): T {
  let plan = columnPlans.get(fields);
  if (!plan) {
    plan = Object.entries(fields).map(([key, kind]) => [key, toSnakeCase(key), kind]);
    columnPlans.set(fields, plan);
  }
  const out: Record<string, unknown> = {};
  for (const [key, column, kind] of plan) out[key] = fromColumn(kind, row[column]);
  return out as T;
}
