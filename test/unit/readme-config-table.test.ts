/**
 * The README's configuration table is generated from CONFIG_DOCS
 * (scripts/config-table.ts --write); this fails, row by row, when either was
 * edited without the other.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { README_PATH, TABLE_END, TABLE_START, configTableLines, readmeTableLines, withGeneratedTable } from "../../scripts/config-table.js";
import { CONFIG_DOCS } from "../../src/config.js";

const readme = readFileSync(README_PATH, "utf8");
const rowName = (line: string) => /^\| `([A-Z_]+)`/.exec(line)?.[1] ?? line;

describe("README configuration table", () => {
  it("has one row per CONFIG_DOCS setting, in the same order", () => {
    expect(readmeTableLines(readme).slice(2).map(rowName)).toEqual(CONFIG_DOCS.map((s) => s.env));
  });

  it.each(configTableLines().map((line, i) => [rowName(line), i, line] as const))("row %s is what CONFIG_DOCS generates", (_name, i, line) => {
    expect(readmeTableLines(readme)[i], "run: npx tsx scripts/config-table.ts --write").toBe(line);
  });

  it("--write replaces only what lies between the markers", () => {
    const stale = `# x\n\nbefore\n\n${TABLE_START}\n| old | table |\n${TABLE_END}\n\nafter\n`;
    const written = withGeneratedTable(stale);
    expect(written.startsWith(`# x\n\nbefore\n\n${TABLE_START}\n`)).toBe(true);
    expect(written.endsWith(`\n${TABLE_END}\n\nafter\n`)).toBe(true);
    expect(readmeTableLines(written)).toEqual(configTableLines());
    expect(withGeneratedTable(written)).toBe(written);
    expect(() => withGeneratedTable("no markers")).toThrow(TABLE_START);
  });
});
