/**
 * The runtime going away in the middle of a health gate, end to end: a whole
 * rtmanager (createApp) on real PostgreSQL talks to the real dockerd only
 * through a Unix-socket proxy the test cuts while a patch's health gate is
 * open, for longer than the gate's minimum healthy time, then restores.
 *
 * The new engine is healthy the whole time, so losing the runtime is not a
 * reason to give up on it: no rollback, no held generation, nothing degraded;
 * once the runtime answers again the patch converges (one container, the new
 * image, the gate closed). Written against behaviour, not against how the
 * loop schedules its gates.
 */
import { randomBytes } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { cleanupInstance, DOCKER_SOCKET, DockerSocketProxy, ensureTestImages, TEST_IMAGES, testDocker, uniqueGameId, waitFor } from "../helpers/docker.js";
import { afterLoopLookedAgain } from "../helpers/loop.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const docker = testDocker();
const MIN_HEALTHY_MS = 6_000;
/** Longer than the gate's minimum healthy time: the gate's verdict falls inside the cut. */
const CUT_MS = MIN_HEALTHY_MS + 6_000;
const proxy = new DockerSocketProxy(DOCKER_SOCKET, path.join(os.tmpdir(), `rtm-cut-${randomBytes(4).toString("hex")}.sock`));
let pg: PostgresServer;
let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  await proxy.start();
  pg = await startPostgres();
  app = await startTestApp({
    dockerode: proxy.docker(),
    env: {
      DATABASE_URL: await pg.createDatabase("cut"),
      RTMANAGER_PATCH_MIN_HEALTHY: `${MIN_HEALTHY_MS}ms`,
      RTMANAGER_PATCH_HEALTH_TIMEOUT: "60s",
      RTMANAGER_RESYNC_INTERVAL: "2s",
    },
  });
}, 180_000);

afterAll(async () => {
  await proxy.start().catch(() => undefined);
  await app?.close();
  // The app reached Docker through the proxy, so its containers are removed here, on the machine's engine.
  if (app) await cleanupInstance(app.instance).catch(() => undefined);
  await proxy.stop();
  await pg?.stop();
}, 120_000);

async function containersOf(gameId: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${app.instance}`, `${LABELS.gameId}=${gameId}`] } });
}

describe("the runtime cut in the middle of a health gate", () => {
  it("no rollback and no held generation; the patch converges once the runtime is back", async () => {
    const game = uniqueGameId("cut");
    expect((await app.client.start(game, TEST_IMAGES.v100)).status).toBe("running");

    const patch = app.client.patch(game, TEST_IMAGES.v101).then(
      (record) => ({ ok: true as const, record }),
      (err: unknown) => ({ ok: false as const, err }),
    );
    const gateOpen = await waitFor("the health gate open on 1.0.1", async () => {
      const r = await app.store.getRecord(game);
      return r?.rolloutStartedAt && r.currentImageRef === TEST_IMAGES.v101 ? r : undefined;
    }, 60_000, 50);

    await proxy.stop();
    const cutAt = Date.now();
    // While the runtime is away the new engine runs on, and the record never goes back to 1.0.0.
    while (Date.now() - cutAt < CUT_MS) {
      const r = await app.store.getRecord(game);
      expect(r?.currentImageRef).toBe(TEST_IMAGES.v101);
      expect(r?.heldGeneration ?? null).toBeNull();
      const running = (await containersOf(game)).filter((c) => c.State === "running");
      expect(running.map((c) => c.Labels[LABELS.imageRef])).toContain(TEST_IMAGES.v101);
      await new Promise((res) => setTimeout(res, 500));
    }
    // The cut was felt by this game's reconcile (the gate reads the runtime), not only by the event stream.
    const felt = app.logs.filter((l) => Number(l.time) >= cutAt && l.gameId === game && l.code === "docker_unavailable");
    expect(felt.length).toBeGreaterThan(0);
    await proxy.start();

    const converged = await waitFor("the patch converged on 1.0.1", async () => {
      const r = await app.store.getRecord(game);
      const cs = await containersOf(game);
      return r && r.status === "running" && r.rolloutStartedAt === null && cs.length === 1 && cs[0]!.State === "running" && cs[0]!.Labels[LABELS.imageRef] === TEST_IMAGES.v101
        ? r
        : undefined;
    }, 90_000, 250);
    // Two resync passes later it still holds: the loop looked again and left it so.
    await afterLoopLookedAgain({ baseUrl: app.baseUrl }, 2);

    const record = await app.store.getRecord(game);
    expect(record).toMatchObject({ status: "running", currentImageRef: TEST_IMAGES.v101, currentContainerId: converged.currentContainerId, heldGeneration: null, degraded: false, rolloutStartedAt: null });
    expect(record!.observedGeneration).toBe((await app.store.get(game))!.generation);
    expect(record!.observedGeneration).toBeGreaterThanOrEqual(gateOpen.observedGeneration);
    const cs = await containersOf(game);
    expect(cs.map((c) => [c.Id, c.State, c.Labels[LABELS.imageRef]])).toEqual([[converged.currentContainerId, "running", TEST_IMAGES.v101]]);
    const events = await app.store.eventsAfter(0);
    expect(events.filter((e) => e.gameId === game && (e.type === "patch_rolled_back" || e.type === "rollback_failed"))).toEqual([]);

    // The caller of the patch got the new record, or an error it can retry; never a rolled-back one.
    const answer = await patch;
    if (answer.ok) expect(answer.record.current_image_ref).toBe(TEST_IMAGES.v101);
    else expect(String(answer.err)).not.toMatch(/roll/i);
  }, 240_000);
});
