/**
 * The app's start and stop, apart from the wiring in app.ts: start checks the
 * runtime, watches records, starts the loop and listens; stop takes them down
 * in order, each step bounded.
 */
import type { Server } from "node:http";
import { buildInfo } from "./buildInfo.js";
import type { Config } from "./config.js";
import type { Manager } from "./controller/manager.js";
import type { RecordCache } from "./controller/recordCache.js";
import { listenOn } from "./http/listen.js";
import type { Logger } from "./log.js";
import { RtmError, RUNTIME_UNAVAILABLE, toRtmError } from "./model/errors.js";
import type { RuntimePort } from "./model/ports.js";
import { withTimeout } from "./model/timeout.js";
import type { RuntimeModule } from "./runtime/module.js";
import type { SqlStore } from "./store/index.js";

/** Their share of SHUTDOWN_RESERVE_MS (app.ts). */
const HTTP_CLOSE_BOUND_MS = 1_000;
const CLOSE_RESERVE_MS = 2_000;

/** What start and stop act on; `stopRecordWatch` is set by start. */
export interface RunningParts {
  config: Config;
  logger: Logger;
  store: SqlStore;
  runtime: RuntimePort;
  runtimeReady: () => ReturnType<RuntimeModule["ready"]>;
  records: RecordCache;
  manager: Manager;
  server: Server;
  /** Kubernetes mode: the GameRuntime source, whose watches close on stop. */
  kube: { source: { close(): Promise<void> } } | null;
  wakeEventStreams: () => void;
  stopRecordWatch: (() => Promise<void>) | null;
}

export async function startApp(p: RunningParts): Promise<number> {
  const { config, logger, store, runtime, records, manager } = p;
  try {
    await runtime.ping();
  } catch (err) {
    throw new RtmError(RUNTIME_UNAVAILABLE, `cannot reach the ${runtime.name} runtime: ${toRtmError(err).message}`);
  }
  const notReady = await p.runtimeReady();
  if (notReady) {
    const { reason, detail, fix } = notReady;
    throw new RtmError("start_config_invalid", [reason + (detail ? `: ${detail}` : ""), fix].filter(Boolean).join("; "));
  }
  // Waiters on this replica wake when any replica's loop writes a record.
  p.stopRecordWatch = await store.watchRecords({
    onChange: (gameId) => {
      records.invalidate(gameId);
      manager.waiters.notify(gameId);
      p.wakeEventStreams();
    },
    // Notifications may have been missed: nothing cached can be trusted, and every waiter reads again.
    onResync: () => {
      records.setLive(true);
      manager.waiters.notifyAll();
    },
  });
  records.setLive(true);
  await manager.start();
  const port = await listenOn(p.server, config);
  logger.info({ port, socket: config.httpSocketPath, ...buildInfo(), instance: config.instanceId, source: config.source, db: config.databaseUrl ? "postgres" : "pglite" }, "rtmanager started");
  return port;
}

export async function stopApp(p: RunningParts): Promise<void> {
  const { config, logger, server, runtime } = p;
  // Every step is bounded, so a database or API server that answers
  // nothing cannot hold the process past RTMANAGER_SHUTDOWN_TIMEOUT (main.ts
  // exits at that deadline in any case). A step past its bound is left
  // behind: the process is about to exit.
  const deadline = performance.now() + config.shutdownTimeoutMs - 1_000;
  const step = async (what: string, work: () => Promise<unknown>, boundMs: number): Promise<void> => {
    const ms = Math.max(0, Math.min(boundMs, deadline - performance.now()));
    try {
      await withTimeout(work(), ms, () => new Error(`${what} did not finish within ${Math.round(ms)} ms`));
    } catch (err) {
      logger.warn({ err, step: what }, "shutdown step did not finish; going on");
    }
  };
  await step(
    "closing the HTTP server",
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
    HTTP_CLOSE_BOUND_MS,
  );
  // Stops acting at once (the term's signal aborts the reconciles in flight), stops the leader's runnables, releases the lease.
  await step("stopping the controller", () => p.manager.stop(), deadline - CLOSE_RESERVE_MS - performance.now());
  // Side by side: each may wait on a dependency that does not answer, and
  // closing the store ends the LISTEN connection a stuck UNLISTEN waits on.
  await Promise.all([
    step("closing the Kubernetes watches", async () => p.kube?.source.close(), CLOSE_RESERVE_MS),
    step("closing the runtime's watches", async () => runtime.close?.(), CLOSE_RESERVE_MS),
    step("closing the record watch", async () => p.stopRecordWatch?.(), CLOSE_RESERVE_MS),
    step("closing the store", () => p.store.close(), CLOSE_RESERVE_MS),
  ]);
}
