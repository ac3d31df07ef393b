// The closing lines of scripts/test.sh, from the vitest JSON reports of every
// run it made. A run can fail without a failed test: a file that does not
// load, a beforeAll/afterAll that throws (vitest marks the file failed and
// its tests skipped or passed), an unhandled error (only the exit code shows
// it), a run killed by its time budget or one that wrote no report at all.
// Each of those counts as a failure here, so the last line never says
// "0 failed" on a failed run.
//
//   node scripts/test-summary.mjs <report-dir> <status> <expected-run>...
//
// <report-dir>/<run>.json is the run's vitest JSON report and <run>.exit its
// exit code (optional); <report-dir>/problems.txt names failed steps outside
// vitest (tsc, eslint), one a line. The run named "main" holds the distinct tests; every
// other run (node22, ...) re-runs some of them on another Node and is reported
// on its own line. <status> is test.sh's status so far. Prints the summary and
// exits with the final status: <status> when it is not 0, else 1 when anything
// failed. The last line is always `N passed, N failed, N skipped`: passed and
// skipped count distinct tests (the main run), failed counts every failure of
// every run.
import console from "node:console";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** @param {string} file */
function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return null;
  }
}

/** @param {string} file */

/** `<run>: <file> > <test>`, as the closing lines name a test. */
function testName(run, file, assertion) {
  return `${run}: ${path.relative(process.cwd(), file.name ?? "?")} > ${assertion.fullName ?? assertion.title ?? "?"}`;
}

/**
 * The first line of a failure, and for a Playwright timeout the last steps of
 * its call log ("element is not visible", "waiting for …"): the first line
 * alone ("page.fill: Timeout 30000ms exceeded.") does not say what was awaited.
 */
function firstLine(messages) {
  const lines = String((messages ?? [])[0] ?? "no message").split("\n");
  let message = lines[0].slice(0, 300);
  const log = lines.findIndex((l) => l.trim() === "Call log:");
  if (log >= 0) {
    const steps = lines.slice(log + 1).map((l) => l.trim()).filter((l) => l.startsWith("- ")).map((l) => l.slice(2));
    if (steps.length > 0) message += ` [call log: ${steps.slice(0, 2).concat(steps.length > 4 ? ["…"] : [], steps.slice(Math.max(2, steps.length - 2))).join("; ").slice(0, 400)}]`;
  }
  return message;
}

function readExit(file) {
  try {
    const n = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/**
 * One run: its test counts, and the failures that are not failed tests.
 * @param {string} dir
 * @param {string} name
 */
export function readRun(dir, name) {
  const report = readJson(path.join(dir, `${name}.json`));
  const exit = readExit(path.join(dir, `${name}.exit`));
  const problems = [];
  if (!report || !Array.isArray(report.testResults)) {
    problems.push(`${name}: no report${exit !== null ? ` (exit ${exit}${exit === 124 ? ": over its time budget" : ""})` : ""}`);
    return { name, passed: 0, failed: 0, skipped: 0, files: 0, problems, failures: [] };
  }
  const passed = num(report.numPassedTests);
  const failed = num(report.numFailedTests);
  const skipped = num(report.numPendingTests) + num(report.numTodoTests);
  const failures = [];
  const flaky = [];
  for (const file of report.testResults) {
    const failedAssertions = (file.assertionResults ?? []).filter((a) => a.status === "failed");
    const failedTests = failedAssertions.length;
    // Named in the closing lines: CI keeps only the tail of the output, and
    // "1 failed" without the test's name sends the reader to rerun everything.
    for (const a of failedAssertions) {
      let message = firstLine(a.failureMessages);
      // vitest keeps only a placeholder stack for a test that ran out of time.
      if (message === "Error: STACK_TRACE_ERROR") message = "no message in the report (a test timeout reads like this)";
      const took = typeof a.duration === "number" ? ` (after ${Math.round(a.duration)} ms)` : "";
      failures.push(`${testName(name, file, a)}: ${message}${took}`);
    }
    // CI retries a failed test once (scripts/test.sh): one that passed on its
    // retry keeps its first failure, and is named so a flake is never silent.
    for (const a of (file.assertionResults ?? []).filter((x) => x.status === "passed" && (x.failureMessages ?? []).length > 0)) {
      flaky.push(`${testName(name, file, a)}: ${firstLine(a.failureMessages)}`);
    }
    // A failed file without a failed test: it did not load, or a hook threw.
    if (file.status === "failed" && failedTests === 0) {
      problems.push(`${name}: ${path.relative(process.cwd(), file.name ?? "?")} failed outside its tests: ${String(file.message || "no message").split("\n")[0]}`);
    }
  }
  if (problems.length === 0 && failed === 0) {
    if (report.success === false) problems.push(`${name}: vitest reported the run as failed`);
    else if (exit !== null && exit !== 0) problems.push(`${name}: exited ${exit}${exit === 124 ? " (over its time budget)" : " (an unhandled error, or a crash after the report)"}`);
  }
  return { name, passed, failed, skipped, files: report.testResults.length, problems, failures, flaky };
}

/**
 * @param {string} dir
 * @param {number} status
 * @param {string[]} expected
 * @returns {{ lines: string[], status: number }}
 */
export function summarise(dir, status, expected) {
  const runs = expected.map((name) => readRun(dir, name));
  // Steps outside vitest that failed (tsc, eslint), one a line.
  const steps = (() => {
    try {
      return fs.readFileSync(path.join(dir, "problems.txt"), "utf8").split("\n").filter(Boolean);
    } catch {
      return [];
    }
  })();
  runs.push({ name: "steps", passed: 0, failed: 0, skipped: 0, files: 0, problems: steps, failures: [] });
  const main = runs.find((r) => r.name === "main") ?? { passed: 0, failed: 0, skipped: 0, files: 0, problems: [] };
  const reruns = runs.filter((r) => r.name !== "main" && r.name !== "steps");
  const lines = [];
  const problems = runs.flatMap((r) => r.problems);
  for (const f of runs.flatMap((r) => r.flaky ?? [])) lines.push(`flaky test (failed, then passed on its retry): ${f}`);
  for (const f of runs.flatMap((r) => r.failures ?? [])) lines.push(`failed test: ${f}`);
  for (const p of problems) lines.push(`failure: ${p}`);
  const failed = runs.reduce((n, r) => n + r.failed + r.problems.length, 0);
  if (reruns.length > 0) {
    const per = reruns.map((r) => `${r.name} ${r.passed}/${r.failed}/${r.skipped}`).join(", ");
    const sum = (k) => reruns.reduce((n, r) => n + r[k], 0);
    lines.push(`matrix re-runs (the same tests on other Nodes, not in the passed count below): ${sum("passed")} passed, ${sum("failed")} failed, ${sum("skipped")} skipped (${per} passed/failed/skipped)`);
  }
  const final = status !== 0 ? status : failed > 0 ? 1 : 0;
  if (final !== 0) lines.push(`FAILED (exit ${final})`);
  lines.push(`${main.passed} passed, ${failed} failed, ${main.skipped} skipped`);
  return { lines, status: final };
}

// Run as a script (not when a test imports it).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, statusArg, ...expected] = process.argv.slice(2);
  if (!dir || statusArg === undefined || expected.length === 0) {
    console.error("usage: node scripts/test-summary.mjs <report-dir> <status> <expected-run>...");
    process.exit(2);
  }
  const { lines, status } = summarise(dir, Number(statusArg) || 0, expected);
  for (const line of lines) console.log(line);
  process.exit(status);
}
