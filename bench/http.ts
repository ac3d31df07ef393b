/**
 * Issue 3's benchmark.
 *
 *  1. With N runtimes declared by plain SQL and converged: GET one record and
 *     GET the list under load (autocannon, 16 connections, 10 s; 3 s quick)
 *     against rtmanager's HTTP server on 127.0.0.1 (node dist/src/main.js,
 *     what the image runs, when `npm run build` has made it; else tsx), and against a bare
 *     node:http server (bench/bare-server.ts, its own process) answering the
 *     same paths with the same JSON bytes, fetched once from rtmanager. Both
 *     servers and autocannon share the 2 cores; the order alternates.
 *  2. Start-to-200 of one runtime: POST .../start over HTTP until the 200
 *     answer, against raw dockerode create + start of the same container,
 *     alternating, median of 10 (3 quick).
 *
 *   npx tsx bench/http.ts          (BENCH_QUICK=1 for a smoke run)
 */
import { writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon, { type Result } from "autocannon";
import pg from "pg";
import { TEST_IMAGES, uniqueInstance, waitFor } from "../test/helpers/docker.js";
import {
  builtControllerAvailable,
  builtNote,
  removeInstanceContainers,
  cpuSeconds,
  emit,
  fmtMs,
  httpRequest,
  loadAverage,
  median,
  onCleanup,
  pollConverged,
  QUICK,
  rawCreateStart,
  round,
  runBench,
  say,
  sleep,
  spawnTracked,
  startController,
  tmpLog,
  dockerBenchEnvironment,
} from "./lib.js";

const GAMES = QUICK ? 30 : 200;
const DURATION_S = QUICK ? 3 : 10;
const CONNECTIONS = 16;
const ROUNDS = QUICK ? 1 : 2;
const START_REPS = QUICK ? 3 : 10;
const INTERNAL = "/api/v1/internal/runtimes";

interface LoadResult {
  reqPerSec: number;
  /** autocannon's latencies are whole milliseconds. */
  p50: number;
  p99: number;
  meanMs: number;
  total: number;
  /** CPU of the server process during the window, % of one core. */
  serverCpuPct: number;
  /** CPU of the PostgreSQL backends serving it (rtmanager only), % of one core. */
  dbCpuPct: number;
}

function cpuOf(pids: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of pids) {
    try {
      m.set(pid, cpuSeconds(pid));
    } catch {
      // gone
    }
  }
  return m;
}

async function load(port: number, pathName: string, durationS: number, serverPid: number, dbPids: () => Promise<number[]> = async () => []): Promise<LoadResult> {
  const db0 = cpuOf(await dbPids());
  const cpu0 = cpuSeconds(serverPid);
  const t0 = performance.now();
  const r: Result = await autocannon({ url: `http://127.0.0.1:${port}${pathName}`, connections: CONNECTIONS, duration: durationS });
  const elapsedS = (performance.now() - t0) / 1000;
  const serverCpuPct = round(((cpuSeconds(serverPid) - cpu0) / elapsedS) * 100);
  let dbCpu = 0;
  for (const [pid, after] of cpuOf([...db0.keys()])) dbCpu += after - db0.get(pid)!;
  const dbCpuPct = round((dbCpu / elapsedS) * 100);
  if (r.errors > 0 || r.non2xx > 0 || r.timeouts > 0) {
    throw new Error(`load on 127.0.0.1:${port}${pathName}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx answers`);
  }
  return { reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, meanMs: round(r.latency.average, 2), total: r.requests.total, serverCpuPct, dbCpuPct };
}

async function startBare(files: { one: string; list: string; onePath: string; listPath: string; contentType: string }): Promise<{ port: number; pid: number }> {
  const child = spawnTracked(["--import", "tsx", path.join("bench", "bare-server.ts")], {
    BARE_ONE_FILE: files.one,
    BARE_LIST_FILE: files.list,
    BARE_ONE_PATH: files.onePath,
    BARE_LIST_PATH: files.listPath,
    BARE_CONTENT_TYPE: files.contentType,
  });
  onCleanup("bare server", async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    await Promise.race([new Promise((r) => child.once("exit", r)), sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve({ port: Number(m[1]), pid: child.pid! });
    });
    child.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
    setTimeout(() => reject(new Error("bare server did not start within 30 s")), 30_000).unref();
  });
}

async function main(): Promise<void> {
  say(`http bench${QUICK ? " (BENCH_QUICK)" : ""}: ${GAMES} runtimes, ${CONNECTIONS} connections x ${DURATION_S} s, ${ROUNDS} round(s), load ${loadAverage()}`);
  const { pg: pgServer, network, stateRoot } = await dockerBenchEnvironment();

  const instance = uniqueInstance("bench-http");
  onCleanup(`containers of ${instance}`, () => removeInstanceContainers(instance));
  const dbName = `bench_http_${process.pid}`;
  const url = await pgServer.createDatabase(dbName);
  const controllerKind = builtControllerAvailable() ? "built" : "tsx";
  const controller = await startController(
    controllerKind,
    {
      DATABASE_URL: url,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_DOCKER_NETWORK: network,
      RTMANAGER_STATE_ROOT: path.join(stateRoot, instance),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
      RTMANAGER_CONCURRENCY: "8",
    },
    tmpLog(instance),
  );
  const prefix = `h${instance.slice(-8)}`;
  await pgServer.query("INSERT INTO declarations (game_id, image_ref) SELECT $1 || '-' || i, $2 FROM generate_series(1, $3::int) i", [prefix, TEST_IMAGES.v100, GAMES], dbName);
  await pollConverged(instance, GAMES, 60_000 + GAMES * 2_000);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  onCleanup("sql client", () => sql.end());
  await waitFor(
    "every record running",
    async () => {
      const r = await sql.query<{ n: string }>("SELECT count(*) AS n FROM runtime_records WHERE status = 'running'");
      return Number(r.rows[0]!.n) === GAMES ? true : undefined;
    },
    60_000,
    200,
  );
  say(`${GAMES} runtimes converged; load ${loadAverage()}`);

  // The bodies rtmanager answers, served byte for byte by the bare server.
  const onePath = `${INTERNAL}/${prefix}-1`;
  const one = await httpRequest(controller.port, "GET", onePath);
  const list = await httpRequest(controller.port, "GET", INTERNAL);
  if (one.status !== 200 || list.status !== 200) throw new Error(`GET answered ${one.status} / ${list.status}`);
  const listed = (JSON.parse(list.body) as { items?: unknown[] }).items?.length;
  const files = { one: path.join(os.tmpdir(), `rtm-bench-${process.pid}-one.json`), list: path.join(os.tmpdir(), `rtm-bench-${process.pid}-list.json`) };
  writeFileSync(files.one, one.body);
  writeFileSync(files.list, list.body);
  onCleanup("body files", () => Promise.all([rm(files.one, { force: true }), rm(files.list, { force: true })]).then(() => undefined));
  const bare = await startBare({ ...files, onePath, listPath: INTERNAL, contentType: String(one.headers["content-type"]) });
  const check = await httpRequest(bare.port, "GET", INTERNAL);
  if (check.body !== list.body) throw new Error("the bare server does not answer the same bytes");

  // The controller's PostgreSQL backends (same host), whose CPU is part of what a GET costs.
  const backendPids = async () =>
    (await sql.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName])).rows.map((r) => r.pid);
  const targets = [
    { name: "GET one record", path: onePath, bytes: Buffer.byteLength(one.body) },
    { name: `GET the list (${listed ?? "?"} records)`, path: INTERNAL, bytes: Buffer.byteLength(list.body) },
  ];
  for (const t of targets) {
    const rtm: LoadResult[] = [];
    const bareRes: LoadResult[] = [];
    for (let round_ = 1; round_ <= ROUNDS; round_++) {
      const order = round_ % 2 === 1 ? (["rtm", "bare"] as const) : (["bare", "rtm"] as const);
      for (const which of order) {
        const [port, pid] = which === "rtm" ? [controller.port, controller.pid] : [bare.port, bare.pid];
        const dbPids = which === "rtm" ? backendPids : undefined;
        await load(port, t.path, 1, pid, dbPids); // warm-up, not counted
        const r = await load(port, t.path, DURATION_S, pid, dbPids);
        (which === "rtm" ? rtm : bareRes).push(r);
        say(`${t.name} ${which}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.p50} ms, p99 ${r.p99} ms, server CPU ${r.serverCpuPct} %, PostgreSQL backends ${r.dbCpuPct} %; load ${loadAverage()}`);
      }
    }
    const rps = median(rtm.map((r) => r.reqPerSec));
    const bareRps = median(bareRes.map((r) => r.reqPerSec));
    const ratio = rps / bareRps;
    const fmt = (xs: LoadResult[]) =>
      `${Math.round(median(xs.map((r) => r.reqPerSec)))} req/s, p50 ${median(xs.map((r) => r.p50))} ms, p99 ${median(xs.map((r) => r.p99))} ms, server CPU ${Math.round(median(xs.map((r) => r.serverCpuPct)))} %` +
      (xs.some((r) => r.dbCpuPct > 0) ? ` + PostgreSQL ${Math.round(median(xs.map((r) => r.dbCpuPct)))} %` : "");
    emit({
      bench: "http",
      metric: `${t.name}, ${t.bytes} B`,
      rtmanager: fmt(rtm),
      baseline: `${fmt(bareRes)} bare node:http`,
      ratio,
      goal: "req/s ratio >= 0.5",
      met: ratio >= 0.5,
      note: `autocannon ${CONNECTIONS} connections x ${DURATION_S} s, median of ${ROUNDS}, ${GAMES} runtimes; rtmanager ran ${controllerKind === "built" ? "node dist/src/main.js" : "under tsx"}${builtNote() && controllerKind === "built" ? ` (${builtNote()})` : ""}`,
      data: { path: t.path, bytes: t.bytes, rtm, bare: bareRes, ratio: round(ratio, 3) },
    });
  }

  // Start-to-200 of one runtime vs raw dockerode create + start.
  const rawInstance = uniqueInstance("bench-raw");
  onCleanup(`containers of ${rawInstance}`, () => removeInstanceContainers(rawInstance));
  const rtmMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 1; i <= START_REPS; i++) {
    const order = i % 2 === 1 ? (["rtm", "raw"] as const) : (["raw", "rtm"] as const);
    for (const which of order) {
      if (which === "rtm") {
        const gameId = `${prefix}-s${i}`;
        const t0 = performance.now();
        const r = await httpRequest(controller.port, "POST", `${INTERNAL}/${gameId}/start`, { image_ref: TEST_IMAGES.v100 });
        const ms = performance.now() - t0;
        if (r.status !== 200) throw new Error(`start ${gameId} answered ${r.status}: ${r.body}`);
        rtmMs.push(ms);
      } else {
        const gameId = `r${rawInstance.slice(-8)}-s${i}`;
        const t0 = performance.now();
        await rawCreateStart({ instance: rawInstance, gameId, image: TEST_IMAGES.v100, network, stateRoot: path.join(stateRoot, rawInstance) });
        rawMs.push(performance.now() - t0);
      }
    }
    await sleep(300);
  }
  const ratio = median(rtmMs) / median(rawMs);
  say(`start-to-200: rtmanager ${rtmMs.map((x) => Math.round(x)).join(", ")} ms; raw ${rawMs.map((x) => Math.round(x)).join(", ")} ms`);
  emit({
    bench: "http",
    metric: `start one runtime, POST .../start until 200, median of ${START_REPS}`,
    rtmanager: fmtMs(median(rtmMs)),
    baseline: `${fmtMs(median(rawMs))} raw dockerode create+start`,
    ratio,
    goal: "ratio <= 1.15",
    met: ratio <= 1.15,
    note: `alternating; ${GAMES} other runtimes running; min ${fmtMs(Math.min(...rtmMs))} vs ${fmtMs(Math.min(...rawMs))}`,
    data: { rtmMs: rtmMs.map((x) => round(x)), rawMs: rawMs.map((x) => round(x)) },
  });
  await controller.stop();
}

await runBench("http", QUICK ? 6 * 60_000 : 15 * 60_000, main);
