/**
 * One schema is the source of truth. These checks fail when the SQL table,
 * the contract's enums or the contract record drift from the model.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { RuntimeSpecSchema, SPEC_KEYS, toSnakeCase } from "../../src/model/declaration.js";
import { ERROR_CODES } from "../../src/model/errors.js";
import { RUNTIME_STATUSES, STOP_REASONS } from "../../src/model/status.js";
import { toContractRecord } from "../../src/model/record.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { openStore } from "../../src/store/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const contractPath = path.resolve(here, "../../contract/internal-openapi.yaml");

interface OpenApiSchema {
  enum?: string[];
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
}
const contract = parse(readFileSync(contractPath, "utf8")) as { components: { schemas: Record<string, OpenApiSchema> } };
const schemas = contract.components.schemas;

describe("schema derivation", () => {
  it("the declarations table has exactly one column per spec key, plus the store's own", async () => {
    const store = await openStore({ dataDir: "memory://" });
    try {
      const { rows } = await store.sql.query<{ column_name: string }>(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'declarations' ORDER BY column_name",
      );
      const expected = [...SPEC_KEYS.map(toSnakeCase), "generation", "op_id", "op_source", "created_at", "updated_at"].sort();
      expect(rows.map((r) => r.column_name).sort()).toEqual(expected);
    } finally {
      await store.close();
    }
  });

  it("the model's enums are the contract's enums", () => {
    expect([...ERROR_CODES]).toEqual(schemas.ErrorCode!.enum);
    expect([...STOP_REASONS]).toEqual(schemas.StopReason!.enum);
    expect([...RUNTIME_STATUSES]).toEqual(schemas.RuntimeRecord!.properties!.status!.enum);
  });

  it("a contract record has exactly the contract's RuntimeRecord properties", () => {
    const record = runtimeRecord();
    expect(Object.keys(toContractRecord(record)).sort()).toEqual(Object.keys(schemas.RuntimeRecord!.properties!).sort());
  });

  it("the HTTP extension validation and the SQL CHECKs refuse what the zod schema refuses", () => {
    for (const gameId of ["../x", "a/b", "", "x".repeat(300), "a\u0001b", "UPPER"]) {
      expect(RuntimeSpecSchema.safeParse({ gameId, imageRef: "galaxy/engine:1.0.0" }).success).toBe(false);
    }
    expect(RuntimeSpecSchema.safeParse({ gameId: "ok-1", imageRef: "galaxy/engine:1.0.0" }).success).toBe(true);
  });
});
