/**
 * Prints the combined results of a bench run: the machine, then one markdown
 * table of every row the bench files appended to the JSON-lines file given as
 * the first argument (scripts/bench.sh passes $BENCH_RESULTS).
 *
 *   npx tsx bench/report.ts results.jsonl
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { loadAverage, markdownTable, QUICK, type Row } from "./lib.js";

const file = process.argv[2];
if (!file || !existsSync(file)) {
  console.error("usage: tsx bench/report.ts <results.jsonl>");
  process.exit(2);
}
const rows: Row[] = readFileSync(file, "utf8")
  .split("\n")
  .filter((l) => l.startsWith("{"))
  .map((l) => JSON.parse(l) as Row & { type?: string })
  .filter((r) => r.type === "bench-row");

const dockerVersion = (() => {
  try {
    return execFileSync("docker", ["version", "--format", "{{.Server.Version}}"]).toString().trim();
  } catch {
    return "unknown";
  }
})();

console.log(`## rtmanager benchmarks${QUICK ? " (BENCH_QUICK smoke run: small N, short windows; not for the record)" : ""}\n`);
console.log(`- date: ${new Date().toISOString()}`);
console.log(`- machine: ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? "?"}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`);
console.log(`- Docker ${dockerVersion}, Node ${process.version}`);
const loads = process.env.BENCH_LOADLOG && existsSync(process.env.BENCH_LOADLOG)
  ? readFileSync(process.env.BENCH_LOADLOG, "utf8").split("\n").filter(Boolean).map(Number)
  : [];
if (loads.length > 0) {
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  console.log(`- 1-min load average during the run (every 15 s, ${loads.length} samples): mean ${mean.toFixed(1)}, max ${Math.max(...loads).toFixed(1)} on ${os.cpus().length} CPUs`);
}
console.log(`- code: ${process.env.BENCH_GIT ?? "unknown"} (at the start of the run)`);
console.log(`- load average (1/5/15 min) at the start: ${process.env.BENCH_LOAD_START ?? "unknown"}, at the end: ${loadAverage()}\n`);
console.log(markdownTable(rows));
const failed = rows.filter((r) => r.met === false);
console.log(`\n${rows.length} rows; ${failed.length} goal(s) not met${failed.length ? `: ${failed.map((r) => r.metric).join("; ")}` : ""}`);
