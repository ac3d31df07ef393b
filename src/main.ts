#!/usr/bin/env node
/** Process entry point: config, logger, app, signals. */
import { createApp } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
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
  const exposure = unauthenticatedExposure(config);
  if (exposure) logger.warn({ addr: `${config.httpHost ?? ""}:${config.httpPort}` }, exposure);
  let app;
  try {
    app = await createApp(config, logger);
    await app.start();
  } catch (err) {
    const code = isRtmError(err) ? err.code : "internal_error";
    logger.fatal({ code, err: (err as Error).message }, "start-up failed");
    console.error(`rtmanager: start-up failed (${code}): ${(err as Error).message}`);
    if (app) await app.stop().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    app
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err: (err as Error).message }, "shutdown failed");
        process.exit(1);
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

void main();
