/**
 * Paths the controller creates on the host (issue 21): a game's state
 * directory is checked without following a symlink (a link planted at
 * {stateRoot}/{gameId} is refused, its target never chowned, chmodded or
 * mounted), other users' bits are cleared, and the Unix socket is never
 * connectable by others, not even between bind and chmod.
 */
import { mkdirSync, statSync } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenOn } from "../../src/http/listen.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { prepareStateDir } from "../../src/runtime/docker/stateDir.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { TEST_IMAGES, ensureTestImages, testDocker, uniqueGameId } from "../helpers/docker.js";

let tmp: string;
const fsGroup = process.getuid!() === 0 ? 4242 : process.getgid!();

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-paths-"));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const modeOf = (p: string) => statSync(p).mode & 0o7777;

describe("state directories", () => {
  it("a symlink at the state path is refused (config_refused) and its target is left exactly as it was", async () => {
    const target = path.join(tmp, "victim");
    mkdirSync(target, { mode: 0o755 });
    await fs.chmod(target, 0o755);
    const before = statSync(target);
    const link = path.join(tmp, "root-1", "game-link");
    await fs.mkdir(path.dirname(link), { recursive: true });
    await fs.symlink(target, link);
    const err = await prepareStateDir(link, fsGroup).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect((err as RuntimeFailure).kind).toBe("config_refused");
    expect((err as Error).message).toContain("symbolic link");
    const after = statSync(target);
    expect([after.mode, after.gid, after.uid]).toEqual([before.mode, before.gid, before.uid]);
  });

  it("a file at the state path is refused; a pre-existing world-readable directory loses the others' bits", async () => {
    const file = path.join(tmp, "root-2", "game-file");
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, "x");
    const err = await prepareStateDir(file, fsGroup).then(
      () => null,
      (e: unknown) => e as RuntimeFailure,
    );
    expect(err?.kind).toBe("config_refused");
    expect(err?.message).toContain("not a directory");

    const open = path.join(tmp, "root-2", "game-open");
    mkdirSync(open);
    await fs.chmod(open, 0o777);
    expect(await prepareStateDir(open, fsGroup)).toMatchObject({ mode: 0o2770, problem: null });
    expect(modeOf(open)).toBe(0o2770);
  });

  describe("through the whole app", () => {
    let app: TestApp;
    beforeAll(async () => {
      await ensureTestImages();
      app = await startTestApp();
    }, 240_000);
    afterAll(async () => {
      await app?.close();
    }, 120_000);

    it("a REST start of a game whose state path is a planted symlink is start_config_invalid; nothing is mounted", async () => {
      const g = uniqueGameId("link");
      const target = path.join(tmp, `other-game-state-${g}`);
      mkdirSync(target, { mode: 0o700 });
      await fs.writeFile(path.join(target, "secret"), "another game's state");
      await fs.symlink(target, path.join(app.config.stateRoot, g));
      const res = await fetch(`${app.baseUrl}/api/v1/internal/runtimes/${g}/start`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ image_ref: TEST_IMAGES.v100 }),
      });
      const body = (await res.json()) as { error?: { code: string; message: string } };
      expect(res.status, JSON.stringify(body)).toBe(500);
      expect(body.error?.code).toBe("start_config_invalid");
      const containers = await testDocker().listContainers({ all: true, filters: { label: [`com.galaxy.rtmanager.instance=${app.instance}`, `com.galaxy.rtmanager.game-id=${g}`] } });
      expect(containers).toHaveLength(0);
      expect(modeOf(target)).toBe(0o700);
    }, 120_000);
  });
});

describe("unix socket", () => {
  it("is 0660 from the moment it exists, even under umask 000", async () => {
    const socketPath = path.join(tmp, "api.sock");
    const server = http.createServer();
    let modeWhenListening = -1;
    // 'listening' fires after bind(2) and before listenOn's own chmod.
    server.once("listening", () => {
      modeWhenListening = statSync(socketPath).mode & 0o777;
    });
    const previous = process.umask(0);
    try {
      await listenOn(server, { httpHost: undefined, httpPort: 0, httpSocketPath: socketPath });
    } finally {
      process.umask(previous);
    }
    try {
      expect(modeWhenListening.toString(8)).toBe("660");
      expect((statSync(socketPath).mode & 0o777).toString(8)).toBe("660");
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
