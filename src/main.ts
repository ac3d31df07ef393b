#!/usr/bin/env node
/** Process entry point: config, logger, app, signals. */
import { createApp } from "./app.js";
import { ConfigError, configWarnings, loadConfig } from "./config.js";
import { unauthenticatedExposure } from "./httpConfig.js";
import { createLogger } from "./log.js";
import { isRtmError } from "./model/errors.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`rtmanager: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  // Unknown RTMANAGER_* names and doubtful pairs start anyway, but never silently.
  for (const warning of configWarnings(process.env)) logger.warn({ kind: "configuration" }, warning);
  const exposure = unauthenticatedExposure(config);
  if (exposure) logger.warn({ addr: `${config.httpHost ?? ""}:${config.httpPort}` }, exposure);
  let app;
  try {
    app = await createApp(config, logger);
    await app.start();
  } catch (err) {
    const code = isRtmError(err) ? err.code : "internal_error";
    logger.fatal({ code, err }, "start-up failed");
    console.error(`rtmanager: start-up failed (${code}): ${(err as Error).message}`);
    if (app) await app.stop().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const deadlineMs = config.shutdownTimeoutMs;
    logger.info({ signal, deadlineMs }, "shutting down");
    // The backstop: app.stop() bounds each of its steps, but whatever still
    // hangs (a socket to a frozen database, a stuck API call) must not keep
    // the process past the deadline and into the kubelet's SIGKILL.
    const backstop = setTimeout(() => {
      logger.error({ signal, deadlineMs }, "shutdown did not finish within RTMANAGER_SHUTDOWN_TIMEOUT; exiting anyway");
      process.exit(1);
    }, deadlineMs);
    app
      .stop()
      .then(() => {
        clearTimeout(backstop);
        logger.info({ signal }, "stopped");
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

void main();
