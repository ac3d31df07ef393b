import type { ReconcilerSettings } from "../../src/controller/reconciler.js";
/** A complete RuntimeRecord for tests; override what the test is about. */
import { configHash } from "../../src/model/declaration.js";
import type { ObservedContainer } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import type { PlannerSettings } from "../../src/controller/planner.js";

export function runtimeRecord(over: Partial<RuntimeRecord> & { gameId?: string } = {}, now = new Date()): RuntimeRecord {
  const gameId = over.gameId ?? "g1";
  return {
    gameId,
    status: "running",
    currentContainerId: "c1",
    currentImageRef: "galaxy/engine:1.0.0",
    engineEndpoint: `http://galaxy-game-${gameId}:8080`,
    statePath: `/state/${gameId}`,
    dockerNetwork: "galaxy-net",
    startedAt: now,
    stoppedAt: null,
    removedAt: null,
    lastOpAt: now,
    createdAt: now,
    observedGeneration: 1,
    restartCount: 0,
    lastExitCode: null,
    lastErrorCode: null,
    lastErrorMessage: null,
    lastErrorGeneration: null,
    health: "healthy",
    consecutiveProbeFailures: 0,
    lastProbeAt: null,
    previousImageRef: null,
    rolloutStartedAt: null,
    degraded: false,
    heldGeneration: null,
    lostNode: null,
    lostNodeSince: null,
    updatedAt: now,
    ...over,
  };
}

/** A running managed engine as an imperative runtime's list shows it; override what the test is about. */
export function observedContainer(over: Partial<ObservedContainer> = {}, now = new Date()): ObservedContainer {
  return {
    id: "c1",
    name: "galaxy-game-g1",
    gameId: "g1",
    instance: "rtm",
    generation: 1,
    imageRef: "galaxy/engine:1.0.0",
    restartToken: null,
    configHash: configHash({}),
    phase: "running",
    restarting: false,
    exitCode: null,
    oomKilled: false,
    createdAt: now,
    startedAt: now,
    finishedAt: null,
    publishedPort: null,
    networkAddresses: {},
    restartCount: null,
    ready: null,
    restartPolicy: null,
    lostPlacement: null,
    problem: null,
    ...over,
  };
}

// The planner tests use the real runtimes' vocabularies, so a runtime whose vocabulary changes cannot pass unnoticed.
export { DOCKER_VERBS } from "../../src/runtime/docker/dockerRuntime.js";
export { POD_VERBS } from "../../src/runtime/kubernetes/podRuntime.js";

/** The planner's production defaults, for unit tests of the planner and the reconciler. */
export const PLANNER_SETTINGS: PlannerSettings = {
  retentionMs: 30 * 86_400_000,
  restartBackoffBaseMs: 1000,
  restartBackoffMaxMs: 300_000,
  crashLoopResetMs: 600_000,
  orphanGraceMs: 60_000,
  orphanDryRun: false,
  probeFailureThreshold: 3,
  patchHealthTimeoutMs: 60_000,
  patchMinHealthyMs: 5000,
  startWaitHealthy: false,
};

/** Reconciler settings for unit tests that run the real reconciler against fakes. */
export const RECONCILER_SETTINGS: ReconcilerSettings = {
  ...PLANNER_SETTINGS,
  imagePullPolicy: "if_not_present",
  stopTimeoutMs: 1000,
  engineNetwork: "galaxy-net",
  stateRoot: "/nonexistent",
  defaultCpus: 1,
  defaultMemoryBytes: 64 * 1024 * 1024,
  defaultPidsLimit: 64,
  probeTimeoutMs: 500,
};
