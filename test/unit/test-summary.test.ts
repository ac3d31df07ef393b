/**
 * scripts/test-summary.mjs, the closing lines of `npm test`, on crafted vitest
 * JSON reports: a failed run must never close with "0 failed", and the last
 * line stays the plain `N passed, N failed, N skipped` CI reads.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../scripts/test-summary.mjs");

interface FileResult {
  name: string;
  status: "passed" | "failed";
  message?: string;
  tests: ("passed" | "failed" | "skipped")[];
}

/** A report shaped like vitest 4's JSON reporter writes it. */
function report(files: FileResult[]) {
  const all = files.flatMap((f) => f.tests);
  const failedFiles = files.filter((f) => f.status === "failed").length;
  return {
    numTotalTestSuites: files.length,
    numFailedTestSuites: failedFiles,
    numPassedTests: all.filter((t) => t === "passed").length,
    numFailedTests: all.filter((t) => t === "failed").length,
    numPendingTests: all.filter((t) => t === "skipped").length,
    numTodoTests: 0,
    success: failedFiles === 0 && !all.includes("failed"),
    testResults: files.map((f) => ({
      name: f.name,
      status: f.status,
      message: f.message ?? "",
      assertionResults: f.tests.map((status, i) => ({
        title: `t${i}`,
        fullName: `suite t${i}`,
        status,
        duration: 12.4,
        failureMessages: status === "failed" ? [`AssertionError: expected ${i} to be 0\n    at stack`] : [],
      })),
    })),
  };
}

const passing = (name: string, n: number): FileResult => ({ name, status: "passed", tests: Array<"passed">(n).fill("passed") });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "rtm-summary-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, body: unknown, exit?: number) {
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(body));
  if (exit !== undefined) writeFileSync(path.join(dir, `${name}.exit`), String(exit));
}

async function summary(status: number, ...expected: string[]): Promise<{ lines: string[]; code: number }> {
  try {
    const { stdout } = await run(process.execPath, [script, dir, String(status), ...expected]);
    return { lines: stdout.trim().split("\n"), code: 0 };
  } catch (err) {
    const e = err as { stdout: string; code: number };
    return { lines: e.stdout.trim().split("\n"), code: e.code };
  }
}

describe("the closing lines of npm test", () => {
  it("a clean run ends with the plain counts and no FAILED", async () => {
    write("main", report([passing("/r/test/unit/a.test.ts", 3), { name: "/r/test/unit/b.test.ts", status: "passed", tests: ["passed", "skipped"] }]), 0);
    const { lines, code } = await summary(0, "main");
    expect(code).toBe(0);
    expect(lines).toEqual(["4 passed, 0 failed, 1 skipped"]);
  });

  it("a file that failed to load counts as a failure although no test failed", async () => {
    write("main", report([passing("/r/a.test.ts", 2), { name: "/r/broken.test.ts", status: "failed", message: "Cannot find module './gone.js'", tests: [] }]), 1);
    const { lines, code } = await summary(1, "main");
    expect(code).toBe(1);
    expect(lines.at(-2)).toBe("FAILED (exit 1)");
    expect(lines.at(-1)).toBe("2 passed, 1 failed, 0 skipped");
    expect(lines.join("\n")).toContain("Cannot find module './gone.js'");
  });

  it("an afterAll that throws after passing tests, and a beforeAll that skipped its tests, are failures", async () => {
    write("main", report([
      { name: "/r/after.test.ts", status: "failed", message: "afterAll broke", tests: ["passed"] },
      { name: "/r/before.test.ts", status: "failed", message: "beforeAll broke", tests: ["skipped", "skipped"] },
    ]), 1);
    const { lines, code } = await summary(1, "main");
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe("1 passed, 2 failed, 2 skipped");
  });

  it("a run that exited non-zero with a clean report (an unhandled error) is a failure", async () => {
    write("main", report([passing("/r/a.test.ts", 2)]), 1);
    const { lines, code } = await summary(1, "main");
    expect(code).toBe(1);
    expect(lines.at(-2)).toBe("FAILED (exit 1)");
    expect(lines.at(-1)).toBe("2 passed, 1 failed, 0 skipped");
  });

  it("an expected report that is missing (a Node that never ran, a run killed by its budget) is a failure", async () => {
    write("main", report([passing("/r/a.test.ts", 5)]), 0);
    write("node22", report([passing("/r/a.test.ts", 5)]), 0);
    writeFileSync(path.join(dir, "node24.exit"), "124");
    // The status passed in was 0: the summary alone finds the failure and turns the exit code.
    const { lines, code } = await summary(0, "main", "node22", "node24", "node26");
    expect(code).toBe(1);
    expect(lines.join("\n")).toMatch(/node24: no report \(exit 124: over its time budget\)/);
    expect(lines.join("\n")).toMatch(/node26: no report/);
    expect(lines.at(-2)).toBe("FAILED (exit 1)");
    expect(lines.at(-1)).toBe("5 passed, 2 failed, 0 skipped");
  });

  it("matrix re-runs are reported on their own line, not added to the distinct tests; their failures are counted", async () => {
    write("main", report([passing("/r/a.test.ts", 10)]), 0);
    write("node22", report([passing("/r/a.test.ts", 4)]), 0);
    write("node24", report([{ name: "/r/a.test.ts", status: "failed", tests: ["passed", "passed", "passed", "failed"] }]), 1);
    const { lines, code } = await summary(1, "main", "node22", "node24");
    expect(code).toBe(1);
    expect(lines.at(-3)).toBe("matrix re-runs (the same tests on other Nodes, not in the passed count below): 7 passed, 1 failed, 0 skipped (node22 4/0/0, node24 3/1/0 passed/failed/skipped)");
    expect(lines.at(-2)).toBe("FAILED (exit 1)");
    expect(lines.at(-1)).toBe("10 passed, 1 failed, 0 skipped");
  });

  it("a non-zero status from outside vitest (tsc, eslint) says FAILED with that status and names the step", async () => {
    write("main", report([passing("/r/a.test.ts", 1)]), 0);
    writeFileSync(path.join(dir, "problems.txt"), "eslint failed\n");
    const { lines, code } = await summary(2, "main");
    expect(code).toBe(2);
    expect(lines).toContain("failure: eslint failed");
    expect(lines.at(-2)).toBe("FAILED (exit 2)");
    expect(lines.at(-1)).toBe("1 passed, 1 failed, 0 skipped");
  });

  it("a failed test is named with its file and first message line, so CI's tail says which one", async () => {
    write("main", report([{ name: path.join(process.cwd(), "test/e2e/x.test.ts"), status: "failed", tests: ["passed", "failed"] }]), 1);
    const { lines, code } = await summary(1, "main");
    expect(code).toBe(1);
    expect(lines).toContain("failed test: main: test/e2e/x.test.ts > suite t1: AssertionError: expected 1 to be 0 (after 12 ms)");
    expect(lines.at(-1)).toBe("1 passed, 1 failed, 0 skipped");
  });

  it("a Playwright timeout is named with the steps of its call log, which say what was awaited", async () => {
    const r = report([{ name: path.join(process.cwd(), "test/integration/ui.test.ts"), status: "failed", tests: ["failed"] }]);
    r.testResults[0]!.assertionResults[0]!.failureMessages = [
      "page.fill: Timeout 30000ms exceeded.\nCall log:\n  - waiting for locator('#token-input')\n    - locator resolved to <input id=\"token-input\">\n    - element is not visible\n    - retrying fill action\n    - element is not visible\n\n    at signedIn",
    ];
    write("main", r, 1);
    const { lines } = await summary(1, "main");
    expect(lines).toContain(
      "failed test: main: test/integration/ui.test.ts > suite t0: page.fill: Timeout 30000ms exceeded. [call log: waiting for locator('#token-input'); locator resolved to <input id=\"token-input\">; …; retrying fill action; element is not visible] (after 12 ms)",
    );
  });

  it("a test that passed only on its retry is named as flaky with its first failure, and does not fail the run", async () => {
    const r = report([{ name: path.join(process.cwd(), "test/integration/y.test.ts"), status: "passed", tests: ["passed", "passed"] }]);
    // What vitest writes for a retried test: passed, with the failed attempt's error kept.
    r.testResults[0]!.assertionResults[1]!.failureMessages = ["Error: expected 2 running, got 1\n    at stack"];
    write("main", r, 0);
    const { lines, code } = await summary(0, "main");
    expect(code).toBe(0);
    expect(lines).toContain("flaky test (failed, then passed on its retry): main: test/integration/y.test.ts > suite t1: Error: expected 2 running, got 1");
    expect(lines.at(-1)).toBe("2 passed, 0 failed, 0 skipped");
  });

  it("an unreadable report counts as missing", async () => {
    writeFileSync(path.join(dir, "main.json"), "{ truncated");
    const { lines, code } = await summary(0, "main");
    expect(code).toBe(1);
    expect(lines.at(-1)).toBe("0 passed, 1 failed, 0 skipped");
  });
});
