/**
 * RTMANAGER_OP_TIMEOUT: a mutation the loop cannot finish in time answers
 * 503 service_unavailable with its op id, and the declaration it wrote stays
 * for the loop to finish. Here the loop is slow because a patch waits for an
 * engine that never turns healthy (and then rolls it back).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmApiError } from "../../src/client/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";

let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp({ env: { RTMANAGER_OP_TIMEOUT: "2s", RTMANAGER_PATCH_HEALTH_TIMEOUT: "5s" } });
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

describe("operation timeout", () => {
  it("answers 503 with the op id when the loop is slower, keeps the declaration, and the loop still finishes it", async () => {
    const g = uniqueGameId("timeout");
    // On a loaded machine even a start can outlast 2 s: then it finishes in the background.
    await app.client.start(g, TEST_IMAGES.v100).catch((err: unknown) => {
      if (!(err instanceof RtmApiError && err.code === "service_unavailable")) throw err;
    });
    await waitFor("the engine to run", async () => (await app.client.get(g)).status === "running", 60_000, 100);

    const err = await app.client.patch(g, TEST_IMAGES.unhealthy, { opId: "slow-patch-000001" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtmApiError);
    expect(err).toMatchObject({ status: 503, code: "service_unavailable", opId: "slow-patch-000001" });
    expect((err as RtmApiError).message).toMatch(/RTMANAGER_OP_TIMEOUT/);

    // The write was accepted, not lost: the declaration asks for the new image.
    const view = await app.client.extRecord(g);
    expect(view.declaration).toMatchObject({ imageRef: TEST_IMAGES.unhealthy, generation: 2 });

    // The loop keeps going after the answer: the gate fails and the patch rolls back.
    const settled = await waitFor(
      "the rollback",
      async () => {
        const v = await app.client.extRecord(g);
        return v.record?.heldGeneration === 2 ? v.record : undefined;
      },
      60_000,
      200,
    );
    expect(settled).toMatchObject({ currentImageRef: TEST_IMAGES.v100, status: "running", lastErrorCode: "container_start_failed" });
    const ops = await app.client.operations(g);
    expect(ops.find((o) => o.opId === "slow-patch-000001" && o.kind === "patch")).toMatchObject({ outcome: "failure" });
    expect(ops.some((o) => o.kind === "rollback" && o.outcome === "success")).toBe(true);
  }, 120_000);
});
