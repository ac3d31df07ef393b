/**
 * A real controller (Manager) over a real store and the real Docker engine,
 * with settings that make tests quick. No HTTP: tests write declarations the
 * way any other writer would (plain SQL, or the store's mutate).
 */
import type Dockerode from "dockerode";
import { Manager, type ManagerHooks, type ManagerSettings } from "../../src/controller/manager.js";
import { withContractErrors } from "../../src/controller/runtimeErrors.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";
import { HttpProber } from "../../src/runtime/httpProber.js";
import { createLogger } from "../../src/log.js";
import type { SqlStore } from "../../src/store/index.js";

/** Tests reach engines through ports published on loopback. */
export const TEST_PUBLISH_HOST = "127.0.0.1";

export function fastSettings(over: Partial<ManagerSettings> & { instanceId: string; engineNetwork: string; stateRoot: string }): ManagerSettings {
  return {
    imagePullPolicy: "if_not_present",
    stopTimeoutMs: 2000,
    defaultCpus: 0.5,
    defaultMemoryBytes: 64 * 1024 * 1024,
    defaultPidsLimit: 64,
    retentionMs: 30 * 86_400_000,
    restartBackoffBaseMs: 200,
    restartBackoffMaxMs: 2000,
    crashLoopResetMs: 600_000,
    orphanGraceMs: 0,
    orphanDryRun: false,
    probeFailureThreshold: 3,
    patchHealthTimeoutMs: 10_000,
    patchMinHealthyMs: 1000,
    startWaitHealthy: false,
    concurrency: 8,
    resyncIntervalMs: 2000,
    probeIntervalMs: 500,
    probeTimeoutMs: 500,
    retryBackoffBaseMs: 100,
    retryBackoffMaxMs: 2000,
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 300,
    watchSilenceLimitMs: 300_000,
    ...over,
  };
}

export async function startController(opts: {
  store: SqlStore;
  settings: ManagerSettings;
  identity?: string;
  withLease?: boolean;
  /** Default: the machine's engine (DOCKER_HOST, else /var/run/docker.sock). */
  docker?: Dockerode;
  /** E.g. LoopLooks.hooks (test/helpers/loop.ts), to see the loop look again. */
  hooks?: ManagerHooks;
}): Promise<Manager> {
  const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test-controller");
  const leaseName = `rtmanager/${opts.settings.instanceId}`;
  const manager = new Manager({
    source: opts.store,
    state: opts.store,
    runtime: withContractErrors(
      new DockerRuntime({ docker: opts.docker, instance: opts.settings.instanceId, network: opts.settings.engineNetwork, publishHost: TEST_PUBLISH_HOST }),
    ),
    prober: new HttpProber(),
    lease: opts.withLease ? opts.store.lease(leaseName) : undefined,
    identity: opts.identity ?? `test-${process.pid}`,
    settings: opts.settings,
    logger,
    hooks: opts.hooks,
  });
  await manager.start();
  return manager;
}
