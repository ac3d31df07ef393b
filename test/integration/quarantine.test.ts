/**
 * Fleet rollouts with a safety catch, over real Docker through the
 * production wiring (createApp, PGlite, the loop, the REST API, rtmctl in a
 * subprocess): an image whose patches keep rolling back is quarantined, and
 * with canaries a new image is patched on one game, gated, before the rest.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmApiError } from "../../src/client/index.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { prepareRtmctl, rtmctl } from "../helpers/rtmctl.js";
import { ensureTestImages, TEST_IMAGES, testDocker, uniqueGameId, waitFor } from "../helpers/docker.js";

const docker = testDocker();

async function containersOf(t: TestApp, gameId: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${t.instance}`, `${LABELS.gameId}=${gameId}`] } });
}

/** The one running container of the game, on `image`. */
async function runningOn(t: TestApp, gameId: string, image: string) {
  return waitFor(`${gameId} running ${image}`, async () => {
    const cs = await containersOf(t, gameId);
    return cs.length === 1 && cs[0]!.State === "running" && cs[0]!.Labels[LABELS.imageRef] === image ? cs[0] : undefined;
  }, 30_000);
}

async function failure(call: Promise<unknown>): Promise<RtmApiError> {
  const err = await call.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, "the call should have failed").toBeInstanceOf(RtmApiError);
  return err as RtmApiError;
}

async function metric(t: TestApp, line: string): Promise<number> {
  const text = await (await fetch(`${t.baseUrl}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : NaN;
}

beforeAll(async () => {
  await Promise.all([ensureTestImages(), prepareRtmctl()]);
}, 180_000);

describe("quarantine", () => {
  let t: TestApp;
  beforeAll(async () => {
    // 1.0.4 cannot start, so each patch to it rolls back within a second or two.
    t = await startTestApp({ env: { RTMANAGER_PATCH_MIN_HEALTHY: "500ms", RTMANAGER_PATCH_HEALTH_TIMEOUT: "10s" } });
  }, 120_000);
  afterAll(async () => t?.close(), 120_000);

  it("three rollbacks to one image, then a fourth patch refused at once, a new image accepted, and the quarantine lifted through rtmctl", async () => {
    const BAD = TEST_IMAGES.brokenStart;
    const games = [uniqueGameId("q"), uniqueGameId("q"), uniqueGameId("q"), uniqueGameId("q"), uniqueGameId("q")];
    await Promise.all(games.map((g) => t.client.start(g, TEST_IMAGES.v100)));
    const [a, b, c, d, e] = games as [string, string, string, string, string];

    // Three patches to the broken image, each rolled back by the health gate.
    const rolledBack = await Promise.all([a, b, c].map((g) => failure(t.client.patch(g, BAD))));
    for (const err of rolledBack) {
      expect(err.status).toBe(500);
      expect(err.code).toBe("container_start_failed");
      expect(err.message).toMatch(/rolled back to galaxy\/test-engine:1\.0\.0/);
    }
    const quarantinedEvent = await waitFor("image_quarantined", async () => (await t.store.eventsAfter(0)).find((ev) => ev.type === "image_quarantined"));
    expect(quarantinedEvent.data).toMatchObject({ imageRef: BAD, rollbacks: 3 });
    expect([a, b, c]).toContain(quarantinedEvent.gameId);
    expect(await metric(t, "rtmanager_images_quarantined")).toBe(1);

    // The fourth is refused before anything is written: no gate, no new generation, the engine untouched.
    const before = (await containersOf(t, d))[0]!;
    const declBefore = await t.store.get(d);
    const refused = await failure(t.client.patch(d, BAD));
    expect(refused.status).toBe(500);
    expect(refused.code).toBe("container_start_failed");
    expect(refused.message).toContain(`image ${BAD} is quarantined`);
    expect(refused.message).toContain(`rtmctl quarantine lift ${BAD}`);
    expect((await t.store.get(d))?.generation).toBe(declBefore?.generation);
    expect((await t.store.get(d))?.imageRef).toBe(TEST_IMAGES.v100);
    const after = await containersOf(t, d);
    expect(after.map((x) => [x.Id, x.Labels[LABELS.imageRef]])).toEqual([[before.Id, TEST_IMAGES.v100]]);
    const refusal = (await t.store.listOperations(d)).find((o) => o.kind === "patch");
    expect(refusal).toMatchObject({ outcome: "failure", errorCode: "container_start_failed" });

    // A patch written by another path (plain SQL) is held by the loop with the same message, the engine untouched.
    const eBefore = (await containersOf(t, e))[0]!;
    await t.store.sql.query("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [e, BAD]);
    const held = await waitFor("the SQL patch held", async () => {
      const r = await t.store.getRecord(e);
      return r?.lastErrorMessage?.includes("is quarantined") ? r : undefined;
    }, 20_000);
    expect(held.lastErrorCode).toBe("container_start_failed");
    expect((await containersOf(t, e)).map((x) => x.Id)).toEqual([eBefore.Id]);

    // A new image is never held by the old quarantine.
    const patched = await t.client.patch(d, TEST_IMAGES.v102);
    expect(patched.current_image_ref).toBe(TEST_IMAGES.v102);
    await runningOn(t, d, TEST_IMAGES.v102);

    // Listed and lifted through rtmctl.
    const list = await rtmctl(t.baseUrl, ["quarantine", "list", "-o", "json"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toMatchObject([{ imageRef: BAD, rollbacks: 3 }]);
    const table = await rtmctl(t.baseUrl, ["quarantine", "list"]);
    expect(table.stdout).toContain(BAD);
    // The SQL-held game would try the image again once lifted: send it back first.
    await t.store.sql.query("UPDATE declarations SET image_ref = $2 WHERE game_id = $1", [e, TEST_IMAGES.v100]);
    const lift = await rtmctl(t.baseUrl, ["quarantine", "lift", BAD]);
    expect(lift.code, lift.stderr).toBe(0);
    expect(lift.stdout).toContain(`quarantine of ${BAD} lifted`);
    expect((await rtmctl(t.baseUrl, ["quarantine", "lift", BAD])).code).toBe(11);
    const empty = await rtmctl(t.baseUrl, ["quarantine", "list", "-o", "json"]);
    expect(JSON.parse(empty.stdout)).toEqual([]);
    expect((await t.store.eventsAfter(0)).some((ev) => ev.type === "image_quarantine_lifted" && ev.data.imageRef === BAD)).toBe(true);
    expect(await metric(t, "rtmanager_images_quarantined")).toBe(0);

    // Lifted: a patch to the image is tried again (and, the image being broken, rolled back by its gate, not refused).
    const retried = await failure(t.client.patch(a, BAD));
    expect(retried.code).toBe("container_start_failed");
    expect(retried.message).toMatch(/rolled back to/);
    expect(retried.message).not.toContain("quarantined");
  }, 240_000);
});

describe("canaries", () => {
  let t: TestApp;
  beforeAll(async () => {
    // Long enough a healthy window to see the others wait behind the canary.
    t = await startTestApp({ env: { RTMANAGER_PATCH_CANARIES: "1", RTMANAGER_QUARANTINE_AFTER: "2", RTMANAGER_PATCH_MIN_HEALTHY: "3s", RTMANAGER_PATCH_HEALTH_TIMEOUT: "20s" } });
  }, 120_000);
  afterAll(async () => t?.close(), 120_000);

  it("canaries hold the rest of the fleet until they pass, and release it when they do", async () => {
    const games = [uniqueGameId("c"), uniqueGameId("c"), uniqueGameId("c"), uniqueGameId("c")];
    await Promise.all(games.map((g) => t.client.start(g, TEST_IMAGES.v100)));
    const oldIds = new Map(await Promise.all(games.map(async (g) => [g, (await runningOn(t, g, TEST_IMAGES.v100)).Id] as const)));
    const requeuesBefore = await metric(t, 'rtmanager_reconcile_total{result="requeue"}');

    const calls = games.map((g) => t.client.patch(g, TEST_IMAGES.v101));

    // One canary gates; the others are planned, held (a requeue), and keep their old engines.
    const canary = await waitFor("a canary's gate open", async () => {
      for (const g of games) if ((await t.store.getRecord(g))?.rolloutStartedAt) return g;
      return undefined;
    }, 20_000);
    const others = games.filter((g) => g !== canary);
    await waitFor("the others looked at and requeued", async () => (await metric(t, 'rtmanager_reconcile_total{result="requeue"}')) >= requeuesBefore + others.length, 10_000);
    expect((await t.store.getRecord(canary))?.rolloutStartedAt).not.toBeNull();
    for (const g of others) {
      const plan = await t.manager.reconciler.preview(g);
      expect(plan.reason).toContain("waiting for canaries");
      expect(plan.reason).toContain(canary);
      expect((await containersOf(t, g)).map((x) => [x.Id, x.Labels[LABELS.imageRef]])).toEqual([[oldIds.get(g), TEST_IMAGES.v100]]);
    }

    // The canary passes; the rest are released, and every REST call answers 200 within its op timeout.
    const records = await Promise.all(calls);
    for (const r of records) expect(r.current_image_ref).toBe(TEST_IMAGES.v101);
    for (const g of games) await runningOn(t, g, TEST_IMAGES.v101);
    const canaryOp = (await t.store.listOperations(canary)).find((o) => o.kind === "patch" && o.outcome === "success")!;
    expect(canaryOp.finishedAt).not.toBeNull();
    for (const g of others) {
      const op = (await t.store.listOperations(g)).find((o) => o.kind === "patch" && o.outcome === "success")!;
      // No other engine was touched before the canary passed its gate.
      expect(op.startedAt.getTime()).toBeGreaterThanOrEqual(canaryOp.finishedAt!.getTime());
    }
  }, 180_000);

  it("a canary that rolls back hands its slot to the next game; at the quarantine every game still waiting fails with its message, engines untouched", async () => {
    const BAD = TEST_IMAGES.brokenStart;
    const games = [uniqueGameId("f"), uniqueGameId("f"), uniqueGameId("f"), uniqueGameId("f")];
    await Promise.all(games.map((g) => t.client.start(g, TEST_IMAGES.v100)));
    const oldIds = new Map(await Promise.all(games.map(async (g) => [g, (await runningOn(t, g, TEST_IMAGES.v100)).Id] as const)));

    const errors = await Promise.all(games.map((g) => failure(t.client.patch(g, BAD))));
    for (const err of errors) expect(err.code).toBe("container_start_failed");
    const tried = games.filter((_, i) => /rolled back to/.test(errors[i]!.message));
    const spared = games.filter((_, i) => errors[i]!.message.includes(`image ${BAD} is quarantined`));
    // One canary at a time, two rollbacks (RTMANAGER_QUARANTINE_AFTER=2), then the quarantine for the rest.
    expect(tried).toHaveLength(2);
    expect(spared).toHaveLength(2);
    for (const g of spared) {
      expect((await containersOf(t, g)).map((x) => [x.Id, x.Labels[LABELS.imageRef]])).toEqual([[oldIds.get(g), TEST_IMAGES.v100]]);
      expect((await t.store.listOperations(g)).some((o) => o.kind === "rollback")).toBe(false);
    }
    for (const g of tried) await runningOn(t, g, TEST_IMAGES.v100);
    const rollbacks = (await t.store.eventsAfter(0)).filter((ev) => ev.type === "patch_rolled_back" && ev.data.failedImageRef === BAD);
    expect(rollbacks.map((ev) => ev.gameId).sort()).toEqual([...tried].sort());
  }, 180_000);
});
