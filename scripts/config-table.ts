/**
 * The README's configuration table, generated from CONFIG_DOCS (the SETTINGS table
 * in src/configDocs.ts) so the two cannot drift (test/unit/readme-config-table.test.ts
 * fails when they do).
 *
 *   npx tsx scripts/config-table.ts           prints the table
 *   npx tsx scripts/config-table.ts --write   rewrites README.md between the markers
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CONFIG_DOCS } from "../src/config.js";
import { isMain } from "../src/isMain.js";

export const TABLE_START = "<!-- config-table:start -->";
export const TABLE_END = "<!-- config-table:end -->";
export const README_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../README.md");

function shownDefault(value: string | undefined): string {
  if (value === undefined) return "(unset)";
  if (value === "") return "(empty)";
  return `\`${value}\``;
}

/** One line per row, header first. */
export function configTableLines(): string[] {
  return [
    "| variable | default | what it does |",
    "| --- | --- | --- |",
    ...CONFIG_DOCS.map((s) => `| \`${s.env}\` | ${shownDefault(s.default)} | ${s.doc} |`),
  ];
}

/** The lines between the markers; throws when a marker is missing or out of order. */
export function readmeTableLines(readme: string): string[] {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`README.md needs ${TABLE_START} followed by ${TABLE_END}`);
  return readme
    .slice(start + TABLE_START.length, end)
    .split("\n")
    .filter((line) => line.trim() !== "");
}

/** The README with the generated table between the markers; everything else untouched. */
export function withGeneratedTable(readme: string): string {
  readmeTableLines(readme);
  const start = readme.indexOf(TABLE_START) + TABLE_START.length;
  const end = readme.indexOf(TABLE_END);
  return `${readme.slice(0, start)}\n${configTableLines().join("\n")}\n${readme.slice(end)}`;
}

if (isMain(import.meta.url)) {
  if (process.argv.includes("--write")) {
    const before = readFileSync(README_PATH, "utf8");
    const after = withGeneratedTable(before);
    if (after !== before) writeFileSync(README_PATH, after);
    console.error(after === before ? "README.md: configuration table already up to date" : "README.md: configuration table rewritten");
  } else {
    console.log(configTableLines().join("\n"));
  }
}
