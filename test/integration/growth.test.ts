/**
 * Bounded growth (issue 21): RTMANAGER_MAX_GAMES refuses a REST start of a
 * new game with 409 conflict (games already known still start), and a flood
 * of requests that change nothing (replays, refusals) does not grow the
 * operation log: one row per game, kind and code a minute.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId } from "../helpers/docker.js";

let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp({ env: { RTMANAGER_MAX_GAMES: "2" } });
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

const start = (gameId: string, image: string = TEST_IMAGES.v100) =>
  fetch(`${app.baseUrl}/api/v1/internal/runtimes/${gameId}/start`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-galaxy-caller": "gm" },
    body: JSON.stringify({ image_ref: image }),
  });

async function rows(gameId: string): Promise<number> {
  const { rows: r } = await app.store.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM operation_log WHERE game_id = $1", [gameId]);
  return r[0]!.n;
}

const a = uniqueGameId("cap");
const b = uniqueGameId("cap");
const c = uniqueGameId("cap");

describe("RTMANAGER_MAX_GAMES", () => {
  it("a start of a new game past the cap is 409 conflict and writes no declaration; known games still start", async () => {
    expect((await start(a)).status).toBe(200);
    expect((await start(b)).status).toBe(200);
    const refused = await start(c);
    const body = (await refused.json()) as { error?: { code: string; message: string } };
    expect(refused.status).toBe(409);
    expect(body.error?.code).toBe("conflict");
    expect(body.error?.message).toContain("RTMANAGER_MAX_GAMES=2");
    expect(await app.store.get(c)).toBeNull();
    expect(await app.store.getRecord(c)).toBeNull();
    // A game the installation holds is not a new one.
    expect((await start(a)).status).toBe(200);
  }, 120_000);
});

describe("operation log under a flood", () => {
  it("200 replays of a start and 200 refused starts add at most one row each", async () => {
    const replaysBefore = await rows(a);
    const refusedBefore = await rows(c);
    for (let round = 0; round < 20; round++) {
      const replies = await Promise.all(Array.from({ length: 10 }, () => start(a)));
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
    }
    expect((await rows(a)) - replaysBefore).toBeLessThanOrEqual(1);
    for (let round = 0; round < 20; round++) {
      const refused = await Promise.all(Array.from({ length: 10 }, () => start(c)));
      expect(refused.map((r) => r.status)).toEqual(Array(10).fill(409));
    }
    expect((await rows(c)) - refusedBefore).toBeLessThanOrEqual(1);
    // The game is still served and its record unchanged by the flood.
    expect((await app.store.getRecord(a))?.status).toBe("running");
  }, 180_000);
});
