/**
 * Issue 6's benchmark.
 *
 *  1. Patch downtime: the time an engine does not answer GET /healthz on its
 *     port published on 127.0.0.1 (polled every 10 ms, 200 ms timeout per
 *     probe) during a patch galaxy/test-engine:1.0.0 -> 1.0.1 through
 *     rtmanager (POST .../patch), against `docker service update --image
 *     --update-order stop-first` of Docker Swarm with the same images, in the
 *     same run. rtmanager publishes a new host port for the new container, so
 *     the poller follows dockerd's `start` event for the game (inspect -> new
 *     port); Swarm's host-mode port is fixed.
 *  2. Rollback of a failing patch (1.0.0 -> 1.0.3, which never serves
 *     /healthz) with RTMANAGER_PATCH_HEALTH_TIMEOUT stated below: the call's
 *     latency and the old engine's downtime.
 *
 *   npx tsx bench/patch.ts          (BENCH_QUICK=1 for a smoke run)
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { LABELS } from "../src/runtime/docker/labels.js";
import { TEST_IMAGES, uniqueInstance, waitFor } from "../test/helpers/docker.js";
import {
  removeInstanceContainers,
  docker,
  emit,
  fmtMs,
  freePort,
  httpRequest,
  listInstance,
  loadAverage,
  median,
  onCleanup,
  publishedPort,
  QUICK,
  round,
  runBench,
  say,
  sleep,
  startController,
  tapEvents,
  tmpLog,
  type EventTap,
  dockerBenchEnvironment,
} from "./lib.js";

const run = promisify(execFile);

const PATCH_REPS = QUICK ? 2 : 5;
const ROLLBACK_REPS = QUICK ? 1 : 2;
/** Stated shorter than the 60 s default to bound the run; downtime of a rollback grows with it one for one. */
const PATCH_HEALTH_TIMEOUT = "15s";
const POLL_MS = 10;
const PROBE_TIMEOUT_MS = 200;
const INTERNAL = "/api/v1/internal/runtimes";

const wallNow = () => performance.timeOrigin + performance.now();

function probe(port: number, pathName = "/healthz"): Promise<{ ok: boolean; body: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, body = "") => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ok, body });
    };
    const req = http.get({ host: "127.0.0.1", port, path: pathName, agent: false }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => finish((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300, body.trim()));
      res.on("error", () => finish(false));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(false);
    }, PROBE_TIMEOUT_MS);
    req.on("error", () => finish(false));
  });
}

/**
 * Polls 127.0.0.1:<port>/healthz every 10 ms and records (time, ok). With a
 * tap, the port follows the game's newest started container.
 */
class HealthPoller {
  readonly samples: { t: number; ok: boolean }[] = [];
  private running = true;
  private readonly loop: Promise<void>;
  private seenEvents = 0;
  private currentId: string | null = null;

  constructor(
    private port: number,
    private readonly follow?: { tap: EventTap; gameId: string; containerId: string },
  ) {
    this.currentId = follow?.containerId ?? null;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const t = wallNow();
      this.followPort();
      const { ok } = await probe(this.port);
      this.samples.push({ t, ok });
      const wait = t + POLL_MS - wallNow();
      if (wait > 0) await sleep(wait);
    }
  }

  private followPort(): void {
    const f = this.follow;
    if (!f || f.tap.events.length === this.seenEvents) return;
    this.seenEvents = f.tap.events.length;
    const latest = f.tap.events.filter((e) => e.gameId === f.gameId && e.action === "start").at(-1);
    if (!latest || latest.id === this.currentId) return;
    this.currentId = latest.id;
    void publishedPort(latest.id)
      .then((p) => {
        if (p && this.currentId === latest.id) this.port = p;
      })
      .catch(() => {});
  }

  get currentPort(): number {
    return this.port;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Total time not answering after `from`: each outage runs from its first failed probe to the next successful one. */
  downtime(from: number): { totalMs: number; outages: number; unresolved: boolean } {
    let total = 0;
    let outages = 0;
    let downSince: number | null = null;
    for (const s of this.samples) {
      if (s.t < from) continue;
      if (!s.ok && downSince === null) {
        downSince = s.t;
        outages++;
      } else if (s.ok && downSince !== null) {
        total += s.t - downSince;
        downSince = null;
      }
    }
    return { totalMs: total, outages, unresolved: downSince !== null };
  }
}

async function dockerCli(args: string[], timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run("docker", args, { timeout: timeoutMs });
  return stdout.trim();
}

// ------------------------------------------------------------------ rtmanager side

interface RtmSide {
  port: number;
  instance: string;
  prefix: string;
}

async function startGame(side: RtmSide, gameId: string): Promise<{ containerId: string; port: number }> {
  const r = await httpRequest(side.port, "POST", `${INTERNAL}/${gameId}/start`, { image_ref: TEST_IMAGES.v100 });
  if (r.status !== 200) throw new Error(`start ${gameId}: ${r.status} ${r.body}`);
  const cs = (await listInstance(side.instance)).filter((c) => c.Labels[LABELS.gameId] === gameId && c.State === "running");
  if (cs.length !== 1) throw new Error(`start ${gameId}: ${cs.length} running containers`);
  const port = await publishedPort(cs[0]!.Id);
  if (!port) throw new Error(`start ${gameId}: no published port`);
  await waitFor(`${gameId} healthy`, async () => (await probe(port)).ok || undefined, 30_000, 20);
  return { containerId: cs[0]!.Id, port };
}

async function rtmPatch(side: RtmSide, i: number, target: string): Promise<{ downMs: number; callMs: number; outages: number; status: number; body: string; version: string }> {
  const gameId = `${side.prefix}-${target === TEST_IMAGES.unhealthy ? "rb" : "p"}${i}`;
  const tap = await tapEvents(side.instance, ["start"]);
  try {
    const { containerId, port } = await startGame(side, gameId);
    const poller = new HealthPoller(port, { tap, gameId, containerId });
    await sleep(300);
    const t0 = wallNow();
    const r = await httpRequest(side.port, "POST", `${INTERNAL}/${gameId}/patch`, { image_ref: target });
    const callMs = wallNow() - t0;
    await waitFor(`${gameId} answering again`, () => poller.samples.at(-1)?.ok || undefined, 30_000, 20);
    await sleep(500);
    await poller.stop();
    const d = poller.downtime(t0);
    if (d.unresolved) throw new Error(`${gameId}: engine still down at the end of the window`);
    const version = (await probe(poller.currentPort, "/version")).body;
    return { downMs: d.totalMs, callMs, outages: d.outages, status: r.status, body: r.body, version };
  } finally {
    tap.close();
  }
}

// ------------------------------------------------------------------ swarm side

interface SwarmState {
  ok: boolean;
  why: string;
  initialised: boolean;
  gwbridgeExisted: boolean;
}

async function prepareSwarm(): Promise<SwarmState> {
  const state = await dockerCli(["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"]);
  const gwbridgeExisted = (await dockerCli(["network", "ls", "--format", "{{.Name}}"])).split("\n").includes("docker_gwbridge");
  const [local, control] = state.split(" ");
  if (local === "active") {
    return control === "true"
      ? { ok: true, why: "", initialised: false, gwbridgeExisted }
      : { ok: false, why: "this node is in a swarm but not a manager", initialised: false, gwbridgeExisted };
  }
  if (local !== "inactive") return { ok: false, why: `swarm state is ${state}`, initialised: false, gwbridgeExisted };
  try {
    await dockerCli(["swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377"], 60_000);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    return { ok: false, why: `docker swarm init failed: ${(e.stderr || e.message).trim()}`, initialised: false, gwbridgeExisted };
  }
  return { ok: true, why: "", initialised: true, gwbridgeExisted };
}

async function leaveSwarm(s: SwarmState): Promise<void> {
  if (!s.initialised) return;
  await dockerCli(["swarm", "leave", "--force"], 60_000);
  if (!s.gwbridgeExisted) {
    // Created by our swarm init; remove it when nothing uses it.
    const users = await dockerCli(["network", "inspect", "docker_gwbridge", "--format", "{{len .Containers}}"]).catch(() => "");
    if (users === "0") await dockerCli(["network", "rm", "docker_gwbridge"]).catch(() => "");
  }
}

async function removeService(name: string): Promise<void> {
  await dockerCli(["service", "rm", name]).catch(() => "");
  await waitFor(
    `containers of service ${name} gone`,
    async () => (await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name=${name}`] } })).length === 0 || undefined,
    60_000,
    200,
  ).catch((err: unknown) => say(`warning: ${(err as Error).message}`));
}

async function swarmPatch(runId: string, i: number, stateRoot: string): Promise<{ downMs: number; callMs: number; outages: number; version: string }> {
  const name = `rtm-bench-${runId}-${i}`;
  const port = await freePort();
  const unregister = onCleanup(`swarm service ${name}`, () => removeService(name));
  try {
    await dockerCli([
      "service", "create", "--detach=false", "--quiet", "--no-resolve-image",
      "--name", name,
      "--label", `com.galaxy.bench=${runId}`,
      "--publish", `mode=host,target=8080,published=${port}`,
      "--limit-cpu", "1", "--limit-memory", "512m",
      "--mount", `type=bind,source=${stateRoot},target=/var/lib/galaxy-game`,
      "--env", "GAME_STATE_PATH=/var/lib/galaxy-game", "--env", `GAME_ID=${name}`,
      TEST_IMAGES.v100,
    ]);
    await waitFor(`${name} healthy`, async () => (await probe(port)).ok || undefined, 60_000, 20);
    const poller = new HealthPoller(port);
    await sleep(300);
    const t0 = wallNow();
    await dockerCli(["service", "update", "--detach=false", "--quiet", "--no-resolve-image", "--image", TEST_IMAGES.v101, "--update-order", "stop-first", name]);
    const callMs = wallNow() - t0;
    await waitFor(`${name} answering again`, () => poller.samples.at(-1)?.ok || undefined, 60_000, 20);
    await sleep(500);
    await poller.stop();
    const d = poller.downtime(t0);
    if (d.unresolved) throw new Error(`${name}: engine still down at the end of the window`);
    const version = (await probe(port, "/version")).body;
    return { downMs: d.totalMs, callMs, outages: d.outages, version };
  } finally {
    unregister();
    await removeService(name);
  }
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  say(`patch bench${QUICK ? " (BENCH_QUICK)" : ""}: ${PATCH_REPS} patch(es) each side, ${ROLLBACK_REPS} rollback(s), load ${loadAverage()}`);
  const { pg: pgServer, network, stateRoot } = await dockerBenchEnvironment();

  const instance = uniqueInstance("bench-patch");
  onCleanup(`containers of ${instance}`, () => removeInstanceContainers(instance));
  const url = await pgServer.createDatabase(`bench_patch_${process.pid}`);
  const controller = await startController(
    "tsx",
    {
      DATABASE_URL: url,
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_DOCKER_NETWORK: network,
      RTMANAGER_STATE_ROOT: path.join(stateRoot, instance),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
      RTMANAGER_PATCH_HEALTH_TIMEOUT: PATCH_HEALTH_TIMEOUT,
    },
    tmpLog(instance),
  );
  const side: RtmSide = { port: controller.port, instance, prefix: `p${instance.slice(-8)}` };

  const swarm = await prepareSwarm();
  onCleanup("swarm", () => leaveSwarm(swarm));
  if (!swarm.ok) say(`Docker Swarm unavailable: ${swarm.why}`);
  const runId = instance.slice(-8);
  const swarmState = await mkdtemp(path.join(os.tmpdir(), "rtm-bench-swarm-"));
  onCleanup("swarm state dir", () => rm(swarmState, { recursive: true, force: true }));

  const rtm: Awaited<ReturnType<typeof rtmPatch>>[] = [];
  const sw: Awaited<ReturnType<typeof swarmPatch>>[] = [];
  for (let i = 1; i <= PATCH_REPS; i++) {
    const order = i % 2 === 1 ? (["rtm", "swarm"] as const) : (["swarm", "rtm"] as const);
    for (const which of order) {
      if (which === "rtm") {
        const r = await rtmPatch(side, i, TEST_IMAGES.v101);
        if (r.status !== 200 || r.version !== "1.0.1") throw new Error(`rtmanager patch ${i}: ${r.status} ${r.body}, engine version ${r.version}`);
        rtm.push(r);
        say(`patch ${i} rtmanager: down ${fmtMs(r.downMs)} (${r.outages} outage(s)), call ${fmtMs(r.callMs)}`);
      } else if (swarm.ok) {
        const r = await swarmPatch(runId, i, swarmState);
        if (r.version !== "1.0.1") throw new Error(`swarm patch ${i}: engine version ${r.version}`);
        sw.push(r);
        say(`patch ${i} swarm: down ${fmtMs(r.downMs)} (${r.outages} outage(s)), call ${fmtMs(r.callMs)}`);
      }
    }
  }
  const rtmDown = median(rtm.map((r) => r.downMs));
  const rtmCall = median(rtm.map((r) => r.callMs));
  if (swarm.ok) {
    const swDown = median(sw.map((r) => r.downMs));
    const ratio = rtmDown / swDown;
    emit({
      bench: "patch",
      metric: `patch 1.0.0 -> 1.0.1 downtime (/healthz not answering), median of ${PATCH_REPS}`,
      rtmanager: fmtMs(rtmDown),
      baseline: `${fmtMs(swDown)} docker service update --update-order stop-first`,
      ratio,
      goal: "ratio <= 1.0",
      met: ratio <= 1.0,
      note: `10 ms poll on 127.0.0.1; min ${fmtMs(Math.min(...rtm.map((r) => r.downMs)))} vs ${fmtMs(Math.min(...sw.map((r) => r.downMs)))}`,
      data: { rtmDownMs: rtm.map((r) => round(r.downMs)), swarmDownMs: sw.map((r) => round(r.downMs)), ratio: round(ratio, 3) },
    });
    emit({
      bench: "patch",
      metric: "patch call latency (REST answer / CLI return), not downtime",
      rtmanager: fmtMs(rtmCall),
      baseline: `${fmtMs(median(sw.map((r) => r.callMs)))} docker service update`,
      ratio: null,
      goal: "none (rtmanager answers after RTMANAGER_PATCH_MIN_HEALTHY=5s of health; swarm after --update-monitor 5s)",
      met: null,
      data: { rtmCallMs: rtm.map((r) => round(r.callMs)), swarmCallMs: sw.map((r) => round(r.callMs)) },
    });
  } else {
    emit({
      bench: "patch",
      metric: `patch 1.0.0 -> 1.0.1 downtime (/healthz not answering), median of ${PATCH_REPS}`,
      rtmanager: fmtMs(rtmDown),
      baseline: `not measured: ${swarm.why}`,
      ratio: null,
      goal: "ratio <= 1.0",
      met: null,
      data: { rtmDownMs: rtm.map((r) => round(r.downMs)), rtmCallMs: rtm.map((r) => round(r.callMs)) },
    });
  }

  // Rollback of a failing patch.
  const rb: Awaited<ReturnType<typeof rtmPatch>>[] = [];
  for (let i = 1; i <= ROLLBACK_REPS; i++) {
    const r = await rtmPatch(side, i, TEST_IMAGES.unhealthy);
    const code = (JSON.parse(r.body) as { error?: { code?: string } }).error?.code;
    if (r.status !== 500 || code !== "container_start_failed" || r.version !== "1.0.0") {
      throw new Error(`rollback ${i}: ${r.status} ${r.body}, engine version ${r.version}`);
    }
    rb.push(r);
    say(`rollback ${i}: call ${fmtMs(r.callMs)}, old engine down ${fmtMs(r.downMs)}`);
  }
  emit({
    bench: "patch",
    metric: `failing patch 1.0.0 -> 1.0.3 rolled back: REST call latency, median of ${ROLLBACK_REPS}`,
    rtmanager: fmtMs(median(rb.map((r) => r.callMs))),
    baseline: "-",
    ratio: null,
    goal: "none stated (bounded by RTMANAGER_PATCH_HEALTH_TIMEOUT + recreate)",
    met: null,
    note: `RTMANAGER_PATCH_HEALTH_TIMEOUT=${PATCH_HEALTH_TIMEOUT} (default 60s); answer 500 container_start_failed`,
    data: { callMs: rb.map((r) => round(r.callMs)) },
  });
  emit({
    bench: "patch",
    metric: `failing patch rolled back: old engine downtime, median of ${ROLLBACK_REPS}`,
    rtmanager: fmtMs(median(rb.map((r) => r.downMs))),
    baseline: "-",
    ratio: null,
    goal: "none stated",
    met: null,
    note: `RTMANAGER_PATCH_HEALTH_TIMEOUT=${PATCH_HEALTH_TIMEOUT}; grows one for one with it`,
    data: { downMs: rb.map((r) => round(r.downMs)) },
  });
  await controller.stop();
}

await runBench("patch", QUICK ? 6 * 60_000 : 12 * 60_000, main);
