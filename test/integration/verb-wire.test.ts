/**
 * Each lifecycle verb end to end through the code the verb table drives:
 * rtmctl parses it, the typed client sends it, the real HTTP server routes
 * it, reads its body by the table's schema and hands it to the operations
 * layer's one entry point, `perform(verb, gameId, body, ctx)`. The operations
 * layer is a recording stand-in (typed against HttpOperations), so what is
 * checked is the wire: a verb that any of the four places got wrong arrives
 * under another name, with another body, or not at all.
 */
import { mkdtempSync, rmSync } from "node:fs";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/cli/rtmctl.js";
import type { OpContext, OpResult } from "../../src/controller/operations.js";
import { createHttpServer, type HttpOperations } from "../../src/http/index.js";
import { VERB_NAMES, type VerbBody, type VerbName } from "../../src/model/verbs.js";
import { openStore } from "../../src/store/open.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import { runtimeRecord } from "../helpers/fixtures.js";

interface Performed {
  verb: VerbName;
  gameId: string;
  body: unknown;
  opId: string;
  opSource: string;
}

const performed: Performed[] = [];
const record = runtimeRecord({ gameId: "game-7", currentContainerId: "c-game-7" }, new Date("2026-03-01T10:00:00Z"));

const operations: HttpOperations = {
  get: async () => record,
  list: async () => [record],
  peek: () => undefined,
  peekList: () => undefined,
  perform: async <V extends VerbName>(verb: V, gameId: string, body: VerbBody<V>, ctx: OpContext): Promise<OpResult> => {
    performed.push({ verb, gameId, body, opId: ctx.opId, opSource: ctx.opSource });
    return { record, replay: false };
  },
};

let dir: string;
let store: SqlStore;
let server: http.Server;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "rtm-verbwire-"));
  store = await openStore({ dataDir: path.join(dir, "pglite") });
  server = createHttpServer({ operations, state: store, logger: pino({ level: "silent" }), readiness: async () => null });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()));
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function rtmctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await run(argv, { env: { RTMCTL_SERVER: base }, io: { out: (t) => void (out += t), err: (t) => void (err += t), stderrIsTty: false } });
  return { code, out, err };
}

describe("a verb from rtmctl to the operations layer", () => {
  const cases: Record<VerbName, { argv: string[]; body: unknown }> = {
    start: { argv: ["start", "game-7", "registry/galaxy/engine:1.4.2"], body: { image_ref: "registry/galaxy/engine:1.4.2" } },
    stop: { argv: ["stop", "game-7", "--reason", "finished"], body: { reason: "finished" } },
    restart: { argv: ["restart", "game-7"], body: undefined },
    patch: { argv: ["patch", "game-7", "registry/galaxy/engine:1.4.3"], body: { image_ref: "registry/galaxy/engine:1.4.3" } },
    cleanup: { argv: ["cleanup", "game-7"], body: undefined },
  };

  it.each([...VERB_NAMES])("%s arrives as itself, with the body the table defines and rtmctl's op id", async (verb) => {
    performed.length = 0;
    const { code, out, err } = await rtmctl(...cases[verb].argv, "--op-id", `op-${verb}-0001`, "-o", "json");
    expect({ code, err }).toEqual({ code: 0, err: `${verb} game-7: op op-${verb}-0001\n` });
    expect(JSON.parse(out)).toMatchObject({ game_id: "game-7", status: "running", current_container_id: "c-game-7" });
    expect(performed).toEqual([{ verb, gameId: "game-7", body: cases[verb].body, opId: `op-${verb}-0001`, opSource: "admin_rest" }]);
  });

  it("a body the table's schema refuses never reaches the operations layer", async () => {
    performed.length = 0;
    const res = await fetch(`${base}/api/v1/internal/runtimes/game-7/stop`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ reason: "finished", extra: true }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
    expect(performed).toEqual([]);
  });
});
