/**
 * The closing line of `npm test` on a real vitest run with deliberately broken
 * test files (one that does not load, one whose afterAll throws after its test
 * passed): vitest's own JSON report counts 0 failed tests there, and the
 * summary must still say FAILED.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(path.join(os.tmpdir(), "rtm-broken-suite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function exitOf(cmd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(cmd, args, { cwd: repoRoot, timeout: 120_000 });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe("a deliberately broken test file", () => {
  it("makes the closing line say FAILED although vitest counted no failed test", async () => {
    const suite = path.join(dir, "suite");
    const reports = path.join(dir, "reports");
    await run("mkdir", ["-p", suite, reports]);
    writeFileSync(path.join(suite, "load.test.ts"), 'import { it } from "vitest";\nthrow new Error("this file does not load");\nit("never collected", () => {});\n');
    writeFileSync(path.join(suite, "after.test.ts"), 'import { afterAll, expect, it } from "vitest";\nafterAll(() => { throw new Error("afterAll broke"); });\nit("passes", () => { expect(1).toBe(1); });\n');
    writeFileSync(path.join(suite, "fine.test.ts"), 'import { expect, it } from "vitest";\nit("passes too", () => { expect(2).toBe(2); });\n');

    // As scripts/test.sh runs vitest: JSON report plus its exit code.
    const vitest = await exitOf(process.execPath, [
      path.join(repoRoot, "node_modules/vitest/vitest.mjs"), "run", "--root", suite, "--reporter=json", `--outputFile.json=${path.join(reports, "main.json")}`,
    ]);
    expect(vitest.code).not.toBe(0);
    writeFileSync(path.join(reports, "main.exit"), String(vitest.code));
    const { numFailedTests } = JSON.parse((await run("cat", [path.join(reports, "main.json")])).stdout) as { numFailedTests: number };
    expect(numFailedTests).toBe(0);

    const summary = await exitOf(process.execPath, [path.join(repoRoot, "scripts/test-summary.mjs"), reports, String(vitest.code), "main"]);
    const lines = summary.stdout.trim().split("\n");
    expect(summary.code).toBe(vitest.code);
    expect(lines.at(-2)).toBe(`FAILED (exit ${vitest.code})`);
    expect(lines.at(-1)).toBe("2 passed, 2 failed, 0 skipped");
    expect(lines.join("\n")).toContain("this file does not load");
    expect(lines.join("\n")).toContain("afterAll broke");
  });
});
