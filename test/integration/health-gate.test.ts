/**
 * Health-gated lifecycle over real Docker and PostgreSQL: patches that roll
 * themselves back, restarts on failing health, a LISTEN connection killed.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Manager } from "../../src/controller/manager.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { HttpProber } from "../../src/runtime/httpProber.js";
import { openStore, type SqlStore } from "../../src/store/index.js";
import { fastSettings, startController } from "../helpers/controller.js";
import {
  cleanupInstance,
  createTestNetwork,
  ensureTestImages,
  removeTestNetwork,
  tempStateDir,
  TEST_IMAGES,
  testDocker,
  uniqueGameId,
  uniqueInstance,
  waitFor,
} from "../helpers/docker.js";
import { LoopLooks } from "../helpers/loop.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const docker = testDocker();
let pg: PostgresServer;
let store: SqlStore;
let manager: Manager;
const instance = uniqueInstance("gate");
const network = `rtm-gate-${instance}`;
let stateRoot: string;
const looks = new LoopLooks();

const sql = (text: string, params: unknown[]) => pg.query(text, params, "gate");

async function containersOf(gameId: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`, `${LABELS.gameId}=${gameId}`] } });
}

async function runningOn(gameId: string, image: string) {
  return waitFor(`${gameId} on ${image}`, async () => {
    const cs = await containersOf(gameId);
    return cs.length === 1 && cs[0]!.State === "running" && cs[0]!.Labels[LABELS.imageRef] === image ? cs[0] : undefined;
  }, 40_000);
}

/**
 * What the engine answers on /version. A rolled-back container is running
 * before its httpd listens, and Docker's proxy resets connections until then,
 * so this asks until the engine answers.
 */
async function engineVersion(containerId: string): Promise<string> {
  const info = await docker.getContainer(containerId).inspect();
  const port = info.NetworkSettings.Ports["8080/tcp"]?.[0]?.HostPort;
  return waitFor(`engine ${containerId.slice(0, 12)} answering /version`, async () => {
    const res = await fetch(`http://127.0.0.1:${port}/version`).catch(() => null);
    return res?.ok ? (await res.text()).trim() : undefined;
  }, 10_000, 100);
}

beforeAll(async () => {
  await ensureTestImages();
  await createTestNetwork(network);
  stateRoot = await tempStateDir();
  pg = await startPostgres();
  store = await openStore({ databaseUrl: await pg.createDatabase("gate"), dataDir: "" });
  manager = await startController({
    store,
    hooks: looks.hooks,
    settings: fastSettings({ instanceId: instance, engineNetwork: network, stateRoot, patchMinHealthyMs: 1000, patchHealthTimeoutMs: 4000, probeIntervalMs: 300 }),
  });
}, 180_000);

afterAll(async () => {
  await manager?.stop();
  await store?.close();
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await pg?.stop();
}, 60_000);

describe("health-gated lifecycle", () => {
  it("rolls a patch to an unhealthy engine back to the previous image, state directory intact", async () => {
    const g = uniqueGameId();
    await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, TEST_IMAGES.v100]);
    await runningOn(g, TEST_IMAGES.v100);
    const bootsBefore = await waitFor("boots.log", () => readFile(path.join(stateRoot, g, "boots.log"), "utf8").catch(() => undefined));

    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, TEST_IMAGES.unhealthy]);
    const rec = await waitFor("rollback recorded", async () => {
      const r = await store.getRecord(g);
      return r?.heldGeneration && r.currentImageRef === TEST_IMAGES.v100 ? r : undefined;
    }, 40_000);
    expect(rec.lastErrorCode).toBe("container_start_failed");
    expect(rec.lastErrorMessage).toMatch(/rolled back to galaxy\/test-engine:1\.0\.0/);
    const restored = await runningOn(g, TEST_IMAGES.v100);
    expect(await engineVersion(restored.Id)).toBe("1.0.0");

    const boots = await readFile(path.join(stateRoot, g, "boots.log"), "utf8");
    expect(boots.startsWith(bootsBefore)).toBe(true);
    expect(boots).toContain("1.0.3");

    const events = (await store.eventsAfter(0, { gameId: g })).map((e) => e.type);
    expect(events).toContain("patch_rolled_back");
    const ops = await store.listOperations(g);
    expect(ops.find((o) => o.kind === "patch" && o.outcome === "failure")?.errorCode).toBe("container_start_failed");
    expect(ops.find((o) => o.kind === "rollback")?.outcome).toBe("success");

    // Held: two resync passes later it still runs 1.0.0 and has not retried 1.0.3.
    await looks.lookedAgain(2);
    expect((await containersOf(g)).map((c) => c.Labels[LABELS.imageRef])).toEqual([TEST_IMAGES.v100]);

    // A new declaration lifts the hold.
    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, TEST_IMAGES.v101]);
    await runningOn(g, TEST_IMAGES.v101);
    const after = await waitFor("converged", async () => {
      const r = await store.getRecord(g);
      return r?.heldGeneration === null && r.lastErrorCode === null ? r : undefined;
    }, 20_000);
    expect(after.currentImageRef).toBe(TEST_IMAGES.v101);
  }, 90_000);

  it("rolls back a patch whose new container cannot start", async () => {
    const g = uniqueGameId();
    await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, TEST_IMAGES.v100]);
    await runningOn(g, TEST_IMAGES.v100);
    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, TEST_IMAGES.brokenStart]);
    await waitFor("rolled back", async () => {
      const r = await store.getRecord(g);
      return r?.heldGeneration ? r : undefined;
    }, 40_000);
    await runningOn(g, TEST_IMAGES.v100);
  }, 90_000);

  it("leaves a healthy engine alone when the patch image cannot be pulled, reports image_pull_failed and keeps retrying", async () => {
    const g = uniqueGameId();
    const missing = "galaxy/test-engine:1.0.9"; // not built locally, and there is no registry to pull it from
    await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, TEST_IMAGES.v100]);
    const old = await runningOn(g, TEST_IMAGES.v100);
    await waitFor("record running", async () => ((await store.getRecord(g))?.currentContainerId === old.Id ? true : undefined));

    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, missing]);
    const rec = await waitFor("pull failure recorded", async () => {
      const r = await store.getRecord(g);
      return r?.lastErrorCode ? r : undefined;
    }, 30_000);
    expect(rec.lastErrorCode).toBe("image_pull_failed");
    expect(rec.heldGeneration).toBeNull();
    expect(rec.degraded).toBe(false);
    expect(rec.currentContainerId).toBe(old.Id);
    expect(rec.currentImageRef).toBe(TEST_IMAGES.v100);

    // Retried with backoff (not held): more than one failed patch attempt, none of them a rollback.
    await waitFor("retried", async () => {
      const ops = await store.listOperations(g);
      return ops.filter((o) => o.kind === "patch" && o.outcome === "failure").length >= 2 ? true : undefined;
    }, 30_000);
    const ops = await store.listOperations(g);
    expect(ops.some((o) => o.kind === "rollback")).toBe(false);
    expect(ops.filter((o) => o.kind === "patch" && o.outcome === "failure").every((o) => o.errorCode === "image_pull_failed")).toBe(true);
    const events = (await store.eventsAfter(0, { gameId: g })).map((e) => e.type);
    expect(events).not.toContain("patch_rolled_back");
    expect(events).not.toContain("container_stopped");

    // The old container was never touched: same id, still running, still answering.
    const cs = await containersOf(g);
    expect(cs.map((c) => [c.Id, c.State])).toEqual([[old.Id, "running"]]);
    expect(await engineVersion(old.Id)).toBe("1.0.0");

    // Not held: a pullable patch goes through.
    await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, TEST_IMAGES.v101]);
    await runningOn(g, TEST_IMAGES.v101);
    const after = await waitFor("converged", async () => {
      const r = await store.getRecord(g);
      return r?.lastErrorCode === null && r.currentImageRef === TEST_IMAGES.v101 ? r : undefined;
    }, 30_000);
    expect(after.heldGeneration).toBeNull();
  }, 120_000);

  it("does not remove the failing container when the rollback target image is gone: degraded, with a clear message", async () => {
    const g = uniqueGameId();
    const repo = `galaxy/test-engine-gone-${instance}`;
    await docker.getImage(TEST_IMAGES.v100).tag({ repo, tag: "1.0.0" });
    await docker.getImage(TEST_IMAGES.brokenStart).tag({ repo, tag: "1.0.4" });
    try {
      await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, `${repo}:1.0.0`]);
      await runningOn(g, `${repo}:1.0.0`);
      // The previous image disappears (an image prune, say) while its engine still runs.
      await docker.getImage(`${repo}:1.0.0`).remove();

      await sql("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [g, `${repo}:1.0.4`]);
      const rec = await waitFor("degraded", async () => {
        const r = await store.getRecord(g);
        return r?.degraded ? r : undefined;
      }, 40_000);
      expect(rec.lastErrorCode).toBe("container_start_failed");
      expect(rec.lastErrorMessage).toMatch(/rollback target .*:1\.0\.0 is no longer present locally/);
      expect(rec.lastErrorMessage).toMatch(/degraded/);

      // The failed new container is still there (nothing was removed to make room for a rollback that could not happen).
      const cs = await containersOf(g);
      expect(cs.map((c) => c.Labels[LABELS.imageRef])).toEqual([`${repo}:1.0.4`]);
      expect(rec.currentContainerId).toBe(cs[0]!.Id);

      const events = (await store.eventsAfter(0, { gameId: g })).map((e) => e.type);
      expect(events).toContain("rollback_failed");
      const rollback = (await store.listOperations(g)).find((o) => o.kind === "rollback");
      expect(rollback?.outcome).toBe("failure");
      expect(rollback?.message).toMatch(/no longer present locally/);
    } finally {
      for (const tag of ["1.0.0", "1.0.4"]) await docker.getImage(`${repo}:${tag}`).remove().catch(() => undefined);
    }
  }, 90_000);

  it("restarts an engine that starts failing its health probe while running", async () => {
    const g = uniqueGameId();
    await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, TEST_IMAGES.v100]);
    const first = await runningOn(g, TEST_IMAGES.v100);
    // Healthy first, so the failure is a transition the prober sees.
    await waitFor("healthy", async () => ((await new HttpProber().probe(`http://127.0.0.1:${first.Ports[0]?.PublicPort}/healthz`, 500)).ok ? true : undefined));
    const exec = await docker.getContainer(first.Id).exec({ Cmd: ["/bin/busybox", "rm", "-f", "/www/healthz"], AttachStdout: true, AttachStderr: true });
    await exec.start({ hijack: true, stdin: false });
    const second = await waitFor("replaced", async () => {
      const cs = await containersOf(g);
      return cs.length === 1 && cs[0]!.Id !== first.Id && cs[0]!.State === "running" ? cs[0] : undefined;
    }, 30_000);
    expect(second.Labels[LABELS.imageRef]).toBe(TEST_IMAGES.v100);
    const r = await waitFor("restart recorded", async () => {
      const rec = await store.getRecord(g);
      return rec && rec.restartCount >= 1 && rec.currentContainerId === second.Id ? rec : undefined;
    });
    expect(r.status).toBe("running");
    const events = (await store.eventsAfter(0, { gameId: g })).map((e) => e.type);
    expect(events).toContain("probe_failed");
    expect((await store.listOperations(g)).some((o) => o.kind === "self_heal" && o.outcome === "success")).toBe(true);
  }, 60_000);

  it("notices a terminated LISTEN connection and still converges a plain SQL declaration", async () => {
    const killed = await pg.terminateListeners("gate");
    expect(killed).toBeGreaterThan(0);
    const g = uniqueGameId();
    await sql("INSERT INTO declarations (game_id, image_ref) VALUES ($1, $2)", [g, TEST_IMAGES.v100]);
    await runningOn(g, TEST_IMAGES.v100);
  }, 60_000);
});
