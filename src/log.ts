import { pino, type Logger } from "pino";

export type { Logger };

/** JSON lines on stdout; `gameId` and `opId` ride on child loggers. */
export function createLogger(level: string, name = "rtmanager"): Logger {
  return pino({ name, level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
