/**
 * One rtmanager per runtime for the shared behavioural suite
 * (test/integration/runtime-behaviour.test.ts), each through the production
 * wiring (createApp): engines as Docker containers (as test/helpers/app.ts
 * wires them) or as Pods (RTMANAGER_RUNTIME=kubernetes against the test API
 * server and the test kubelet on containerd's CRI), declarations in PGlite or
 * in a real PostgreSQL. Each fixture carries what its runtime does
 * differently BY DESIGN (README, "Engines as Pods", "Docker and Pods side by
 * side"); the scenarios assert those values instead of skipping.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { App } from "../../src/app.js";
import { POD_NAMESPACE, startPodTestApp } from "./podApp.js";
import { startTestApp } from "./app.js";
import { TEST_IMAGES, uniqueInstance } from "./docker.js";

/** A registry address nothing listens on: pulls from it fail at once, on loopback. */
export const UNREACHABLE_REPO = "127.0.0.1:9/galaxy/test-engine";

export interface SuiteImages {
  v100: string;
  v101: string;
  v110: string;
  unhealthy: string;
  /** 1.0.0 under a name no registry serves, present only where the engines run: its patches cannot pull. */
  local100: string;
  /** A patch of local100 to a version nobody has. */
  unpullablePatch: string;
  /** A start of an image nobody has. */
  missing: string;
}

/**
 * The suite's engine images: test/engine's builds, or with RTMANAGER_E2E_IMAGE_REPO (npm run
 * e2e:cluster) the same tags pushed by the operator to that repository; there the 1.0.9 nobody
 * pushed is the patch that cannot pull, as a registry answers for a tag it does not have.
 */
export function suiteImages(env: NodeJS.ProcessEnv = process.env): SuiteImages {
  const repo = env.RTMANAGER_E2E_IMAGE_REPO;
  if (!repo) {
    return { v100: TEST_IMAGES.v100, v101: TEST_IMAGES.v101, v110: TEST_IMAGES.v110, unhealthy: TEST_IMAGES.unhealthy, local100: `${UNREACHABLE_REPO}:1.0.0`, unpullablePatch: `${UNREACHABLE_REPO}:1.0.9`, missing: `${UNREACHABLE_REPO}:1.0.9` };
  }
  return { v100: `${repo}:1.0.0`, v101: `${repo}:1.0.1`, v110: `${repo}:1.1.0`, unhealthy: `${repo}:1.0.3`, local100: `${repo}:1.0.0`, unpullablePatch: `${repo}:1.0.9`, missing: `${UNREACHABLE_REPO}:1.0.9` };
}

/** The settings both runtimes share, so timings differ only where the runtimes do. */
export const SUITE_ENV: Readonly<Record<string, string>> = {
  RTMANAGER_PATCH_MIN_HEALTHY: "1s",
  RTMANAGER_PATCH_HEALTH_TIMEOUT: "5s",
  RTMANAGER_RESTART_BACKOFF_BASE: "300ms",
  RTMANAGER_LOG_LEVEL: "silent",
};

/** What a runtime does differently by design; every value here is documented in the README. */
export interface RuntimeExpectations {
  /** The record's `docker_network`: the Docker network, or the Pods' namespace. */
  network: string;
  /** The record's `state_path`: a host directory, or `pvc://{namespace}/{claim}`. */
  statePath(gameId: string): string;
  /** A file of a game's state as it is on its volume (the bind mount, the test kubelet's claim directory, or the claim on a cluster). */
  readState(gameId: string, file: string): Promise<string>;
  /**
   * After the engine is killed: Docker mode restarts the same container
   * (`docker start`, rtmanager decides); the kubelet starts a new container
   * in the same Pod (the kubelet decides, rtmanager records it).
   */
  selfHealKeepsContainerId: boolean;
  /** Data of the `container_exited` event beyond containerId: the Pod runtime says who restarted it. */
  exitEventData: Record<string, unknown>;
  /**
   * A patch to an image that cannot be pulled: Docker pulls before it stops
   * the old engine (500 image_pull_failed, old engine untouched, retried);
   * the kubelet kills the old container before it pulls, so the gate fails
   * at once and the previous image is patched back (500 container_start_failed).
   */
  patchToUnpullable: { code: "image_pull_failed" | "container_start_failed"; rolledBack: boolean };
  /**
   * A game whose start failed to pull, before and after a stop: Docker pulls
   * before it creates anything, so there is no container and the record
   * reads `removed` with no container id; the Pod runtime creates claim,
   * Service and Pod before the kubelet pulls, so the record reads `stopped`
   * and, before the Pod's first container, names it `pod:<uid>`
   * (src/runtime/kubernetes/observed.ts).
   */
  afterFailedPull: { status: "removed" | "stopped"; containerId: null | RegExp };
  /** The operation-log row of an engine restarted after it exited: rtmanager's restart, or the kubelet's recorded. */
  exitOperation: "self_heal" | "record_exit";
}

export interface RuntimeFixture {
  name: string;
  baseUrl: string;
  app: App;
  expect: RuntimeExpectations;
  close(): Promise<void>;
}

export interface FixtureOptions {
  /** A PostgreSQL URL; unset: PGlite, as the other Docker integration tests run. */
  databaseUrl?: string;
  /** Pod fixture: images the CRI-backed kubelet's containerd gets beyond the test engine images. */
  extraImages?: string[];
}

export async function dockerFixture(name: string, opts: FixtureOptions = {}): Promise<RuntimeFixture> {
  const t = await startTestApp({
    instance: uniqueInstance("suite-docker"),
    env: { ...SUITE_ENV, ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}) },
  });
  return {
    name,
    baseUrl: t.baseUrl,
    app: t.app,
    expect: {
      network: t.network,
      statePath: (g) => path.join(t.config.stateRoot, g),
      readState: (g, file) => fs.readFile(path.join(t.config.stateRoot, g, file), "utf8"),
      selfHealKeepsContainerId: true,
      exitEventData: {},
      patchToUnpullable: { code: "image_pull_failed", rolledBack: false },
      afterFailedPull: { status: "removed", containerId: null },
      exitOperation: "self_heal",
    },
    close: () => t.close(),
  };
}


export async function podFixture(name: string, opts: FixtureOptions = {}): Promise<RuntimeFixture> {
  // One node: scheduling is not what this suite is about, and each kubelet costs CPU.
  // The kubelet runs Pods through containerd's CRI: what a container is comes from a real runtime.
  const t = await startPodTestApp({
    name: "suite-pods",
    nodes: 1,
    mode: "cri",
    ...(opts.extraImages ? { extraImages: opts.extraImages } : {}),
    env: { RTMANAGER_OP_TIMEOUT: "30s", ...SUITE_ENV, ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}) },
    overrides: { lease: null },
  });
  const { app, cluster } = t;
  const claim = (g: string) => `galaxy-game-${g}-state`;
  return {
    name,
    baseUrl: t.baseUrl,
    app,
    expect: {
      network: POD_NAMESPACE,
      statePath: (g) => `pvc://${POD_NAMESPACE}/${claim(g)}`,
      readState: (g, file) => fs.readFile(path.join(cluster.dataRoot, "pvc", POD_NAMESPACE, claim(g), file), "utf8"),
      selfHealKeepsContainerId: false,
      exitEventData: { restartedBy: "runtime" },
      patchToUnpullable: { code: "container_start_failed", rolledBack: true },
      afterFailedPull: { status: "stopped", containerId: /^pod:[0-9a-f-]+$/ },
      exitOperation: "record_exit",
    },
    close: () => t.close(),
  };
}
