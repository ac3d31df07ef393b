/**
 * Several clients writing one game at once. The store serialises declaration
 * writes, so there is a last accepted write (the declaration's op id names
 * it); once the loop settles, the runtime must be what that write asked for,
 * with exactly one container for the game.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmApiError, type RtmClient } from "../../src/client/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";

let app: TestApp;
let clients: RtmClient[];

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp();
  clients = [
    app.newClient({ caller: "gm" }),
    app.newClient({ caller: "admin" }),
    app.newClient(),
    app.newClient({ caller: "gm" }),
    app.newClient({ caller: "admin" }),
  ];
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

type Intent = { op: "start"; image: string } | { op: "patch"; image: string } | { op: "stop" };

interface Outcome {
  opId: string;
  intent: Intent;
  status: number;
  code: string | null;
}

async function fire(gameId: string, intents: Intent[]): Promise<Outcome[]> {
  return Promise.all(
    intents.map(async (intent, i) => {
      const client = clients[i % clients.length]!;
      const opId = `conc-${i}-${randomBytes(5).toString("hex")}`;
      try {
        if (intent.op === "start") await client.start(gameId, intent.image, { opId });
        else if (intent.op === "patch") await client.patch(gameId, intent.image, { opId });
        else await client.stop(gameId, "admin_request", { opId });
        return { opId, intent, status: 200, code: null };
      } catch (err) {
        if (err instanceof RtmApiError) return { opId, intent, status: err.status, code: err.code };
        throw err;
      }
    }),
  );
}

/** Waits for the loop to catch up with the declaration, then checks the runtime is what the last accepted write asked for. */
async function expectSettledOnLastWrite(gameId: string, outcomes: Outcome[]): Promise<Intent> {
  for (const o of outcomes) {
    // Losing a race is a refusal (409) or success; never a server fault.
    expect([200, 409], JSON.stringify(o)).toContain(o.status);
  }
  const declaration = await app.store.get(gameId);
  expect(declaration).not.toBeNull();
  const last = outcomes.find((o) => o.opId === declaration!.opId);
  expect(last, `declaration written by ${declaration!.opId}`).toBeDefined();
  expect(last!.status).toBe(200);

  const record = await waitFor(
    "record at the declaration's generation",
    async () => {
      const r = await app.store.getRecord(gameId);
      return r && r.observedGeneration >= declaration!.generation && r.rolloutStartedAt === null ? r : undefined;
    },
    30_000,
  );
  const intent = last!.intent;
  if (intent.op === "stop") {
    expect(declaration!.desiredState).toBe("stopped");
    expect(record.status).toBe("stopped");
  } else {
    expect(declaration!.desiredState).toBe("running");
    expect(declaration!.imageRef).toBe(intent.image);
    expect(record.status).toBe("running");
    expect(record.currentImageRef).toBe(intent.image);
  }
  const containers = await app.docker.listForGame(gameId);
  expect(containers.map((c) => c.id)).toEqual([record.currentContainerId]);
  expect(containers[0]!.phase).toBe(intent.op === "stop" ? "exited" : "running");
  return intent;
}

describe("concurrent writers on one game", () => {
  it("five identical starts make one container and one generation", async () => {
    const g = uniqueGameId("race");
    const outcomes = await fire(g, Array.from({ length: 5 }, () => ({ op: "start" as const, image: TEST_IMAGES.v100 })));
    expect(outcomes.every((o) => o.status === 200)).toBe(true);
    await expectSettledOnLastWrite(g, outcomes);
    expect((await app.store.get(g))!.generation).toBe(1);
  }, 60_000);

  it("patches and a stop racing end where the last accepted write said", async () => {
    const g = uniqueGameId("race");
    await clients[0]!.start(g, TEST_IMAGES.v100);
    const outcomes = await fire(g, [
      { op: "patch", image: TEST_IMAGES.v101 },
      { op: "patch", image: TEST_IMAGES.v102 },
      { op: "stop" },
      { op: "patch", image: TEST_IMAGES.v101 },
      { op: "patch", image: TEST_IMAGES.v102 },
    ]);
    await expectSettledOnLastWrite(g, outcomes);
  }, 120_000);

  it("starts of different images and stops racing on a stopped game", async () => {
    const g = uniqueGameId("race");
    await clients[0]!.start(g, TEST_IMAGES.v100);
    await clients[0]!.stop(g, "finished");
    const outcomes = await fire(g, [
      { op: "start", image: TEST_IMAGES.v101 },
      { op: "stop" },
      { op: "start", image: TEST_IMAGES.v102 },
      { op: "start", image: TEST_IMAGES.v101 },
      { op: "stop" },
      { op: "patch", image: TEST_IMAGES.v102 },
    ]);
    await expectSettledOnLastWrite(g, outcomes);
  }, 120_000);

  it("repeated rounds keep exactly one container", async () => {
    const g = uniqueGameId("race");
    await clients[0]!.start(g, TEST_IMAGES.v100);
    const images = [TEST_IMAGES.v100, TEST_IMAGES.v101, TEST_IMAGES.v102];
    for (let round = 0; round < 3; round++) {
      const outcomes = await fire(
        g,
        Array.from({ length: 4 }, (_, i): Intent => ((i + round) % 3 === 2 ? { op: "stop" } : { op: "start", image: images[(i + round) % 3]! })),
      );
      await expectSettledOnLastWrite(g, outcomes);
    }
  }, 180_000);
});
