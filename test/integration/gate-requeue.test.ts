/**
 * Issue 18: no worker waits in a health gate. One worker, five games in a
 * 20 s healthy window: a start of a sixth game answers while all five gates
 * are still open, and each patch call still answers only after its verdict.
 * Real Docker, the whole app (createApp).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { ensureTestImages, TEST_IMAGES, uniqueGameId, waitFor } from "../helpers/docker.js";

let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp({
    env: {
      RTMANAGER_CONCURRENCY: "1",
      // A healthy engine, but a 20 s healthy window: each gate stays open for 20 s.
      RTMANAGER_PATCH_MIN_HEALTHY: "20s",
      RTMANAGER_PATCH_HEALTH_TIMEOUT: "90s",
      RTMANAGER_OP_TIMEOUT: "80s",
    },
  });
}, 120_000);

afterAll(async () => {
  await app?.close();
}, 60_000);

describe("health gates as requeues", () => {
  it("with one worker and five games in a 20 s gate, a start of a sixth game answers while every gate is still open", async () => {
    const games = Array.from({ length: 5 }, () => uniqueGameId());
    for (const g of games) expect((await app.client.start(g, TEST_IMAGES.v100)).status).toBe("running");

    const answered = new Set<string>();
    const patches = games.map((g) =>
      app.client.patch(g, TEST_IMAGES.v101).then((r) => {
        answered.add(g);
        return r;
      }),
    );
    // All five gates open at once: with one worker, none of them holds it.
    for (const g of games) {
      await waitFor(`${g}'s gate open`, async () => ((await app.store.getRecord(g))?.rolloutStartedAt ? true : undefined), 30_000, 50);
    }

    const sixth = uniqueGameId();
    const started = await app.client.start(sixth, TEST_IMAGES.v100);
    expect(started).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v100 });

    // No gate has a verdict yet: every record still shows its gate open and the generation unreached,
    // and no patch call has answered.
    for (const g of games) {
      const r = await app.store.getRecord(g);
      expect(r, g).toMatchObject({ currentImageRef: TEST_IMAGES.v101, heldGeneration: null, degraded: false, lastErrorCode: null });
      expect(r?.rolloutStartedAt, g).not.toBeNull();
      expect(r?.observedGeneration, g).toBe(1);
    }
    expect([...answered]).toEqual([]);

    // The gates carry on to their verdicts, and each patch call answers with it.
    for (const r of await Promise.all(patches)) expect(r).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101 });
    for (const g of games) expect(await app.store.getRecord(g)).toMatchObject({ rolloutStartedAt: null, observedGeneration: 2 });
  }, 180_000);
});
