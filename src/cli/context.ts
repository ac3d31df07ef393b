/** What every verb is given, and the one way it prints a value for scripts (json or yaml). */
import { stringify as yamlStringify } from "yaml";
import type { RtmClient } from "../client/index.js";
import { UsageError, type FlagValues, type OutputFormat, type Verb } from "./args.js";
import { json } from "./format.js";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal: the progress line is drawn only there. */
  stderrIsTty: boolean;
  /** Whether stdout is a terminal: --watch clears the screen before a redraw only there. */
  stdoutIsTty?: boolean;
}

export interface CommandContext {
  client: RtmClient;
  io: Io;
  output: OutputFormat;
  flags: FlagValues;
  /** Aborted on SIGINT: ends a followed stream cleanly. */
  signal: AbortSignal;
  /** The --timeout in milliseconds: per request, or for `wait` the whole wait. */
  timeoutMs: number;
}

export type Command = (ctx: CommandContext, args: string[]) => Promise<number>;

/** A value as a script reads it: pretty JSON, or a YAML document. Table output is each verb's own. */
export function structured(format: "json" | "yaml", value: unknown): string {
  return format === "json" ? json(value) : yamlStringify(value, { lineWidth: 0 });
}

/** One record of a stream (events, watch): a JSON line, or a YAML document after `---`. */
export function streamed(format: "json" | "yaml", value: unknown, compactJson = true): string {
  if (format === "json") return compactJson ? `${JSON.stringify(value)}\n` : json(value);
  return `---\n${yamlStringify(value, { lineWidth: 0 })}`;
}

export function intFlag(flags: FlagValues, name: string, fallback: number, max: number, verb: Verb): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== "string" || !/^[0-9]{1,10}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw)}`, verb);
  }
  return Number(raw);
}
