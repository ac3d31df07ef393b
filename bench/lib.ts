/**
 * Shared plumbing of the benchmarks: result rows, statistics, a cleanup
 * registry that also runs on signals and on the hard deadline, controller
 * processes (tsx or the compiled build), /proc readings, raw dockerode
 * baselines and convergence polling. Benchmarks only talk to 127.0.0.1 and
 * the local Docker socket.
 */
import { mapLimit } from "../src/model/mapLimit.js";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { appendFileSync, createWriteStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type Dockerode from "dockerode";
import type pg from "pg";
import { LABELS } from "../src/runtime/docker/labels.js";
import { spawnController, type ControllerProcess } from "../test/helpers/process.js";
import { createTestNetwork, ensureTestImages, tempStateDir, testDocker, uniqueInstance, waitFor } from "../test/helpers/docker.js";
import { startPostgres, type PostgresServer } from "../test/helpers/postgres.js";
import type { EngineSpec } from "../src/model/ports.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const QUICK = /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? "");
export const docker = testDocker();

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ logging

const benchStarted = Date.now();
export function say(msg: string): void {
  const t = ((Date.now() - benchStarted) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${t}s] ${msg}\n`);
}

// ------------------------------------------------------------------ results

export interface Row {
  bench: string;
  metric: string;
  /** Formatted rtmanager value. */
  rtmanager: string;
  /** Formatted baseline value, or "-" when there is none. */
  baseline: string;
  /** rtmanager / baseline, when it means something. */
  ratio: number | null;
  goal: string;
  /** null: no goal, or not measurable. */
  met: boolean | null;
  note?: string;
  /** The raw numbers behind the formatted ones. */
  data?: Record<string, unknown>;
}

const rows: Row[] = [];

/** Prints one row as a JSON line on stdout and appends it to $BENCH_RESULTS when set. */
export function emit(row: Row): void {
  rows.push(row);
  const line = JSON.stringify({ type: "bench-row", ...row });
  process.stdout.write(`${line}\n`);
  if (process.env.BENCH_RESULTS) appendFileSync(process.env.BENCH_RESULTS, `${line}\n`);
}

export function markdownTable(list: readonly Row[]): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const out = [
    "| benchmark | metric | rtmanager | baseline | ratio | goal | met |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of list) {
    const met = r.met === null ? "n/a" : r.met ? "met" : "**NOT met**";
    const ratio = r.ratio === null ? "-" : r.ratio.toFixed(2);
    const metric = r.note ? `${r.metric} (${r.note})` : r.metric;
    out.push(`| ${esc(r.bench)} | ${esc(metric)} | ${esc(r.rtmanager)} | ${esc(r.baseline)} | ${ratio} | ${esc(r.goal)} | ${met} |`);
  }
  return out.join("\n");
}

export function printTable(): void {
  process.stdout.write(`\n${markdownTable(rows)}\n\n`);
}

// ------------------------------------------------------------------ statistics

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[Math.min(s.length, rank) - 1]!;
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}

export const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

// ------------------------------------------------------------------ cleanup and deadline

type Cleanup = { what: string; fn: () => Promise<void> | void };
const cleanups: Cleanup[] = [];
const children = new Set<ChildProcess>();
let cleaning: Promise<void> | null = null;

/** Registers a cleanup; they run last-in first-out, each bounded, failures logged and skipped. */
export function onCleanup(what: string, fn: () => Promise<void> | void): () => void {
  const entry = { what, fn };
  cleanups.push(entry);
  return () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      try {
        await Promise.race([
          Promise.resolve().then(c.fn),
          sleep(120_000).then(() => {
            throw new Error("cleanup timed out after 120 s");
          }),
        ]);
      } catch (err) {
        say(`cleanup "${c.what}" failed: ${(err as Error).message}`);
      }
    }
  })();
  return cleaning;
}

process.once("exit", () => {
  // Last resort when something exits without the async cleanups: no process outlives the bench.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/**
 * Runs a benchmark's main with cleanups on success, failure, SIGINT/SIGTERM
 * and a hard deadline, so a bench always stops by itself and leaves nothing.
 */
export async function runBench(name: string, deadlineMs: number, main: () => Promise<void>): Promise<void> {
  let exitCode = 0;
  const abort = async (why: string) => {
    say(`${name}: ${why}; cleaning up`);
    await runCleanups();
    printTable();
    process.exit(1);
  };
  process.once("SIGINT", () => void abort("SIGINT"));
  process.once("SIGTERM", () => void abort("SIGTERM"));
  const deadline = setTimeout(() => void abort(`hard deadline of ${Math.round(deadlineMs / 1000)} s reached`), deadlineMs);
  deadline.unref();
  try {
    await main();
  } catch (err) {
    exitCode = 1;
    say(`${name} failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await runCleanups();
    clearTimeout(deadline);
  }
  printTable();
  process.exit(exitCode);
}

// ------------------------------------------------------------------ controller processes

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * True when `npm run build` has produced dist/src/main.js and BENCH_NO_BUILT
 * is unset. A build older than the newest file under src/ is still used (in a
 * shared working tree src/ can change during a run), with a warning; the rows
 * say so through `builtNote()`.
 */
export function builtControllerAvailable(): boolean {
  const main = path.join(repoRoot, "dist/src/main.js");
  if (process.env.BENCH_NO_BUILT || !existsSync(main)) return false;
  const note = builtNote();
  if (note) say(`warning: ${note}; run npm run build for a fresh one`);
  return true;
}

/** Empty when dist/ is at least as new as src/, else what is stale. */
export function builtNote(): string {
  const main = path.join(repoRoot, "dist/src/main.js");
  if (!existsSync(main)) return "";
  const built = statSync(main).mtimeMs;
  const newest = newestMtime(path.join(repoRoot, "src"));
  return newest > built ? `dist/ was built ${Math.round((newest - built) / 1000)} s before the newest change under src/` : "";
}

export type ControllerKind = "tsx" | "built";

export interface Controller extends ControllerProcess {
  kind: ControllerKind;
  /** The HTTP port it listens on (127.0.0.1). */
  port: number;
}

/**
 * Starts rtmanager as a child process: `tsx` through the tests' spawnController
 * (node --import tsx src/main.ts), `built` as node dist/src/main.js. Resolves
 * once the loop runs and the HTTP server listens.
 */
export async function startController(kind: ControllerKind, env: Record<string, string>, logFile: string): Promise<Controller> {
  const p = kind === "tsx" ? spawnController(env, logFile) : spawnBuilt(env, logFile);
  children.add(p.child);
  const unregister = onCleanup(`controller ${p.pid}`, () => p.stop());
  try {
    const port = await waitFor(
      "rtmanager started",
      () => {
        if (p.child.exitCode !== null) throw new Error(`controller exited with ${p.child.exitCode}; see ${logFile}`);
        const started = logLines(logFile).find((l) => l.msg === "rtmanager started");
        const loop = logLines(logFile).some((l) => l.msg === "controller loop started");
        return started && loop ? Number(started.port) : undefined;
      },
      60_000,
      50,
    );
    return {
      ...p,
      kind,
      port,
      stop: async () => {
        unregister();
        await p.stop();
      },
    };
  } catch (err) {
    unregister();
    await p.stop();
    const tail = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "";
    throw new Error(`${(err as Error).message}\n${tail}`);
  }
}

function spawnBuilt(env: Record<string, string>, logFile: string): ControllerProcess {
  // BENCH_NODE_ARGS: node flags for the built controller, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" (not allowed in NODE_OPTIONS).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, path.join(repoRoot, "dist/src/main.js")], {
    cwd: repoRoot,
    env: { ...process.env, RTMANAGER_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = createWriteStream(logFile, { flags: "a" });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    pid: child.pid!,
    logFile,
    async kill9() {
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Spawns a helper node process (tracked, killed on exit). */
export function spawnTracked(args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  children.add(child);
  return child;
}

export function logLines(logFile: string): Record<string, unknown>[] {
  if (!existsSync(logFile)) return [];
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(logFile, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a partial last line
    }
  }
  return out;
}

export function tmpLog(tag: string): string {
  return path.join(os.tmpdir(), `rtm-bench-${process.pid}-${tag}.log`);
}

// ------------------------------------------------------------------ /proc

let clockTicks: number | null = null;
function clkTck(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name may contain spaces; fields restart after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After ')' field 0 is state (field 3 of the man page); utime is field 14, stime 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clkTck();
}

/** Every process below `pid` (children, grandchildren...), from the ppid field of /proc/<n>/stat. */
export function descendantPids(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** VmRSS in MB. */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");
}

// ------------------------------------------------------------------ HTTP on loopback

export interface HttpAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function httpRequest(port: number, method: string, pathName: string, body?: unknown, timeoutMs = 120_000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path: pathName,
        agent: false,
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
        res.on("error", reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${pathName}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

// ------------------------------------------------------------------ Docker

/** rtmanager's container name for a game (src/model/gameId.ts). */
export const containerNameOf = (gameId: string) => `galaxy-game-${gameId}`;

export interface RawSpec {
  instance: string;
  gameId: string;
  image: string;
  network: string;
  stateRoot: string;
  /** Docker's own restart policy; "no" (what rtmanager creates) unless a bench compares against Docker restarting by itself. */
  restartPolicy?: "no" | "on-failure";
}

/**
 * The baseline: what DockerRuntime.create + start send for one game (name,
 * labels, env, network + alias, bind mount, the default resources, a port
 * published on 127.0.0.1, no Docker restart policy), as plain dockerode calls.
 * The state directory is created the same way (mkdir 0750).
 */
export async function rawCreateStart(spec: RawSpec): Promise<string> {
  const name = containerNameOf(spec.gameId);
  const statePath = path.join(spec.stateRoot, spec.gameId);
  await mkdir(statePath, { recursive: true, mode: 0o750 });
  const memory = 512 * 1024 * 1024;
  const container = await docker.createContainer({
    name,
    Image: spec.image,
    Labels: {
      [LABELS.managed]: "true",
      [LABELS.instance]: spec.instance,
      [LABELS.gameId]: spec.gameId,
      [LABELS.generation]: "1",
      [LABELS.imageRef]: spec.image,
    },
    Env: ["GAME_STATE_PATH=/var/lib/galaxy-game", `GAME_ID=${spec.gameId}`],
    ExposedPorts: { "8080/tcp": {} },
    HostConfig: {
      Binds: [`${statePath}:/var/lib/galaxy-game`],
      NetworkMode: spec.network,
      RestartPolicy: { Name: spec.restartPolicy ?? "no" },
      NanoCpus: 1e9,
      Memory: memory,
      MemorySwap: memory,
      PidsLimit: 512,
      PortBindings: { "8080/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] },
    },
    NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: [name] } } },
  });
  await container.start();
  return container.id;
}

// The same bounded map the controller uses.
export { mapLimit };

/**
 * Force-removes every container carrying `instance`'s label, 8 at a time
 * (hundreds of parallel removals load a shared dockerd for nothing), and
 * waits until the list is empty.
 */
export async function removeInstanceContainers(instance: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const cs = await listInstance(instance);
    if (cs.length === 0) return;
    await mapLimit(cs, 8, async (c) => {
      try {
        await docker.getContainer(c.Id).remove({ force: true, v: true });
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) throw err;
      }
    });
  }
  const left = await listInstance(instance);
  if (left.length > 0) throw new Error(`${left.length} containers of ${instance} are still there`);
}

/**
 * Removes a bench network, retrying for 30 s while dockerd still counts
 * endpoints of containers just removed. Docker 20.10 can keep such a count
 * forever after many parallel removals ("has active endpoints" with no
 * container attached); that is reported, not hidden.
 */
export async function removeNetwork(name: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await docker.getNetwork(name).remove();
      return;
    } catch (err) {
      const e = err as { statusCode?: number; message?: string };
      if (e.statusCode === 404) return;
      if (Date.now() > deadline) {
        const attached = await docker
          .getNetwork(name)
          .inspect()
          .then((n: { Containers?: Record<string, unknown> }) => Object.keys(n.Containers ?? {}).length)
          .catch(() => -1);
        throw new Error(`network ${name} could not be removed (${attached} containers attached): ${e.message ?? String(err)}`);
      }
      await sleep(1000);
    }
  }
}

export function listInstance(instance: string): Promise<Dockerode.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`] } });
}

/** True when every one of `games` ids has exactly one container and it is running, and there is nothing else. */
export function convergedState(cs: readonly Dockerode.ContainerInfo[], games: number): boolean {
  const byGame = new Map<string, number>();
  for (const c of cs) {
    const g = c.Labels[LABELS.gameId] ?? "";
    byGame.set(g, (byGame.get(g) ?? 0) + 1);
  }
  return cs.length === games && byGame.size === games && cs.every((c) => c.State === "running");
}

/**
 * Polls the Docker list by instance label every `intervalMs` until
 * `convergedState`; resolves with the wall-clock time (ms) at which the
 * successful list was issued.
 */
export async function pollConverged(instance: string, games: number, timeoutMs: number, intervalMs = 100): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const issued = Date.now();
    const cs = await listInstance(instance);
    if (convergedState(cs, games)) return issued;
    if (Date.now() > deadline) {
      const running = cs.filter((c) => c.State === "running").length;
      throw new Error(`not converged within ${timeoutMs} ms: ${cs.length} containers, ${running} running, want ${games}`);
    }
    const wait = issued + intervalMs - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

export interface EventTap {
  /** Events seen so far: action, game id label, dockerd time in ms (from timeNano). */
  events: { action: string; gameId: string; id: string; timeMs: number }[];
  close(): void;
}

/** Subscribes to dockerd's container events for one instance label (for dockerd-side timestamps). */
export async function tapEvents(instance: string, actions: string[]): Promise<EventTap> {
  const stream = (await docker.getEvents({
    filters: { type: ["container"], event: actions, label: [`${LABELS.instance}=${instance}`] },
  })) as NodeJS.ReadableStream & { destroy?: () => void };
  const tap: EventTap = {
    events: [],
    close: () => stream.destroy?.(),
  };
  let buffered = "";
  stream.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      try {
        const e = JSON.parse(line) as { Action?: string; id?: string; timeNano?: number; Actor?: { Attributes?: Record<string, string> } };
        tap.events.push({
          action: e.Action ?? "",
          id: e.id ?? "",
          gameId: e.Actor?.Attributes?.[LABELS.gameId] ?? "",
          timeMs: (e.timeNano ?? 0) / 1e6,
        });
      } catch {
        // ignore a garbled line
      }
    }
  });
  stream.on("error", () => {});
  return tap;
}

/** The port Docker published on 127.0.0.1 for a container's 8080/tcp. */
export async function publishedPort(containerId: string): Promise<number | null> {
  const info = await docker.getContainer(containerId).inspect();
  const b = info.NetworkSettings?.Ports?.["8080/tcp"]?.find((x) => Number(x.HostPort) > 0);
  return b ? Number(b.HostPort) : null;
}

/** A controller's /metrics text, or "" when it does not answer in time. */
export async function metricsText(port: number, timeoutMs = 10_000): Promise<string> {
  try {
    return (await httpRequest(port, "GET", "/metrics", undefined, timeoutMs)).body;
  } catch {
    return "";
  }
}

/** Sum of a counter's samples (all label sets) in a Prometheus text exposition. */
export function counterSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(" ") + 1)) || 0;
  }
  return sum;
}

/** The engine spec the Pod benches give rtmanager's manifest builders and the bare client alike. */
export function benchEngineSpec(gameId: string, imageRef: string): EngineSpec {
  return {
    gameId,
    name: containerNameOf(gameId),
    imageRef,
    generation: 1,
    restartToken: null,
    configHash: "bench",
    env: {},
    statePath: "",
    resources: { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pidsLimit: 512 },
    restartPolicy: "on-failure",
  };
}

/** Wall time at which every game's record shows `image` running at its declaration's generation, with no gate open. */
export async function patchedAt(sql: Pick<pg.Client, "query">, games: string[], image: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const issued = performance.timeOrigin + performance.now();
    const { rows } = await sql.query<{ c: number }>(
      `SELECT count(*)::int AS c FROM runtime_records r JOIN declarations d USING (game_id)
        WHERE r.game_id = ANY($1::text[]) AND r.status = 'running' AND r.current_image_ref = $2
          AND r.observed_generation >= d.generation AND r.rollout_started_at IS NULL`,
      [games, image],
    );
    if (rows[0]!.c >= games.length) return issued;
    if (Date.now() > deadline) throw new Error(`${rows[0]!.c} of ${games.length} games show ${image} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** What the Docker benches share: the test images, a PostgreSQL server, a bridge network and a state root, each removed at cleanup. */
export async function dockerBenchEnvironment(): Promise<{ pg: PostgresServer; network: string; stateRoot: string }> {
  await ensureTestImages();
  const pg = await startPostgres();
  onCleanup("postgres", () => pg.stop());
  const network = `rtm-bench-${uniqueInstance("n").slice(2)}`;
  await createTestNetwork(network);
  onCleanup(`network ${network}`, () => removeNetwork(network));
  const stateRoot = await tempStateDir("rtm-bench-state-");
  onCleanup("state dirs", () => rm(stateRoot, { recursive: true, force: true }));
  return { pg, network, stateRoot };
}
