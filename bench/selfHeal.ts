/**
 * Self-heal latency: an engine process SIGKILLed by its host PID, to its
 * container running again (dockerd's `start` event). rtmanager (restart
 * policy on-failure, the default) against Docker's own `--restart
 * on-failure` on a container with the same settings (network, port
 * published on loopback, state mount, limits), measured in the same run.
 * Each rep kills a different game's engine once: a second kill of the same
 * engine would measure the crash-loop backoff instead. The baseline is killed
 * by PID too: `docker kill` switches Docker's restart policy off for it.
 */
import type pg from "pg";
import { TEST_IMAGES, uniqueInstance } from "../test/helpers/docker.js";
import { LABELS } from "../src/runtime/docker/labels.js";
import { docker, emit, fmtMs, median, onCleanup, pollConverged, rawCreateStart, removeInstanceContainers, round, say, sleep, tapEvents, type EventTap } from "./lib.js";

const IMAGE = TEST_IMAGES.v100;

export interface SelfHealTarget {
  instance: string;
  network: string;
  stateRoot: string;
}

/** Kills one container's process by its host PID; resolves with the kill time and the container's id. */
async function killByPid(containerId: string): Promise<number> {
  const info = await docker.getContainer(containerId).inspect();
  const pid = info.State?.Pid;
  if (!pid) throw new Error(`container ${containerId} has no process to kill`);
  const t0 = Date.now();
  process.kill(pid, "SIGKILL");
  return t0;
}

/** Time from the kill to dockerd's next `start` event of that game. */
async function restartTime(tap: EventTap, gameId: string, containerId: string, timeoutMs = 30_000): Promise<number> {
  const t0 = await killByPid(containerId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const start = tap.events.find((e) => e.action === "start" && e.gameId === gameId && e.timeMs > t0);
    if (start) return start.timeMs - t0;
    if (Date.now() > deadline) throw new Error(`game ${gameId} was not restarted within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function runningContainer(instance: string, gameId: string): Promise<string> {
  const list = await docker.listContainers({ filters: { label: [`${LABELS.instance}=${instance}`, `${LABELS.gameId}=${gameId}`], status: ["running"] } });
  const c = list[0];
  if (!c) throw new Error(`no running container for ${gameId}`);
  return c.Id;
}

/**
 * `rtm` is a running controller on `rtm.instance` with a SQL client on its
 * database; `raw` names where the baseline's containers go.
 */
export async function measureSelfHeal(rtm: SelfHealTarget & { sql: pg.Client }, raw: SelfHealTarget, reps: number): Promise<void> {
  const prefix = `sh${uniqueInstance("x").slice(2, 8)}`;
  const games = Array.from({ length: reps }, (_, i) => `${prefix}-${i + 1}`);
  await rtm.sql.query("INSERT INTO declarations (game_id, image_ref) SELECT unnest($1::text[]), $2", [games, IMAGE]);
  const rawInstance = uniqueInstance("bench-shraw");
  onCleanup(`containers of ${rawInstance}`, () => removeInstanceContainers(rawInstance));
  for (const gameId of games) {
    await rawCreateStart({ instance: rawInstance, gameId: `${gameId}r`, image: IMAGE, network: raw.network, stateRoot: raw.stateRoot, restartPolicy: "on-failure" });
  }
  await pollConverged(rawInstance, reps, 60_000);
  // Running for a while: the first exit of a healthy engine restarts at once.
  await sleep(2_000);
  const rtmTap = await tapEvents(rtm.instance, ["start"]);
  const rawTap = await tapEvents(rawInstance, ["start"]);
  const rtmMs: number[] = [];
  const rawMs: number[] = [];
  try {
    for (const gameId of games) {
      // Alternate which side goes first, so neither always runs on a busier engine.
      const sides = rtmMs.length % 2 === 0 ? ["rtm", "raw"] : ["raw", "rtm"];
      for (const side of sides) {
        if (side === "rtm") rtmMs.push(await restartTime(rtmTap, gameId, await runningContainer(rtm.instance, gameId)));
        else rawMs.push(await restartTime(rawTap, `${gameId}r`, await runningContainer(rawInstance, `${gameId}r`)));
        await sleep(300);
      }
    }
  } finally {
    rtmTap.close();
    rawTap.close();
    await removeInstanceContainers(rawInstance);
  }
  const ratio = median(rtmMs) / median(rawMs);
  say(`self-heal: rtmanager ${rtmMs.map(fmtMs).join(", ")}; docker --restart on-failure ${rawMs.map(fmtMs).join(", ")}`);
  emit({
    bench: "converge",
    metric: `self-heal after SIGKILL of the engine (by host PID) to its start event, median of ${reps}`,
    rtmanager: fmtMs(median(rtmMs)),
    baseline: `${fmtMs(median(rawMs))} docker --restart on-failure`,
    ratio,
    goal: "ratio <= 2",
    met: ratio <= 2,
    note: "one kill per game (a second kill would measure the crash-loop backoff); dockerd's start event timestamps",
    data: { reps, rtmMs: rtmMs.map((x) => round(x)), rawMs: rawMs.map((x) => round(x)) },
  });
}
