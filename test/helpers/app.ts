/**
 * A whole rtmanager in-process for HTTP tests, through the production wiring
 * (createApp): the SQL store (PGlite in a temp dir), the Docker adapter on
 * the test engine, the controller and the HTTP server on 127.0.0.1:0, with
 * settings that keep each operation to a second or two.
 */
import fs from "node:fs/promises";
import type http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import type Dockerode from "dockerode";
import { pino, type Logger } from "pino";
import { createApp, type App } from "../../src/app.js";
import { RtmClient, type RtmClientOptions } from "../../src/client/index.js";
import { loadConfig, type Config } from "../../src/config.js";
import type { Manager } from "../../src/controller/manager.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";
import type { RuntimePort } from "../../src/model/ports.js";
import type { SqlStore } from "../../src/store/sqlStore.js";
import { cleanupInstance, createTestNetwork, removeTestNetwork, uniqueInstance } from "./docker.js";
import { seedPgliteDataDir } from "./pgliteTemplate.js";

export interface TestAppOptions {
  token?: string;
  /** Dockerode for the adapter; point it at a dead socket to make Docker unavailable. */
  dockerode?: Dockerode;
  /** Created (and removed at close) when not given. */
  network?: string;
  instance?: string;
  /**
   * Default true: app.start() (checks, loop, listen). False only listens, so
   * an app whose Docker is dead still answers.
   */
  start?: boolean;
  /** Extra RTMANAGER_* settings. */
  env?: Record<string, string>;
}

export interface TestApp {
  baseUrl: string;
  /** No caller header (admin_rest), the app's token. */
  client: RtmClient;
  newClient(options?: Partial<RtmClientOptions>): RtmClient;
  app: App;
  store: SqlStore;
  docker: RuntimePort;
  manager: Manager;
  config: Config;
  instance: string;
  network: string;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  server: http.Server;
  close(): Promise<void>;
}

/** Settings that keep each operation of a test app to a second or two; shared by every test that builds an app. */
export const FAST_APP_ENV: Readonly<Record<string, string>> = {
  RTMANAGER_ENGINE_PUBLISH_HOST: "127.0.0.1",
  RTMANAGER_CONTAINER_STOP_TIMEOUT: "2s",
  RTMANAGER_PROBE_INTERVAL: "500ms",
  RTMANAGER_PROBE_TIMEOUT: "500ms",
  RTMANAGER_PATCH_MIN_HEALTHY: "1s",
  RTMANAGER_PATCH_HEALTH_TIMEOUT: "15s",
  RTMANAGER_RETRY_BACKOFF_BASE: "200ms",
  RTMANAGER_RETRY_BACKOFF_MAX: "2s",
  RTMANAGER_RESYNC_INTERVAL: "5s",
  RTMANAGER_OP_TIMEOUT: "30s",
  RTMANAGER_DEFAULT_CPUS: "0.5",
  RTMANAGER_DEFAULT_MEMORY: "64m",
  RTMANAGER_DEFAULT_PIDS_LIMIT: "64",
};

export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const instance = opts.instance ?? uniqueInstance("http");
  const network = opts.network ?? `rtm-test-${instance}`;
  const ownsNetwork = !opts.network;
  const root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-app-"));
  const config = loadConfig({
    RTMANAGER_INSTANCE_ID: instance,
    RTMANAGER_DOCKER_NETWORK: network,
    RTMANAGER_STATE_ROOT: path.join(root, "state"),
    RTMANAGER_DATA_DIR: path.join(root, "data"),
    RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
    ...FAST_APP_ENV,
    RTMANAGER_LOG_LEVEL: "debug",
    ...(opts.token ? { RTMANAGER_INTERNAL_TOKEN: opts.token } : {}),
    ...opts.env,
  });
  if (ownsNetwork) await createTestNetwork(network);
  await fs.mkdir(config.stateRoot, { recursive: true });
  await seedPgliteDataDir(config);

  const logs: Record<string, unknown>[] = [];
  const logger: Logger = pino(
    { level: config.logLevel, base: null },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );

  const app = await createApp(config, logger, {
    // One replica: lead at once instead of waiting for a lease round.
    lease: null,
    ...(opts.dockerode ? { runtime: new DockerRuntime({ docker: opts.dockerode, instance, network, publishHost: config.enginePublishHost ?? null, callTimeoutMs: 3000 }) } : {}),
  });
  let port: number;
  if (opts.start === false) {
    await new Promise<void>((resolve) => app.server.listen(0, "127.0.0.1", resolve));
    port = (app.server.address() as AddressInfo).port;
  } else {
    port = await app.start();
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  const newClient = (o: Partial<RtmClientOptions> = {}) => new RtmClient({ baseUrl, timeoutMs: 60_000, token: opts.token, ...o });

  let closed = false;
  return {
    baseUrl,
    client: newClient(),
    newClient,
    app,
    store: app.store,
    docker: app.runtime,
    manager: app.manager,
    config,
    instance,
    network,
    logs,
    server: app.server,
    async close() {
      if (closed) return;
      closed = true;
      if (opts.start === false) {
        await new Promise<void>((resolve) => {
          app.server.close(() => resolve());
          app.server.closeAllConnections();
        });
        await app.store.close().catch(() => undefined);
      } else {
        await app.stop().catch(() => undefined);
      }
      if (!opts.dockerode) await cleanupInstance(instance).catch(() => undefined);
      // A failure is named here; the run's teardown removes what is left (globalSetup.ts).
      if (ownsNetwork) await removeTestNetwork(network).catch((err: unknown) => console.warn(`startTestApp close: network ${network} not removed: ${(err as Error).message}`));
      await fs.rm(root, { recursive: true, force: true }).catch(() => undefined);
    },
  };
}
