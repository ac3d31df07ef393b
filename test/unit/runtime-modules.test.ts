/**
 * One module per engine runtime (src/runtime/module.ts): what each declares
 * (its settings, its event stream's label and liveness rule, its readiness)
 * and what the loop does with it. The liveness half runs the real
 * RuntimeEventWatchRunnable on fake timers: a Pod fleet that is quiet must
 * keep its one event stream (its watches keep themselves alive), while a
 * silent Docker event stream is replaced.
 */
import { describe, expect, it } from "vitest";
import { RUNTIME_MODULES } from "../../src/app.js";
import { CONFIG_DOCS, loadConfig } from "../../src/config.js";
import { RuntimeEventWatchRunnable, type RuntimeEventStream, type WatchName } from "../../src/controller/runnables/watches.js";
import { createLogger } from "../../src/log.js";
import type { EngineEventHandlers, RuntimePort } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { dockerModule } from "../../src/runtime/docker/module.js";
import { podModule } from "../../src/runtime/kubernetes/module.js";
import { fakeRuntime } from "../helpers/fakeRuntime.js";
import { elapse, until, useFakeTime } from "../helpers/fakeTime.js";

const modules = Object.values(RUNTIME_MODULES);
const logger = createLogger("silent", "test-runtime-modules");

describe("runtime modules", () => {
  it("app.ts finds each runtime by the RTMANAGER_RUNTIME value that names it, and the configuration accepts exactly those", () => {
    expect(Object.keys(RUNTIME_MODULES).sort()).toEqual(["docker", "kubernetes"]);
    for (const [name, module] of Object.entries(RUNTIME_MODULES)) {
      expect(module.name).toBe(name);
      expect(loadConfig({ RTMANAGER_RUNTIME: name }).runtime).toBe(name);
    }
    expect(() => loadConfig({ RTMANAGER_RUNTIME: "nomad" })).toThrow(/RTMANAGER_RUNTIME/);
  });

  it("each runtime's settings are documented (a CONFIG_DOCS row, so a README row) and belong to it alone", () => {
    const documented = new Set(CONFIG_DOCS.map((s) => s.env));
    const owners = new Map<string, string[]>();
    for (const m of modules) {
      for (const env of m.settings) {
        expect(documented.has(env), `${m.name}: ${env} has no CONFIG_DOCS row`).toBe(true);
        owners.set(env, [...(owners.get(env) ?? []), m.name]);
      }
    }
    expect([...owners].filter(([, by]) => by.length > 1)).toEqual([]);
    // The naming convention says which runtime a setting is for: each such setting is in that runtime's slice.
    const prefixed = CONFIG_DOCS.map((s) => s.env).filter((env) => /^RTMANAGER_(POD|DOCKER)_/.test(env));
    expect(prefixed.filter((env) => !owners.has(env))).toEqual([]);
    expect(prefixed.filter((env) => env.startsWith("RTMANAGER_POD_")).every((env) => owners.get(env)?.[0] === "kubernetes")).toBe(true);
  });

  it("each event stream has its own metric label, none the declaration watches' (postgres, kubernetes)", () => {
    const labels = modules.map((m) => m.events.label);
    expect(new Set(labels).size).toBe(labels.length);
    for (const label of labels) expect(["postgres", "kubernetes"]).not.toContain(label);
    expect(podModule.events).toEqual({ label: "pods", liveness: "self-kept" });
    expect(dockerModule.events).toEqual({ label: "docker", liveness: "replace-when-silent" });
  });

  it("readiness names the runtime that runs and its setting: a missing Docker network, a Pod namespace that cannot be listed", async () => {
    const config = loadConfig({ RTMANAGER_DOCKER_NETWORK: "games-net", RTMANAGER_POD_NAMESPACE: "team-a" });
    // The Docker runtime words its missing network (DockerRuntime.setupProblem); the module adds what to do.
    const noNetwork = fakeRuntime({}, { setupProblem: async () => "Docker network games-net (RTMANAGER_DOCKER_NETWORK) does not exist" });
    expect(await dockerModule.ready(noNetwork, config)).toEqual({
      reason: "Docker network games-net (RTMANAGER_DOCKER_NETWORK) does not exist",
      fix: "create it with: docker network create games-net",
    });
    const forbidden = fakeRuntime({}, {
      setupProblem: () => Promise.reject(new RuntimeFailure("failed", "ping", 'pods is forbidden: cannot list resource "pods" in "team-a"')),
    });
    const notReady = await podModule.ready(forbidden, config);
    expect(notReady?.reason).toBe("Pods in namespace team-a (RTMANAGER_POD_NAMESPACE) cannot be listed");
    expect(notReady?.reason).not.toMatch(/docker/i);
    expect(notReady?.detail).toContain("forbidden");
    const listable = fakeRuntime();
    expect(await podModule.ready(listable, config)).toBeNull();
    expect(await dockerModule.ready(listable, config)).toBeNull();
  });
});

/** A runtime whose event stream is silent until the test speaks on it; counts how often it was opened and closed. */
function quietRuntime(name: string) {
  const streams: EngineEventHandlers[] = [];
  let closed = 0;
  const runtime = {
    name,
    watchEvents: (handlers: EngineEventHandlers) => {
      streams.push(handlers);
      return () => void closed++;
    },
  } as Pick<RuntimePort, "name" | "watchEvents"> as RuntimePort;
  return { runtime, streams, closed: () => closed };
}

function watchOf(stream: RuntimeEventStream, runtime: RuntimePort, silenceLimitMs: number) {
  const seen = { messages: [] as WatchName[], relists: [] as WatchName[], resyncs: [] as string[], enqueued: [] as string[] };
  const watch = new RuntimeEventWatchRunnable({
    runtime,
    stream,
    silenceLimitMs,
    logger,
    enqueue: (gameId) => seen.enqueued.push(gameId),
    requestResync: (why) => seen.resyncs.push(why),
    hooks: { onWatchMessage: (w) => seen.messages.push(w), onRelist: (w) => seen.relists.push(w) },
  });
  return { watch, seen };
}

describe("the runtime event watch keeps each runtime's liveness rule", () => {
  useFakeTime();
  const SILENCE_MS = 4_000;

  it("a quiet Pod fleet keeps its one event stream: no restart, no relist, no resync, however long the silence", async () => {
    const pods = quietRuntime("kubernetes");
    const { watch, seen } = watchOf(podModule.events, pods.runtime, SILENCE_MS);
    watch.start();
    // Ten silence limits, and the watchdog provably looked all along (every half limit).
    await until("the watchdog looked 20 times", () => watch.looks >= 20, 20 * SILENCE_MS);
    expect(pods.streams).toHaveLength(1);
    expect(pods.closed()).toBe(0);
    expect(seen.relists).toEqual([]);
    expect(seen.resyncs).toEqual([]);

    // Its events count under its own label, not Docker's.
    pods.streams[0]!.onEvent({ gameId: "g1", engineId: "c1", change: "started", exitCode: null });
    expect(seen.messages).toEqual(["pods"]);
    expect(seen.enqueued).toEqual(["g1"]);
    // A relist it made itself (a watch re-established) still asks the loop to resync.
    pods.streams[0]!.onReconnect();
    expect(seen.relists).toEqual(["pods"]);
    expect(seen.resyncs).toEqual(["kubernetes event stream re-established"]);
    await watch.stop();
    expect(pods.closed()).toBe(1);
  });

  it("a Docker event stream silent past the limit is replaced and everything re-listed; one that speaks is kept", async () => {
    const docker = quietRuntime("docker");
    const { watch, seen } = watchOf(dockerModule.events, docker.runtime, SILENCE_MS);
    watch.start();
    // Speaking more often than the limit keeps the stream.
    for (let i = 0; i < 4; i++) {
      await elapse(SILENCE_MS / 2);
      docker.streams.at(-1)!.onEvent({ gameId: "g1", engineId: "c1", change: "exited", exitCode: 1 });
    }
    expect(watch.looks).toBeGreaterThanOrEqual(3);
    expect(docker.streams).toHaveLength(1);
    // Silence past the limit: replaced, counted as a relist of the docker watch, and a resync asked for.
    await until("the stream replaced", () => docker.streams.length === 2, 2 * SILENCE_MS);
    expect(docker.closed()).toBe(1);
    expect(seen.relists).toEqual(["docker"]);
    expect(seen.resyncs).toEqual(["docker event stream silent"]);
    expect(seen.messages.every((w) => w === "docker")).toBe(true);
    await watch.stop();
  });
});
