/**
 * The code's shape, kept: no source file over ~400 lines, and no function
 * anywhere in src/ over ~60, so one reconcile, one request and one startup
 * each stay readable top to bottom. Measured with the TypeScript parser, not
 * by guessing at braces.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 60;


function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith(".ts") ? [full] : [];
  });
}

function lineCount(file: string): number {
  return fs.readFileSync(file, "utf8").split("\n").length;
}

/** Every function-like node with a body, as name and length in lines. */
function functionLengths(file: string): { name: string; lines: number }[] {
  const text = fs.readFileSync(file, "utf8");
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { name: string; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && "body" in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = node.name && ts.isIdentifier(node.name) ? node.name.text : `<anonymous at ${start + 1}>`;
      out.push({ name, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe("code shape", () => {
  it(`no file under src/ is over ${MAX_FILE_LINES} lines`, () => {
    const long = sources(path.join(root, "src"))
      .map((f) => ({ file: path.relative(root, f), lines: lineCount(f) }))
      .filter((f) => f.lines > MAX_FILE_LINES);
    expect(long).toEqual([]);
  });

  it(`no function under src/ is over ${MAX_FUNCTION_LINES} lines`, () => {
    const long = sources(path.join(root, "src"))
      .flatMap((f) =>
        functionLengths(f)
          .filter((fn) => fn.lines > MAX_FUNCTION_LINES)
          .map((fn) => `${path.relative(root, f)}: ${fn.name} (${fn.lines} lines)`),
      );
    expect(long).toEqual([]);
  });
});
