import { describe, expect, it, vi } from "vitest";
import { executeActions, type ExecutorSettings } from "../../src/controller/actions.js";
import { probeUrl } from "../../src/controller/health.js";
import { plan, type Action } from "../../src/controller/planner.js";
import { withContractErrors } from "../../src/controller/runtimeErrors.js";
import { configHash, type Declaration } from "../../src/model/declaration.js";
import { PERMANENT_CODES, RtmError } from "../../src/model/errors.js";
import { isDeclarative, type EngineEvent, type RuntimePort } from "../../src/model/ports.js";
import { EngineStillTerminating } from "../../src/model/runtimeFailure.js";
import type { EventType } from "../../src/model/status.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";
import { PLANNER_SETTINGS, runtimeRecord } from "../helpers/fixtures.js";
import { StubPodRuntime } from "../helpers/podRuntime.js";

const NOW = new Date("2026-11-23T12:00:00Z");

const SETTINGS: ExecutorSettings = {
  // "always" on purpose: a runtime that pulls by itself ignores the policy.
  imagePullPolicy: "always",
  stopTimeoutMs: 5000,
  stateRoot: "/var/lib/galaxy/state",
  defaultCpus: 0.5,
  defaultMemoryBytes: 64 * 1024 * 1024,
  defaultPidsLimit: 64,
};

function decl(over: Partial<Declaration> = {}): Declaration {
  return {
    gameId: "g1",
    imageRef: "galaxy/engine:1.0.0",
    desiredState: "running",
    restartPolicy: "on-failure",
    generation: 1,
    opId: "op-1",
    opSource: "gm_rest",
    env: { GALAXY_MODE: "ranked" },
    createdAt: NOW,
    updatedAt: NOW,
    ...over,
  };
}

async function execute(runtime: RuntimePort, actions: readonly Action[], declaration: Declaration, deferred?: { value: boolean }) {
  const events: { type: EventType; data: Record<string, unknown> }[] = [];
  const d = await executeActions(actions, {
    runtime,
    declaration,
    gameId: declaration.gameId,
    settings: SETTINGS,
    observer: { onAction: (type, data) => events.push({ type, data }) },
  });
  if (deferred) deferred.value = d;
  return events;
}

async function failureOf(p: Promise<unknown>): Promise<RtmError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RtmError);
    return err as RtmError;
  }
  throw new Error("expected a rejection");
}

describe("the runtime port fits a Pod runtime (StubPodRuntime)", () => {
  it("runs the planner's first-start plan through the real executor: one Pod, running the declared engine", async () => {
    const pods = new StubPodRuntime();
    const d = decl();
    const p = plan({ gameId: "g1", declaration: d, declarationError: null, containers: [], record: null, health: null, now: NOW, settings: PLANNER_SETTINGS, verbs: pods.verbs });

    const events = await execute(pods, p.actions, d);

    // No pull is planned for a runtime that pulls by itself; start found the Pod already running.
    expect(p.actions.map((a) => a.type)).toEqual(["create", "start"]);
    expect(pods.calls).toEqual(["create", "start"]);
    const engines = await pods.listForGame("g1");
    expect(engines).toHaveLength(1);
    const [engine] = engines;
    expect(engine).toMatchObject({
      name: "galaxy-game-g1",
      imageRef: "galaxy/engine:1.0.0",
      generation: 1,
      configHash: configHash(d),
      phase: "running",
    });
    expect(events).toEqual([
      { type: "container_created", data: { containerId: engine?.id, imageRef: "galaxy/engine:1.0.0" } },
      { type: "container_started", data: { containerId: engine?.id } },
    ]);
    // The controller probes where the runtime says: the Pod IP, no published port.
    expect(probeUrl(pods, engine!)).toMatch(/^http:\/\/10\.244\.0\.\d+:8080\/healthz$/);
    await expect.poll(() => pods.logs(engine!.id, 10)).toContain("engine galaxy/engine:1.0.0 starting");
  });

  it("runs the replace sequence a patch plans today (stop, remove, create, start) on it", async () => {
    const pods = new StubPodRuntime();
    await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.0" }, { type: "start", containerId: "created" }], decl());
    const [old] = await pods.listForGame("g1");
    const next = decl({ imageRef: "galaxy/engine:1.0.1", generation: 2 });

    const events = await execute(
      pods,
      [
        { type: "stop", containerId: old!.id, reason: null },
        { type: "remove", containerId: old!.id },
        { type: "create", imageRef: next.imageRef },
        { type: "start", containerId: "created" },
      ],
      next,
    );

    expect(events.map((e) => e.type)).toEqual(["container_stopped", "container_removed", "container_created", "container_started"]);
    const now = await pods.listForGame("g1");
    expect(now.map((e) => [e.imageRef, e.generation, e.phase])).toEqual([["galaxy/engine:1.0.1", 2, "running"]]);
    expect(now[0]?.id).not.toBe(old!.id);
  });

  it("a replace whose old Pod is held terminating stops before the create (the name is taken) and says so; the create comes in a later run, once the Pod is gone", async () => {
    const pods = new StubPodRuntime();
    await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.0" }, { type: "start", containerId: "created" }], decl());
    const [old] = await pods.listForGame("g1");
    const next = decl({ restartToken: "t2", generation: 2 });
    pods.holdDeletions = true;
    const replace: Action[] = [
      { type: "stop", containerId: old!.id, reason: null },
      { type: "remove", containerId: old!.id },
      { type: "create", imageRef: next.imageRef },
      { type: "start", containerId: "created" },
    ];
    const deferred = { value: false };
    pods.calls.length = 0;
    const events = await execute(pods, replace, next, deferred);
    expect(deferred.value).toBe(true);
    expect(events.map((e) => e.type)).toEqual(["container_stopped", "container_removed"]);
    expect(pods.calls).toEqual(["stop", "remove", "list"]);
    expect(await pods.listForGame("g1")).toMatchObject([{ id: old!.id, terminating: true }]);

    pods.releaseDeletions();
    const after = { value: true };
    expect((await execute(pods, [{ type: "create", imageRef: next.imageRef }, { type: "start", containerId: "created" }], next, after)).map((e) => e.type)).toEqual(["container_created", "container_started"]);
    expect(after.value).toBe(false);
    expect(await pods.listForGame("g1")).toMatchObject([{ restartToken: "t2", phase: "running", terminating: false }]);
  });

  it("a rollout's own replace (a rollback that is not in place) waits for the held Pod instead of leaving the create", async () => {
    vi.useFakeTimers();
    try {
      const pods = new StubPodRuntime();
      await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.1" }], decl({ imageRef: "galaxy/engine:1.0.1" }));
      pods.holdDeletions = true;
      let done = false;
      const rollback = executeActions([{ type: "removeAll", reason: null }, { type: "create", imageRef: "galaxy/engine:1.0.0" }], {
        runtime: pods,
        declaration: decl(),
        gameId: "g1",
        settings: SETTINGS,
        observer: { onAction: () => undefined },
        afterDeletion: "wait",
      }).then((d) => ((done = true), d));
      await vi.advanceTimersByTimeAsync(1000);
      const looks = pods.calls.filter((c) => c === "list").length;
      expect(looks).toBeGreaterThan(2);
      expect(done).toBe(false);
      pods.releaseDeletions();
      await vi.advanceTimersByTimeAsync(300);
      expect(await rollback).toBe(false);
      expect(await pods.listForGame("g1")).toMatchObject([{ imageRef: "galaxy/engine:1.0.0", phase: "running" }]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("an image update the runtime stops short of (EngineStillTerminating: a finished Pod it deleted is held) is left to a later reconcile, or, in a gate check's own rollback, waited for and then created", async () => {
    vi.useFakeTimers();
    try {
      const pods = new StubPodRuntime();
      await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.1" }], decl({ imageRef: "galaxy/engine:1.0.1" }));
      const [old] = await pods.listForGame("g1");
      pods.updateImage = async (id) => {
        pods.holdDeletions = true;
        await pods.remove(id);
        throw new EngineStillTerminating("updateImage", "the finished Pod is still being deleted");
      };
      const swap: Action[] = [{ type: "updateImage", containerId: old!.id, imageRef: "galaxy/engine:1.0.0" }];

      const deferred = { value: false };
      expect(await execute(pods, swap, decl(), deferred)).toEqual([]);
      expect(deferred.value).toBe(true);
      expect(await pods.listForGame("g1")).toMatchObject([{ id: old!.id, terminating: true }]);

      let done = false;
      const rollback = executeActions(swap, { runtime: pods, declaration: decl(), gameId: "g1", settings: SETTINGS, observer: { onAction: () => undefined }, afterDeletion: "wait" }).then(
        (d) => ((done = true), d),
      );
      await vi.advanceTimersByTimeAsync(1000);
      expect(pods.calls.filter((c) => c === "list").length).toBeGreaterThan(2);
      expect(done).toBe(false);
      pods.releaseDeletions();
      await vi.advanceTimersByTimeAsync(300);
      expect(await rollback).toBe(false);
      const [successor] = await pods.listForGame("g1");
      expect(successor).toMatchObject({ imageRef: "galaxy/engine:1.0.0", phase: "running" });
      expect(successor!.id).not.toBe(old!.id);
    } finally {
      vi.useRealTimers();
    }
  });

  it("patches in place when the planner asks it: one updateImage on the same engine, and the plan's rollback sets the image back", async () => {
    const pods = new StubPodRuntime();
    await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.0" }, { type: "start", containerId: "created" }], decl());
    const [old] = await pods.listForGame("g1");
    const record = runtimeRecord({ currentContainerId: old!.id, observedGeneration: 1 }, NOW);
    const next = decl({ imageRef: "galaxy/engine:1.0.1", generation: 2 });
    const p = plan({ gameId: "g1", declaration: next, declarationError: null, containers: [old!], record, health: null, now: NOW, settings: PLANNER_SETTINGS, verbs: pods.verbs });

    const events = await execute(pods, p.actions, next);
    expect(events).toEqual([{ type: "image_updated", data: { containerId: old!.id, imageRef: "galaxy/engine:1.0.1" } }]);
    const [patched] = await pods.listForGame("g1");
    expect([patched?.id, patched?.imageRef]).toEqual([old!.id, "galaxy/engine:1.0.1"]);

    await execute(pods, p.gate!.rollback, next);
    const [restored] = await pods.listForGame("g1");
    expect([restored?.id, restored?.imageRef]).toEqual([old!.id, "galaxy/engine:1.0.0"]);
  });

  it("leaves its failures to the controller, which maps them to the codes Docker's failures get", async () => {
    const pods = new StubPodRuntime();
    // The API server refuses the Pod: permanent, like Docker refusing a config.
    const tiny = decl({ resources: { memory: "1m" } });
    const refused = await failureOf(execute(pods, [{ type: "create", imageRef: tiny.imageRef }], tiny));
    expect(refused.code).toBe("start_config_invalid");
    expect(PERMANENT_CODES.has(refused.code)).toBe(true);

    await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.0" }], decl());
    expect((await failureOf(execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.0" }], decl()))).code).toBe("conflict");

    pods.down = true;
    const down = await failureOf(execute(pods, [{ type: "stop", containerId: "pod-1", reason: null }], decl()));
    expect(down.code).toBe("docker_unavailable");
    pods.down = false;
    // A step outside the runtime's vocabulary is refused before it reaches the runtime: a planner bug, not a runtime failure.
    const calls = pods.calls.length;
    const outside = await failureOf(execute(pods, [{ type: "ensureImage", imageRef: "galaxy/engine:1.0.0" }], decl()));
    expect(outside.code).toBe("internal_error");
    expect(outside.message).toMatch(/offers only apply, delete/);
    expect(pods.calls.length).toBe(calls);
    pods.down = true;
    // The same mapping guards every other caller (REST operations, readiness, the loop's reads).
    expect((await failureOf(withContractErrors(pods).listForGame("g1"))).code).toBe("docker_unavailable");
    expect((await failureOf(withContractErrors(pods).ping())).code).toBe("docker_unavailable");
  });

  it("reports an exit it restarted itself as an exit and a start of the same engine, which keeps running", async () => {
    const pods = new StubPodRuntime();
    const seen: EngineEvent[] = [];
    const stop = withContractErrors(pods).watchEvents({ onEvent: (e) => seen.push(e), onReconnect: () => undefined, onDisconnect: () => undefined });
    await execute(pods, [{ type: "create", imageRef: "galaxy/engine:1.0.0" }], decl());
    const [engine] = await pods.listForGame("g1");
    pods.crash(engine!.id, 137);
    stop();
    expect(seen.map((e) => [e.change, e.exitCode])).toEqual([
      ["created", null],
      ["started", null],
      ["exited", 137],
      ["started", null],
    ]);
    expect(seen.every((e) => e.engineId === engine!.id && e.gameId === "g1")).toBe(true);
    expect((await pods.listForGame("g1"))[0]).toMatchObject({ id: engine!.id, phase: "running" });
  });

  it("declares its vocabulary: Docker the imperative one, a Pod the declarative one, and only a declarative runtime offers updateImage", () => {
    const pods: RuntimePort = new StubPodRuntime();
    const docker: RuntimePort = new DockerRuntime({ instance: "capabilities-test", network: "galaxy-net" });
    expect(docker.verbs).toEqual(["pull", "create", "start", "stop", "remove"]);
    expect(pods.verbs).toEqual(["apply", "delete"]);
    for (const runtime of [docker, pods, withContractErrors(docker), withContractErrors(pods)]) {
      expect(typeof runtime.updateImage === "function").toBe(isDeclarative(runtime.verbs));
    }
  });
});
