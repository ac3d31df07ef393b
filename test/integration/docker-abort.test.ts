/**
 * The Docker adapter under a reconcile's AbortSignal (issue 18 part 3),
 * against a wedged engine: a loopback server that accepts Docker API
 * connections and never answers. Only the caller's signal can end a call
 * there before the adapter's own deadline (set to a minute here): the call
 * rejects with the AbortedError, no RuntimeFailure, and the HTTP request is
 * torn down (the server sees its connection close), not merely left behind.
 */
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import Dockerode from "dockerode";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AbortedError } from "../../src/model/abort.js";
import type { CallOptions } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";

const open = new Set<net.Socket>();
let accepted = 0;
let closed = 0;
const wedged = net.createServer((socket) => {
  accepted++;
  open.add(socket);
  socket.on("data", () => undefined);
  socket.on("close", () => {
    closed++;
    open.delete(socket);
  });
});

let runtime: DockerRuntime;
let stateRoot = "";
beforeAll(async () => {
  stateRoot = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-docker-abort-"));
  await new Promise<void>((resolve) => wedged.listen({ host: "127.0.0.1", port: 0 }, resolve));
  const { port } = wedged.address() as net.AddressInfo;
  runtime = new DockerRuntime({ docker: new Dockerode({ host: "127.0.0.1", port, protocol: "http" }), instance: "abort-test", network: "none", callTimeoutMs: 60_000 });
});
afterAll(async () => {
  for (const s of open) s.destroy();
  await new Promise<void>((resolve) => wedged.close(() => resolve()));
  await fs.rm(stateRoot, { recursive: true, force: true });
});

const calls: [string, (o: CallOptions) => Promise<unknown>][] = [
  ["start", (o) => runtime.start("0123456789ab", o)],
  ["stop", (o) => runtime.stop("0123456789ab", 30, o)],
  ["remove", (o) => runtime.remove("0123456789ab", o)],
  ["listForGame", (o) => runtime.listForGame("g1", o)],
];

describe("Docker calls under a signal, against an engine that never answers", () => {
  it.each(calls)("%s: the signal ends the call with its AbortedError and tears the request down", async (_name, call) => {
    const before = { accepted, closed };
    const controller = new AbortController();
    const outcome = call({ signal: controller.signal }).then(
      () => "resolved",
      (err: unknown) => err,
    );
    // The request is provably at the engine before the signal fires.
    await expect.poll(() => accepted - before.accepted, { timeout: 10_000 }).toBe(1);
    controller.abort(new AbortedError("this replica lost leadership"));
    const err = await outcome;
    expect(err).toBeInstanceOf(AbortedError);
    expect(err).not.toBeInstanceOf(RuntimeFailure);
    expect((err as Error).message).toBe("this replica lost leadership");
    await expect.poll(() => closed - before.closed, { timeout: 10_000 }).toBe(1);
  });

  it("a signal that has already fired sends no request at all", async () => {
    const before = accepted;
    const controller = new AbortController();
    controller.abort(new AbortedError("shutting down"));
    await expect(runtime.create({ gameId: "g1", name: "galaxy-game-g1", imageRef: "galaxy/test-engine:1.0.0", generation: 1, restartToken: null, configHash: "x", env: {}, statePath: path.join(stateRoot, "g1"), resources: { cpus: 0, memoryBytes: 0, pidsLimit: 0 } }, { signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    await expect(runtime.start("0123456789ab", { signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    // Not even the state directory was made.
    await expect(fs.readdir(stateRoot)).resolves.toEqual([]);
    // Another call, answered by nobody, shows the server is still reachable and counting.
    const probe = new AbortController();
    const pending = runtime.start("0123456789ab", { signal: probe.signal }).catch(() => undefined);
    await expect.poll(() => accepted - before, { timeout: 10_000 }).toBe(1);
    probe.abort(new AbortedError("done"));
    await pending;
  });
});
