import { describe, expect, it } from "vitest";
import { plan, type PlannerInput, type PlannerSettings, type RestartCause } from "../../src/controller/planner.js";
import type { Declaration } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";
import type { ObservedContainer } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { DOCKER_VERBS, observedContainer, PLANNER_SETTINGS, POD_VERBS, runtimeRecord } from "../helpers/fixtures.js";
import { StubJobRuntime } from "../helpers/jobRuntime.js";

const NOW = new Date("2026-11-23T12:00:00Z");
const ago = (ms: number) => new Date(NOW.getTime() - ms);

const settings: PlannerSettings = PLANNER_SETTINGS;

function decl(over: Partial<Declaration> = {}): Declaration {
  return {
    gameId: "g1",
    imageRef: "galaxy/engine:1.0.0",
    desiredState: "running",
    restartPolicy: "on-failure",
    generation: 2,
    opId: "op-writer",
    opSource: "gm_rest",
    createdAt: ago(60_000),
    updatedAt: ago(1000),
    ...over,
  };
}

function container(over: Partial<ObservedContainer> = {}): ObservedContainer {
  return observedContainer(over, ago(3_600_000));
}

function record(over: Partial<RuntimeRecord> = {}): RuntimeRecord {
  return runtimeRecord(
    {
      startedAt: ago(3_600_000),
      lastOpAt: ago(3_600_000),
      createdAt: ago(3_600_000),
      observedGeneration: 2,
      updatedAt: ago(1000),
      ...over,
    },
    NOW,
  );
}

function input(over: Partial<PlannerInput>): PlannerInput {
  return { gameId: "g1", declaration: null, declarationError: null, containers: [], record: null, health: null, now: NOW, settings, verbs: DOCKER_VERBS, ...over };
}

const types = (p: ReturnType<typeof plan>) => p.actions.map((a) => a.type);

/** A Docker plan's rollback: the previous image, local only, replacing whatever runs then. */
const ROLLBACK_TO_1_0_0 = [
  { type: "ensureImage", imageRef: "galaxy/engine:1.0.0", policy: "never" },
  { type: "removeAll", reason: null },
  { type: "create", imageRef: "galaxy/engine:1.0.0" },
  { type: "start", containerId: "created" },
];

describe("planner", () => {
  const cases: {
    name: string;
    in: Partial<PlannerInput>;
    kind: string | null;
    actions: string[];
    /** The restart cause the plan names; null (the default) when it restarts nothing. */
    cause?: RestartCause;
    extra?: (p: ReturnType<typeof plan>) => void;
  }[] = [
    {
      name: "declared running, nothing exists: pull, create, start",
      in: { declaration: decl({ generation: 1 }) },
      kind: "start",
      actions: ["ensureImage", "create", "start"],
      extra: (p) => {
        expect(p.opSource).toBe("gm_rest");
        expect(p.opId).toBe("op-writer");
      },
    },
    { name: "running as declared: nothing", in: { declaration: decl(), containers: [container()], record: record() }, kind: null, actions: [] },
    {
      name: "running container without a record (controller restart): adopt, no Docker call",
      in: { declaration: decl(), containers: [container()], record: null },
      kind: "reconcile_adopt",
      actions: [],
      extra: (p) => expect(p.events.map((e) => e.type)).toEqual(["container_adopted"]),
    },
    {
      name: "patch within the line: pull first, then stop, remove, create, start",
      in: { declaration: decl({ imageRef: "galaxy/engine:1.0.1", generation: 3 }), containers: [container()], record: record() },
      kind: "patch",
      actions: ["ensureImage", "stop", "remove", "create", "start"],
    },
    {
      name: "patch across minor: refused, nothing touched",
      in: { declaration: decl({ imageRef: "galaxy/engine:1.1.0", generation: 3 }), containers: [container()], record: record() },
      kind: "patch",
      actions: [],
      extra: (p) => expect(p.hold?.code).toBe("semver_patch_only"),
    },
    {
      name: "patch to a non-semver tag: image_ref_not_semver",
      in: { declaration: decl({ imageRef: "galaxy/engine:latest", generation: 3 }), containers: [container()], record: record() },
      kind: "patch",
      actions: [],
      extra: (p) => expect(p.hold?.code).toBe("image_ref_not_semver"),
    },
    {
      name: "restart token changed: recreate on the same image",
      in: { declaration: decl({ restartToken: "r1", generation: 3 }), containers: [container()], record: record() },
      kind: "restart",
      actions: ["ensureImage", "stop", "remove", "create", "start"],
      cause: "restart_requested",
    },
    {
      name: "declared stopped while running: stop with the declared reason",
      in: { declaration: decl({ desiredState: "stopped", stopReason: "finished", generation: 3 }), containers: [container()], record: record() },
      kind: "stop",
      actions: ["stop"],
      extra: (p) => expect(p.actions[0]).toMatchObject({ reason: "finished" }),
    },
    {
      name: "declared stopped and already stopped: nothing",
      in: {
        declaration: decl({ desiredState: "stopped", generation: 3 }),
        containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(1000) })],
        record: record({ status: "stopped", stoppedAt: ago(1000), observedGeneration: 3, lastOpAt: ago(1000) }),
      },
      kind: null,
      actions: [],
    },
    {
      name: "stopped past retention: remove, op_source auto_ttl",
      in: {
        declaration: decl({ desiredState: "stopped" }),
        containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(31 * 86_400_000) })],
        record: record({ status: "stopped", lastOpAt: ago(31 * 86_400_000) }),
      },
      kind: "retention",
      actions: ["remove"],
      extra: (p) => expect(p.opSource).toBe("auto_ttl"),
    },
    {
      name: "declared removed while running: stop then remove",
      in: { declaration: decl({ desiredState: "removed", generation: 3 }), containers: [container()], record: record() },
      kind: "cleanup",
      actions: ["stop", "remove"],
    },
    {
      name: "killed (exit 137) under on-failure, first time: restart the same container now",
      in: { declaration: decl(), containers: [container({ phase: "exited", exitCode: 137, finishedAt: ago(100) })], record: record() },
      kind: "self_heal",
      actions: ["start"],
      cause: "exit",
      extra: (p) => {
        expect(p.restartCount).toBe(1);
        expect(p.events.map((e) => e.type)).toEqual(["container_exited"]);
        expect(p.opSource).toBe("reconcile");
      },
    },
    {
      name: "a self-heal start that failed before (daemon restart): recreate instead of starting again",
      in: {
        declaration: decl({ restartPolicy: "always" }),
        containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(5000) })],
        record: record({ restartCount: 1, lastErrorCode: "container_start_failed", lastErrorGeneration: 2, status: "stopped", stoppedAt: ago(5000) }),
      },
      kind: "self_heal",
      actions: ["ensureImage", "remove", "create", "start"],
      cause: "start_failed",
      extra: (p) => expect(p.restartCount).toBe(2),
    },
    {
      name: "crash loop: fourth exit waits out the backoff (4 s) and says so",
      in: {
        declaration: decl(),
        containers: [container({ phase: "exited", exitCode: 1, finishedAt: ago(1000) })],
        record: record({ restartCount: 3 }),
      },
      kind: "record_exit",
      actions: [],
      extra: (p) => expect(p.requeueAfterMs).toBe(3000),
    },
    {
      name: "crash loop: backoff elapsed, restart and report crash_loop",
      in: {
        declaration: decl(),
        containers: [container({ phase: "exited", exitCode: 1, finishedAt: ago(10_000) })],
        record: record({ restartCount: 3, status: "stopped", stoppedAt: ago(10_000) }),
      },
      kind: "self_heal",
      actions: ["start"],
      cause: "exit",
      extra: (p) => expect(p.events.map((e) => e.type)).toContain("crash_loop"),
    },
    {
      name: "clean exit under on-failure stays stopped, recorded once",
      in: { declaration: decl(), containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(100) })], record: record() },
      kind: "record_exit",
      actions: [],
    },
    {
      name: "clean exit already recorded: nothing more",
      in: {
        declaration: decl(),
        containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(100) })],
        record: record({ status: "stopped", stoppedAt: ago(100) }),
      },
      kind: null,
      actions: [],
    },
    {
      name: "clean exit under always: restart",
      in: { declaration: decl({ restartPolicy: "always" }), containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(100) })], record: record() },
      kind: "self_heal",
      actions: ["start"],
      cause: "exit",
    },
    {
      name: "crash under never: recorded, stays stopped",
      in: { declaration: decl({ restartPolicy: "never" }), containers: [container({ phase: "exited", exitCode: 2, finishedAt: ago(100) })], record: record() },
      kind: "record_exit",
      actions: [],
    },
    {
      name: "OOM kill is reported as container_oom",
      in: { declaration: decl(), containers: [container({ phase: "exited", exitCode: 137, oomKilled: true, finishedAt: ago(100) })], record: record() },
      kind: "self_heal",
      actions: ["start"],
      cause: "oom",
      extra: (p) => expect(p.events.map((e) => e.type)).toEqual(["container_oom"]),
    },
    {
      name: "container disappeared: event and recreate",
      in: { declaration: decl(), containers: [], record: record() },
      kind: "self_heal",
      actions: ["ensureImage", "create", "start"],
      cause: "disappeared",
      extra: (p) => expect(p.events.map((e) => e.type)).toEqual(["container_disappeared"]),
    },
    {
      name: "start after stop (new generation): fresh container",
      in: {
        declaration: decl({ generation: 4 }),
        containers: [container({ phase: "exited", exitCode: 0, finishedAt: ago(100) })],
        record: record({ status: "stopped", observedGeneration: 3 }),
      },
      kind: "start",
      actions: ["ensureImage", "remove", "create", "start"],
    },
    {
      name: "crash between create and start: start the created container",
      in: { declaration: decl({ generation: 1 }), containers: [container({ phase: "pending", startedAt: null })], record: null },
      kind: "start",
      actions: ["start"],
    },
    {
      name: "orphan older than the grace period: stop and remove (orphan_cleanup)",
      in: { declaration: null, containers: [container()], record: record() },
      kind: "orphan_cleanup",
      actions: ["stop", "remove"],
      extra: (p) => {
        expect(p.actions[0]).toMatchObject({ reason: "orphan_cleanup" });
        expect(p.orphanReport).toBeNull();
      },
    },
    {
      name: "young orphan: left alone, looked at again after the grace",
      in: { declaration: null, containers: [container({ createdAt: ago(10_000) })], record: null },
      kind: null,
      actions: [],
      extra: (p) => {
        expect(p.requeueAfterMs).toBe(50_000);
        expect(p.orphanReport).toBeNull();
      },
    },
    {
      name: "orphan this store never recorded (a lost or replaced store): left running, reported",
      in: { declaration: null, containers: [container()], record: null },
      kind: null,
      actions: [],
      extra: (p) => {
        expect(p.reason).toMatch(/no record in this store/);
        expect(p.orphanReport).toEqual({ containerId: "c1", containerName: "galaxy-game-g1", imageRef: "galaxy/engine:1.0.0", why: "unrecorded" });
      },
    },
    {
      name: "orphan dry run: reported, not removed",
      in: { declaration: null, containers: [container()], record: record(), settings: { ...settings, orphanDryRun: true } },
      kind: null,
      actions: [],
      extra: (p) => {
        expect(p.reason).toMatch(/dry run/);
        expect(p.orphanReport?.why).toBe("dry_run");
      },
    },
    {
      name: "a stray second container for the game is removed",
      in: { declaration: decl(), containers: [container(), container({ id: "c2", name: "galaxy-game-g1-old", createdAt: ago(7_200_000) })], record: record() },
      kind: "orphan_cleanup",
      actions: ["stop", "remove"],
      extra: (p) => expect(p.actions[0]).toMatchObject({ containerId: "c2" }),
    },
    {
      name: "invalid stored declaration: held with start_config_invalid, nothing touched",
      in: { declaration: null, declarationError: new RtmError("start_config_invalid", "env.1BAD: bad name"), containers: [container()] },
      kind: null,
      actions: [],
      extra: (p) => expect(p.hold?.code).toBe("start_config_invalid"),
    },
    {
      name: "permanent failure of this generation: no retry until a new generation",
      in: {
        declaration: decl({ imageRef: "galaxy/engine:2.0.0", generation: 3 }),
        containers: [container()],
        record: record({ lastErrorCode: "semver_patch_only", lastErrorGeneration: 3, lastErrorMessage: "no" }),
      },
      kind: null,
      actions: [],
      extra: (p) => expect(p.hold?.code).toBe("semver_patch_only"),
    },
    {
      name: "unhealthy engine (3 failed probes) under on-failure: recreated",
      in: {
        declaration: decl(),
        containers: [container()],
        record: record(),
        health: { consecutiveFailures: 3, healthy: false, lastProbeAt: ago(10) },
      },
      kind: "self_heal",
      actions: ["ensureImage", "stop", "remove", "create", "start"],
      cause: "unhealthy",
    },
    {
      name: "unhealthy engine under never: reported only",
      in: {
        declaration: decl({ restartPolicy: "never" }),
        containers: [container()],
        record: record(),
        health: { consecutiveFailures: 5, healthy: false, lastProbeAt: ago(10) },
      },
      kind: null,
      actions: [],
    },
    {
      name: "env changed on a running engine: recreate on the same image, gated, cause config_changed",
      in: { declaration: decl({ env: { MODE: "ranked" }, generation: 3 }), containers: [container()], record: record() },
      kind: "restart",
      actions: ["ensureImage", "stop", "remove", "create", "start"],
      cause: "config_changed",
      extra: (p) => expect(p.gate).toMatchObject({ rollbackTo: null, rollback: [] }),
    },
    {
      name: "a container from before the config-hash label is not restarted for its config",
      in: { declaration: decl({ env: { MODE: "ranked" } }), containers: [container({ configHash: null })], record: record() },
      kind: null,
      actions: [],
    },
    {
      name: "unhealthy within the crash-loop backoff: waits, restarts nothing yet",
      in: {
        declaration: decl(),
        containers: [container({ startedAt: ago(500) })],
        record: record({ restartCount: 2 }),
        health: { consecutiveFailures: 3, healthy: false, lastProbeAt: ago(10) },
      },
      kind: null,
      actions: [],
      extra: (p) => expect(p.requeueAfterMs).toBe(1500),
    },
    {
      name: "a runtime that updates images in place (Pods): a patch is one in-place update, and so is its rollback",
      in: { declaration: decl({ imageRef: "galaxy/engine:1.0.1", generation: 3 }), containers: [container()], record: record(), verbs: POD_VERBS },
      kind: "patch",
      actions: ["updateImage"],
      extra: (p) => {
        expect(p.actions[0]).toEqual({ type: "updateImage", containerId: "c1", imageRef: "galaxy/engine:1.0.1" });
        expect(p.gate?.rollback).toEqual([{ type: "updateImage", containerId: "c1", imageRef: "galaxy/engine:1.0.0" }]);
      },
    },
    {
      name: "Pods: one edit of image and env is not an in-place swap (a swap keeps the old env): the engine is recreated on the new image, gated",
      in: {
        declaration: decl({ imageRef: "galaxy/engine:1.0.1", env: { MODE: "ranked" }, generation: 3 }),
        containers: [container()],
        record: record(),
        verbs: POD_VERBS,
      },
      kind: "patch",
      actions: ["stop", "remove", "create", "start"],
      extra: (p) => {
        expect(p.actions.find((a) => a.type === "create")).toEqual({ type: "create", imageRef: "galaxy/engine:1.0.1" });
        expect(p.gate?.rollbackTo).toBe("galaxy/engine:1.0.0");
      },
    },
    {
      name: "Pods: a Pod the kubelet rejected at admission (Failed, OutOfcpu) is replaced under on-failure, the reason in the event and the record's error",
      in: {
        declaration: decl(),
        containers: [container({ phase: "exited", exitCode: null, finishedAt: null, createdAt: ago(60_000), problem: { kind: "start_failed", reason: "OutOfcpu", message: "Node didn't have enough resource: cpu", final: true } })],
        record: record(),
        verbs: POD_VERBS,
      },
      kind: "self_heal",
      actions: ["remove", "create", "start"],
      cause: "exit",
      extra: (p) => {
        expect(p.events[0]).toMatchObject({ type: "container_exited", data: { reason: "OutOfcpu", message: "Node didn't have enough resource: cpu" } });
        expect(p.problem).toEqual({ code: "container_start_failed", message: "OutOfcpu: Node didn't have enough resource: cpu" });
      },
    },
    {
      name: "Pods: a start whose Pod the kubelet rejected (OutOfcpu) gets a new Pod at once, the rejection reported",
      in: {
        declaration: decl({ generation: 3 }),
        containers: [container({ phase: "exited", exitCode: null, finishedAt: null, problem: { kind: "start_failed", reason: "OutOfcpu", message: "Pod was rejected", final: true } })],
        record: record({ currentContainerId: "pod:old" }),
        verbs: POD_VERBS,
      },
      kind: "start",
      actions: ["remove", "create", "start"],
      extra: (p) => {
        expect(p.events.map((e) => e.type)).toEqual(["container_exited"]);
        expect(p.problem?.message).toBe("OutOfcpu: Pod was rejected");
      },
    },
    {
      name: "Pods: a Failed Pod under restart policy never is left as it is, its reason recorded",
      in: {
        declaration: decl({ restartPolicy: "never" }),
        containers: [container({ phase: "exited", exitCode: null, finishedAt: null, restartPolicy: "never", problem: { kind: "start_failed", reason: "OutOfmemory", message: "Node didn't have enough resource: memory", final: true } })],
        record: record(),
        verbs: POD_VERBS,
      },
      kind: "record_exit",
      actions: [],
      extra: (p) => expect(p.problem?.message).toBe("OutOfmemory: Node didn't have enough resource: memory"),
    },
    {
      name: "Pods: a container the kubelet cannot create (CreateContainerConfigError) is reported as the record's error, nothing recreated",
      in: {
        declaration: decl(),
        containers: [container({ phase: "pending", problem: { kind: "start_failed", reason: "CreateContainerConfigError", message: 'secret "x" not found', final: false } })],
        record: record({ currentContainerId: "c1", status: "running" }),
        verbs: POD_VERBS,
      },
      kind: "self_heal",
      actions: ["start"],
      extra: (p) => expect(p.problem).toEqual({ code: "container_start_failed", message: 'CreateContainerConfigError: secret "x" not found' }),
    },
    {
      name: "Pods: an unschedulable Pod is reported as a transient service_unavailable",
      in: {
        declaration: decl({ generation: 3 }),
        containers: [container({ phase: "pending", problem: { kind: "refused_for_now", reason: "Unschedulable", message: "0/1 nodes are available: 1 Insufficient cpu.", final: false } })],
        record: record(),
        verbs: POD_VERBS,
      },
      kind: "start",
      actions: ["start"],
      extra: (p) => expect(p.problem).toEqual({ code: "service_unavailable", message: "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu." }),
    },
    {
      name: "a runtime that restarts exited engines itself (Pods): the exit is recorded, never raced with a start",
      in: {
        declaration: decl(),
        containers: [container({ phase: "exited", exitCode: 137, finishedAt: ago(100) })],
        record: record(),
        verbs: POD_VERBS,
      },
      kind: "record_exit",
      actions: [],
      extra: (p) => {
        expect(p.events.map((e) => e.type)).toEqual(["container_exited"]);
        expect(p.restartCount).toBe(0);
      },
    },
    {
      name: "Pods: unhealthy on a healthy node, backoff over: recreated by the controller (a readiness probe restarts nothing)",
      in: {
        declaration: decl(),
        containers: [container({ startedAt: ago(5000), restartCount: 0, ready: false })],
        record: record({ restartCount: 1 }),
        health: { consecutiveFailures: 3, healthy: false, lastProbeAt: ago(10) },
        verbs: POD_VERBS,
      },
      kind: "self_heal",
      actions: ["stop", "remove", "create", "start"],
      cause: "unhealthy",
      extra: (p) => expect(p.restartCount).toBe(2),
    },
    {
      name: "Pods: unhealthy on a healthy node within the crash-loop backoff: waits",
      in: {
        declaration: decl(),
        containers: [container({ startedAt: ago(500), restartCount: 0, ready: false })],
        record: record({ restartCount: 2 }),
        health: { consecutiveFailures: 3, healthy: false, lastProbeAt: ago(10) },
        verbs: POD_VERBS,
      },
      kind: null,
      actions: [],
      extra: (p) => expect(p.requeueAfterMs).toBe(1500),
    },
    {
      name: "Pods: an engine the kubelet is swapping in place (a rollback) is not recreated on the old container's failures",
      in: {
        declaration: decl(),
        containers: [container({ phase: "running", restarting: true, startedAt: ago(5000), restartCount: 0, ready: false })],
        record: record(),
        health: { consecutiveFailures: 6, healthy: false, lastProbeAt: ago(10) },
        verbs: POD_VERBS,
      },
      kind: null,
      actions: [],
    },
    {
      name: "Pods: unhealthy on a lost node: nothing recreated, node_lost reported once",
      in: {
        declaration: decl(),
        containers: [container({ restartCount: 0, ready: false, lostPlacement: { node: "node-1", reason: "NodeStatusUnknown", since: ago(40_000) } })],
        record: record(),
        health: { consecutiveFailures: 9, healthy: false, lastProbeAt: ago(10) },
        verbs: POD_VERBS,
      },
      kind: null,
      actions: [],
      extra: (p) => {
        expect(p.events).toEqual([{ type: "node_lost", data: { node: "node-1", reason: "NodeStatusUnknown", since: ago(40_000).toISOString(), containerId: "c1" } }]);
        expect(p.converges).toBe(false);
        expect(p.reason).toContain("node.kubernetes.io/out-of-service");
      },
    },
    {
      name: "Pods: still on the lost node, already reported: nothing, no second node_lost",
      in: {
        declaration: decl(),
        containers: [container({ restartCount: 0, ready: false, lostPlacement: { node: "node-1", reason: "NodeStatusUnknown", since: ago(40_000) } })],
        record: record({ lostNode: "node-1", lostNodeSince: ago(40_000) }),
        health: { consecutiveFailures: 9, healthy: false, lastProbeAt: ago(10) },
        verbs: POD_VERBS,
      },
      kind: null,
      actions: [],
      extra: (p) => expect(p.events).toEqual([]),
    },
    {
      name: "Pods: a patch waits while the node is lost (nothing reaches the Pod)",
      in: {
        declaration: decl({ imageRef: "galaxy/engine:1.0.1", generation: 3 }),
        containers: [container({ restartCount: 0, lostPlacement: { node: "node-1", reason: "NodeStatusUnknown", since: ago(40_000) } })],
        record: record({ lostNode: "node-1", lostNodeSince: ago(40_000) }),
        verbs: POD_VERBS,
      },
      kind: null,
      actions: [],
    },
    {
      name: "Pods: the lost node's Pod is gone (out-of-service, force-deleted): recreated, node_lost_cleared reported",
      in: { declaration: decl(), containers: [], record: record({ lostNode: "node-1", lostNodeSince: ago(40_000) }), verbs: POD_VERBS },
      kind: "self_heal",
      actions: ["create", "start"],
      cause: "disappeared",
      extra: (p) =>
        expect(p.events.map((e) => [e.type, e.data.node ?? null, e.data.how ?? null])).toEqual([
          ["node_lost_cleared", "node-1", "engine_replaced"],
          ["container_disappeared", null, null],
        ]),
    },
    {
      name: "Pods: the lost node came back with the engine on it: node_lost_cleared, nothing recreated",
      in: { declaration: decl(), containers: [container({ restartCount: 0 })], record: record({ lostNode: "node-1", lostNodeSince: ago(40_000) }), verbs: POD_VERBS },
      kind: null,
      actions: [],
      extra: (p) => expect(p.events.map((e) => [e.type, e.data.how])).toEqual([["node_lost_cleared", "node_ready"]]),
    },
    {
      name: "Pods: a kubelet restart in a Pod the controller recreated is recorded, though its count is below the record's",
      in: { declaration: decl(), containers: [container({ id: "c2", restartCount: 1 })], record: record({ restartCount: 3 }), verbs: POD_VERBS },
      kind: "record_exit",
      actions: [],
      extra: (p) => expect(p.events.map((e) => e.type)).toEqual(["container_exited"]),
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const p = plan(input(c.in));
      expect(types(p)).toEqual(c.actions);
      expect(p.kind).toBe(c.kind);
      expect(p.restartCause).toBe(c.cause ?? null);
      c.extra?.(p);
    });
  }

  // A third runtime (a Nomad-job-shaped stub, test/helpers/jobRuntime.ts) passes the Pod runtime's cases with the
  // vocabulary it declares itself: the planner knows runtimes only by their verbs.
  const jobs = new StubJobRuntime();
  const declarativeCases = cases.filter((c) => c.in.verbs === POD_VERBS);
  it("the Pod runtime's cases are a real share of the table", () => expect(declarativeCases.length).toBeGreaterThanOrEqual(10));
  for (const c of declarativeCases) {
    it(`${c.name} [third runtime: ${jobs.name}]`, () => {
      const p = plan(input({ ...c.in, verbs: jobs.verbs }));
      expect(types(p)).toEqual(c.actions);
      expect(p.kind).toBe(c.kind);
      expect(p.restartCause).toBe(c.cause ?? null);
      c.extra?.(p);
    });
  }

  it("gates a patch on health with the old image as rollback target", () => {
    const p = plan(input({ declaration: decl({ imageRef: "galaxy/engine:1.0.1", generation: 3 }), containers: [container()], record: record() }));
    expect(p.gate).toEqual({
      minHealthyMs: 5000,
      timeoutMs: 60_000,
      rollbackTo: "galaxy/engine:1.0.0",
      rollback: ROLLBACK_TO_1_0_0,
      resumed: false,
    });
  });

  it("gates a restart without a rollback target; a plain start is not gated unless configured", () => {
    const restart = plan(input({ declaration: decl({ restartToken: "r2", generation: 3 }), containers: [container()], record: record() }));
    expect(restart.gate?.rollbackTo).toBeNull();
    expect(plan(input({ declaration: decl({ generation: 1 }) })).gate).toBeNull();
    expect(plan(input({ declaration: decl({ generation: 1 }), settings: { ...settings, startWaitHealthy: true } })).gate).not.toBeNull();
  });

  it("resumes an interrupted health gate with the time left, without touching Docker", () => {
    const p = plan(
      input({
        declaration: decl({ imageRef: "galaxy/engine:1.0.1", generation: 3 }),
        containers: [container({ imageRef: "galaxy/engine:1.0.1", id: "c2" })],
        record: record({ currentContainerId: "c2", currentImageRef: "galaxy/engine:1.0.1", previousImageRef: "galaxy/engine:1.0.0", rolloutStartedAt: ago(20_000) }),
      }),
    );
    expect(types(p)).toEqual([]);
    expect(p.kind).toBe("patch");
    expect(p.gate).toEqual({
      minHealthyMs: 5000,
      timeoutMs: 40_000,
      rollbackTo: "galaxy/engine:1.0.0",
      rollback: ROLLBACK_TO_1_0_0,
      resumed: true,
    });
  });

  it("an engine a runtime that starts engines itself has accepted (a Pod not running yet) is waited for within the start bound, then started (which fails it)", () => {
    const pending = (ageMs: number) =>
      plan(
        input({
          declaration: decl({ generation: 2 }),
          containers: [container({ id: "pod:u1", phase: "pending", startedAt: null, createdAt: ago(ageMs) })],
          record: record({ currentContainerId: "pod:u1", status: "stopped", observedGeneration: 1 }),
          verbs: POD_VERBS,
          settings: { ...settings, podStartTimeoutMs: 30_000 },
        }),
      );
    const young = pending(10_000);
    expect(types(young)).toEqual([]);
    expect(young).toMatchObject({ kind: null, converges: false, requeueAfterMs: 2000 });
    expect(pending(29_500).requeueAfterMs).toBe(500);
    // Past the bound the runtime is asked to start it: it answers start_failed, the start's error.
    expect(types(pending(30_000))).toEqual(["start"]);
    // An accepted engine whose image the runtime says it cannot pull is asked at once: the runtime answers pull_failed.
    const dead = plan(
      input({
        declaration: decl({ generation: 2 }),
        containers: [container({ id: "pod:u1", phase: "pending", problem: { kind: "pull_failed", reason: "ImagePullBackOff", message: "Back-off pulling image", final: false }, startedAt: null, createdAt: ago(1000) })],
        record: record({ currentContainerId: "pod:u1", status: "stopped", observedGeneration: 1 }),
        verbs: POD_VERBS,
      }),
    );
    expect(types(dead)).toEqual(["start"]);
  });

  it("an engine the runtime is deleting (a Pod in its grace) is waited for whatever is declared: nothing acts on it, nothing converges, the game is looked at again", () => {
    const going = container({ id: "pod:u1", phase: "exited", exitCode: 0, finishedAt: ago(500), terminating: true });
    const cases: [string, Declaration | null, RuntimeRecord][] = [
      ["stopped", decl({ desiredState: "stopped", stopReason: "admin_request", generation: 3 }), record({ currentContainerId: "pod:u1", status: "stopped", observedGeneration: 2 })],
      ["removed", decl({ desiredState: "removed", generation: 3 }), record({ currentContainerId: "pod:u1", status: "stopped", observedGeneration: 2 })],
      ["running", decl({ generation: 3, restartToken: "t2" }), record({ currentContainerId: "pod:u1", status: "stopped", observedGeneration: 2 })],
      ["orphan", null, record({ currentContainerId: "pod:u1", status: "stopped" })],
    ];
    for (const [what, declaration, rec] of cases) {
      const p = plan(input({ declaration, containers: [going], record: rec, verbs: POD_VERBS }));
      expect({ what, actions: types(p), converges: p.converges, requeueAfterMs: p.requeueAfterMs, gate: p.gate }).toEqual({ what, actions: [], converges: false, requeueAfterMs: 2000, gate: null });
      expect(p.reason).toContain("deleting engine pod:u1");
    }
    // The same engine once its deletion is over is planned as usual: stopped converges, running recreates.
    const gone = { ...going, terminating: false };
    expect(plan(input({ declaration: cases[0]![1], containers: [gone], record: cases[0]![2], verbs: POD_VERBS })).converges).toBe(true);
    expect(types(plan(input({ declaration: cases[2]![1], containers: [gone], record: cases[2]![2], verbs: POD_VERBS })))).toContain("create");
    // A stray the runtime is deleting already is not deleted again.
    const stray = container({ id: "pod:u0", name: "galaxy-game-g1-old", terminating: true });
    expect(types(plan(input({ declaration: decl(), containers: [container({ id: "pod:u1" }), stray], record: record({ currentContainerId: "pod:u1" }), verbs: POD_VERBS })))).toEqual([]);
  });

  it("an open gate whose engine exited or vanished is checked once more (the check fails it into the rollback), not restarted or recreated", () => {
    const gateRecord = record({ currentContainerId: "c2", currentImageRef: "galaxy/engine:1.0.1", previousImageRef: "galaxy/engine:1.0.0", rolloutStartedAt: ago(2_000) });
    const d = decl({ imageRef: "galaxy/engine:1.0.1", generation: 3 });
    const exited = plan(input({ declaration: d, containers: [container({ imageRef: "galaxy/engine:1.0.1", id: "c2", phase: "exited", exitCode: 1, finishedAt: ago(100) })], record: gateRecord }));
    const vanished = plan(input({ declaration: d, containers: [], record: gateRecord }));
    for (const p of [exited, vanished]) {
      expect(types(p)).toEqual([]);
      expect(p.gate).toMatchObject({ resumed: true, rollbackTo: "galaxy/engine:1.0.0", rollback: ROLLBACK_TO_1_0_0 });
    }
    // A newer declaration than the gate's image is not the gate: it is planned as itself.
    const newer = plan(input({ declaration: decl({ imageRef: "galaxy/engine:1.0.2", generation: 4 }), containers: [], record: gateRecord }));
    expect(newer.gate?.resumed ?? false).toBe(false);
    expect(types(newer)).toContain("create");
  });

  it("never retries a rolled-back generation, but keeps the restored engine alive", () => {
    const held = record({ heldGeneration: 3, lastErrorCode: "container_start_failed", lastErrorGeneration: 3, lastErrorMessage: "rolled back" });
    const idle = plan(input({ declaration: decl({ imageRef: "galaxy/engine:1.0.3", generation: 3 }), containers: [container()], record: held }));
    expect(types(idle)).toEqual([]);
    expect(idle.hold?.code).toBe("container_start_failed");
    const crashed = plan(
      input({
        declaration: decl({ imageRef: "galaxy/engine:1.0.3", generation: 3 }),
        containers: [container({ phase: "exited", exitCode: 1, finishedAt: ago(100) })],
        record: held,
      }),
    );
    expect(types(crashed)).toEqual(["start"]);
    const next = plan(input({ declaration: decl({ imageRef: "galaxy/engine:1.0.2", generation: 4 }), containers: [container()], record: held }));
    expect(next.kind).toBe("patch");
  });

  it("retries a patch whose image could not be pulled: pull first, old engine untouched until then, not held", () => {
    const failedPull = record({ lastErrorCode: "image_pull_failed", lastErrorGeneration: 3, lastErrorMessage: "pull of galaxy/engine:1.0.9 failed" });
    const p = plan(input({ declaration: decl({ imageRef: "galaxy/engine:1.0.9", generation: 3 }), containers: [container()], record: failedPull }));
    expect(p.hold).toBeNull();
    expect(p.kind).toBe("patch");
    expect(types(p)).toEqual(["ensureImage", "stop", "remove", "create", "start"]);
    expect(p.actions[0]).toEqual({ type: "ensureImage", imageRef: "galaxy/engine:1.0.9" });
    expect(p.gate?.rollbackTo).toBe("galaxy/engine:1.0.0");
  });

  it("recreates a running engine whose env or resources changed; an unlabelled (older) container is left alone", () => {
    const changed = plan(input({ declaration: decl({ env: { MAP: "spiral" }, generation: 3 }), containers: [container()], record: record() }));
    expect(changed.kind).toBe("restart");
    expect(types(changed)).toEqual(["ensureImage", "stop", "remove", "create", "start"]);
    const legacy = plan(input({ declaration: decl({ env: { MAP: "spiral" }, generation: 3 }), containers: [container({ configHash: null })], record: record() }));
    expect(types(legacy)).toEqual([]);
  });

  it("resets the restart count after running longer than the reset period", () => {
    const p = plan(input({ declaration: decl(), containers: [container({ startedAt: ago(700_000) })], record: record({ restartCount: 4 }) }));
    expect(p.restartCount).toBe(0);
  });
});

describe("planner: a restart policy fixed at creation (issue 12)", () => {
  const onPods = (policy: Declaration["restartPolicy"], observed: ObservedContainer["restartPolicy"]) =>
    plan(input({ declaration: decl({ restartPolicy: policy, generation: 3 }), containers: [container({ restartPolicy: observed })], record: record(), verbs: POD_VERBS }));

  it("a Pod created under another restart policy is recreated on the same image, gated, cause config_changed, and the reason says so", () => {
    const p = onPods("always", "on-failure");
    expect(p.kind).toBe("restart");
    // The runtime pulls by itself: no pull in a declarative plan.
    expect(types(p)).toEqual(["stop", "remove", "create", "start"]);
    expect(p.restartCause).toBe("config_changed");
    expect(p.gate).toMatchObject({ rollbackTo: null, rollback: [] });
    expect(p.reason).toBe("restart policy changed (on-failure -> always): recreating the container on the same image");
  });

  it("a Pod under the declared restart policy is left alone", () => {
    const p = onPods("never", "never");
    expect(types(p)).toEqual([]);
    expect(p.kind).toBeNull();
  });

  it("Docker reports no policy (the controller applies it): a changed policy recreates nothing", () => {
    const p = plan(input({ declaration: decl({ restartPolicy: "always", generation: 3 }), containers: [container()], record: record() }));
    expect(types(p)).toEqual([]);
    expect(p.kind).toBeNull();
  });

  it("env and restart policy changed together: one recreate, the reason names both", () => {
    const p = plan(
      input({
        declaration: decl({ restartPolicy: "never", env: { MODE: "ranked" }, generation: 3 }),
        containers: [container({ restartPolicy: "on-failure" })],
        record: record(),
        verbs: POD_VERBS,
      }),
    );
    expect(p.restartCause).toBe("config_changed");
    expect(p.reason).toMatch(/^env or resources changed; restart policy changed \(on-failure -> never\)/);
  });
});
