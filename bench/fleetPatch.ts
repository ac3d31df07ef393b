/**
 * Issue 18's fleet rollout benchmark, Docker runtime, PostgreSQL, defaults
 * (8 workers, RTMANAGER_PATCH_MIN_HEALTHY=5s).
 *
 *  1. Fleet patch: N running games, then N concurrent POST .../patch to the
 *     next patch release (galaxy/test-engine:1.0.0 -> 1.0.1). Wall time from
 *     the first request sent to the last answer, against its floor in the
 *     same run: raw dockerode swapping N containers of the same shape at the
 *     same parallelism (all N at once: stop, remove, create, start, until
 *     /healthz answers), plus the healthy window every patch must hold.
 *  2. A new start during that fleet patch: POST .../start of a new game one
 *     second into it, against the same start with the controller idle
 *     (median of a few, taken before the patch).
 *
 *   npx tsx bench/fleetPatch.ts                 N = 40 and 200
 *   BENCH_QUICK=1 npx tsx bench/fleetPatch.ts   N = 10
 *   BENCH_FLEET_N=40 npx tsx bench/fleetPatch.ts
 */
import http from "node:http";
import path from "node:path";
import pg from "pg";
import { LABELS } from "../src/runtime/docker/labels.js";
import { TEST_IMAGES, uniqueInstance, waitFor } from "../test/helpers/docker.js";
import { startPostgres } from "../test/helpers/postgres.js";
import {
  builtControllerAvailable,
  docker,
  emit,
  fmtMs,
  httpRequest,
  listInstance,
  loadAverage,
  mapLimit,
  median,
  onCleanup,
  patchedAt,
  pollConverged,
  publishedPort,
  QUICK,
  rawCreateStart,
  removeInstanceContainers,
  round,
  runBench,
  say,
  sleep,
  startController,
  tmpLog,
  dockerBenchEnvironment,
} from "./lib.js";

const INTERNAL = "/api/v1/internal/runtimes";
const MIN_HEALTHY_MS = 5_000;
const STOP_TIMEOUT_S = 30;
const IDLE_STARTS = 3;
const SIZES = process.env.BENCH_FLEET_N ? process.env.BENCH_FLEET_N.split(",").map(Number) : QUICK ? [10] : [40, 200];
const wallNow = () => performance.timeOrigin + performance.now();

function healthz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/healthz", agent: false, timeout: 500 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode === 200));
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
  });
}

/** The floor's swap of one container, as the controller's patch does it: stop, remove, create and start on the new image, then /healthz. */
async function rawSwap(instance: string, gameId: string, network: string, stateRoot: string, image: string): Promise<void> {
  const old = (await listInstance(instance)).find((c) => c.Labels[LABELS.gameId] === gameId);
  if (old) {
    const c = docker.getContainer(old.Id);
    await c.stop({ t: STOP_TIMEOUT_S }).catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 304) throw err;
    });
    await c.remove({ force: true });
  }
  const id = await rawCreateStart({ instance, gameId, image, network, stateRoot });
  const port = await publishedPort(id);
  if (!port) throw new Error(`raw ${gameId}: no published port`);
  await waitFor(`raw ${gameId} healthy`, async () => (await healthz(port)) || undefined, 60_000, 20);
}

/** Raw dockerode, N containers swapped all at once: the fleet patch's floor without the healthy window. */
async function rawFleetSwap(n: number, network: string, stateRoot: string): Promise<number> {
  const instance = uniqueInstance("bench-fleetraw");
  onCleanup(`containers of ${instance}`, () => removeInstanceContainers(instance));
  const games = Array.from({ length: n }, (_, i) => `fr${instance.slice(-6)}-${i + 1}`);
  await mapLimit(games, 8, (g) => rawCreateStart({ instance, gameId: g, image: TEST_IMAGES.v100, network, stateRoot }));
  await pollConverged(instance, n, 60_000 + n * 2_000);
  const t0 = wallNow();
  await mapLimit(games, n, (g) => rawSwap(instance, g, network, stateRoot, TEST_IMAGES.v101));
  const ms = wallNow() - t0;
  await removeInstanceContainers(instance);
  return ms;
}

async function startGame(port: number, gameId: string): Promise<{ ms: number; status: number }> {
  const t0 = wallNow();
  const r = await httpRequest(port, "POST", `${INTERNAL}/${gameId}/start`, { image_ref: TEST_IMAGES.v100 }, 300_000);
  return { ms: wallNow() - t0, status: r.status };
}

async function fleetRun(n: number, ctx: { pg: Awaited<ReturnType<typeof startPostgres>>; network: string; stateRoot: string }): Promise<void> {
  const instance = uniqueInstance("bench-fleet");
  onCleanup(`containers of ${instance}`, () => removeInstanceContainers(instance));
  const url = await ctx.pg.createDatabase(`bench_fleet_${n}_${process.pid}`);
  const kind = builtControllerAvailable() ? "built" : "tsx";
  const controller = await startController(
    kind,
    {
      DATABASE_URL: url,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_DOCKER_NETWORK: ctx.network,
      RTMANAGER_STATE_ROOT: path.join(ctx.stateRoot, instance),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
      RTMANAGER_PATCH_MIN_HEALTHY: `${MIN_HEALTHY_MS}ms`,
      RTMANAGER_CONTAINER_STOP_TIMEOUT: `${STOP_TIMEOUT_S}s`,
      // Long enough for the slowest call the bench can cause; the bench measures, it does not time out.
      RTMANAGER_OP_TIMEOUT: "600s",
    },
    tmpLog(instance),
  );
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  try {
    const prefix = `f${instance.slice(-6)}`;
    const games = Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
    await sql.query("INSERT INTO declarations (game_id, image_ref) SELECT unnest($1::text[]), $2", [games, TEST_IMAGES.v100]);
    await pollConverged(instance, n, 60_000 + n * 2_000);
    // Every game recorded running: a patch needs the record of a running engine.
    await waitFor(
      "records running",
      async () => (await sql.query("SELECT count(*)::int AS c FROM runtime_records WHERE status = 'running'")).rows[0].c >= n || undefined,
      120_000,
      200,
    );
    await sleep(2_000);

    const idle: number[] = [];
    for (let i = 1; i <= IDLE_STARTS; i++) {
      const r = await startGame(controller.port, `${prefix}-idle${i}`);
      if (r.status !== 200) throw new Error(`idle start ${i}: ${r.status}`);
      idle.push(r.ms);
      await sleep(500);
    }
    say(`N=${n}: idle start ${idle.map(fmtMs).join(", ")}`);

    const t0 = wallNow();
    // Handled at once: a call the controller's HTTP server cuts (Node's 300 s requestTimeout) must not crash the bench.
    const patches = games.map((g) =>
      httpRequest(controller.port, "POST", `${INTERNAL}/${g}/patch`, { image_ref: TEST_IMAGES.v101 }, 900_000).then(
        (r) => ({ status: r.status, body: r.body, at: wallNow() }),
        (err: unknown) => ({ status: 0, body: (err as Error).message, at: wallNow() }),
      ),
    );
    await sleep(1_000);
    const duringCall = startGame(controller.port, `${prefix}-during`).catch((err: unknown) => ({ ms: NaN, status: 0, why: (err as Error).message }));
    // When the store shows every game patched (what the REST waiters wait for), whether or not each call got its answer.
    const doneAt = await patchedAt(sql, games, TEST_IMAGES.v101, 1_200_000);
    const answers = await Promise.all(patches);
    const during = await duringCall;
    const duringRecordedAt = await patchedAt(sql, [`${prefix}-during`], TEST_IMAGES.v100, 600_000);
    const duringMs = during.status === 200 ? during.ms : duringRecordedAt - (t0 + 1_000);
    const fleetMs = doneAt - t0;
    const cut = answers.filter((a) => a.status !== 200);
    if (cut.some((a) => a.status !== 0)) throw new Error(`N=${n}: patches failed, first ${cut[0]!.status} ${cut[0]!.body}`);
    const answered = `${answers.length - cut.length} of ${n} calls answered 200${cut.length > 0 ? `, ${cut.length} cut unanswered (${cut[0]!.body})` : ""}; the start during it ${during.status === 200 ? "answered 200" : `was cut (${"why" in during ? during.why : during.status}), timed to its record`}`;
    say(`N=${n}: fleet patch ${fmtMs(fleetMs)}, start during it ${fmtMs(duringMs)}; ${answered}`);
    await controller.stop();
    await removeInstanceContainers(instance);

    const rawMs = await rawFleetSwap(n, ctx.network, ctx.stateRoot);
    const floor = rawMs + MIN_HEALTHY_MS;
    say(`N=${n}: raw swap of ${n} at once ${fmtMs(rawMs)}, floor ${fmtMs(floor)}`);
    const idleMs = median(idle);
    emit({
      bench: "fleetPatch",
      metric: `fleet patch, Docker, N=${n}: ${n} concurrent POST .../patch 1.0.0 -> 1.0.1, first sent to last answered`,
      rtmanager: fmtMs(fleetMs),
      baseline: `${fmtMs(floor)} = raw dockerode swap of ${n} at once ${fmtMs(rawMs)} + RTMANAGER_PATCH_MIN_HEALTHY ${fmtMs(MIN_HEALTHY_MS)}`,
      ratio: fleetMs / floor,
      goal: "ratio <= 2",
      met: fleetMs / floor <= 2,
      note: `${kind} controller, defaults (8 workers); until the store shows all ${n} patched; ${answered}; load ${loadAverage()}`,
      data: { n, fleetMs: round(fleetMs), rawMs: round(rawMs), floorMs: round(floor), lastAnswerMs: round(Math.max(...answers.map((a) => a.at)) - t0) },
    });
    emit({
      bench: "fleetPatch",
      metric: `new POST .../start 1 s into the fleet patch of N=${n}, against the same start idle`,
      rtmanager: fmtMs(duringMs),
      baseline: `${fmtMs(idleMs)} idle (median of ${IDLE_STARTS})`,
      ratio: duringMs / idleMs,
      goal: "ratio <= 2",
      met: duringMs / idleMs <= 2,
      note: `${kind} controller; load ${loadAverage()}`,
      data: { n, duringMs: round(duringMs), idleMs: idle.map((x) => round(x)) },
    });
  } finally {
    await sql.end().catch(() => undefined);
    await controller.stop();
    await removeInstanceContainers(instance);
  }
}

async function main(): Promise<void> {
  say(`fleet patch bench${QUICK ? " (BENCH_QUICK)" : ""}: N = ${SIZES.join(", ")}, load ${loadAverage()}`);
  const { pg: pgServer, network, stateRoot } = await dockerBenchEnvironment();
  for (const n of SIZES) await fleetRun(n, { pg: pgServer, network, stateRoot });
}

await runBench("fleetPatch", QUICK ? 8 * 60_000 : 22 * 60_000, main);
