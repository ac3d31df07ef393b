/**
 * A limit that rounds to "none" is refused, never dropped (issue 21): an image
 * labelled com.galaxy.cpu_quota=1e-10, built here, would otherwise get
 * Math.round(1e-10 * 1e9) = 0 nano-CPUs, which Docker reads as "no CPU limit".
 * Real Docker, the whole app, loopback only.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, testDocker, uniqueGameId } from "../helpers/docker.js";

const run = promisify(execFile);
const tag = `galaxy/test-engine-tinycpu:${randomBytes(4).toString("hex")}`;
let app: TestApp;

async function containersOf(gameId: string): Promise<number> {
  const list = await testDocker().listContainers({ all: true, filters: { label: [`com.galaxy.rtmanager.instance=${app.instance}`, `com.galaxy.rtmanager.game-id=${gameId}`] } });
  return list.length;
}

beforeAll(async () => {
  await ensureTestImages();
  await run("sh", ["-c", `printf 'FROM ${TEST_IMAGES.v100}\\nLABEL com.galaxy.cpu_quota=1e-10\\n' | DOCKER_BUILDKIT=0 docker build -q -t ${tag} -`], { timeout: 120_000 });
  app = await startTestApp();
}, 300_000);

afterAll(async () => {
  await app?.close();
  await testDocker().getImage(tag).remove().catch(() => undefined);
}, 60_000);

describe("limits with a floor", () => {
  it("an image labelled com.galaxy.cpu_quota=1e-10 is start_config_invalid over REST: no container runs without a CPU limit", async () => {
    const g = uniqueGameId("tinycpu");
    const res = await fetch(`${app.baseUrl}/api/v1/internal/runtimes/${g}/start`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image_ref: tag }),
    });
    const body = (await res.json()) as { error?: { code: string; message: string } };
    expect(res.status, JSON.stringify(body)).toBe(500);
    expect(body.error?.code).toBe("start_config_invalid");
    expect(body.error?.message).toContain("cpus");
    expect(await containersOf(g)).toBe(0);
    expect((await app.store.getRecord(g))?.lastErrorCode).toBe("start_config_invalid");
  }, 120_000);

  it("a SQL declaration asking for 1e-10 CPUs is refused by the table, and nothing is planned", async () => {
    const g = uniqueGameId("sqlcpu");
    const err = await app.store.sql
      .query(`INSERT INTO declarations (game_id, image_ref, resources) VALUES ($1, $2, '{"cpus": 1e-10}'::jsonb)`, [g, TEST_IMAGES.v100])
      .then(
        () => null,
        (e: unknown) => e as { code?: string },
      );
    expect(err?.code).toBe("23514");
    expect(await app.store.get(g)).toBeNull();
    expect(await containersOf(g)).toBe(0);
  }, 60_000);
});
