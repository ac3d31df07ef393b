#!/usr/bin/env node
/**
 * rtmctl: the operator's command line over rtmanager's REST API and its
 * extensions (src/client). Exit codes are documented in ./exitCodes.ts and
 * printed by `rtmctl --help`.
 */
import { RtmApiError, RtmClient, RtmTransportError } from "../client/index.js";
import { nodeHttpFetch } from "../client/nodeHttpFetch.js";
import { DEFAULT_TIMEOUT_S, mainHelp, parseInvocation, UsageError, verbHelp, type OutputFormat } from "./args.js";
import { COMMANDS } from "./commands.js";
import type { Io } from "./context.js";
import { parseDuration } from "../model/duration.js";
import { EXIT_INTERRUPTED, EXIT_UNEXPECTED, EXIT_UNREACHABLE, EXIT_USAGE, exitCodeFor } from "./exitCodes.js";
import { isMain } from "../isMain.js";
import { resolveServer } from "./server.js";
import { resolveToken } from "./token.js";

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  io?: Io;
  signal?: AbortSignal;
}

const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  stderrIsTty: process.stderr.isTTY === true,
  stdoutIsTty: process.stdout.isTTY === true,
};

/** Runs one invocation; resolves with the exit code (never calls process.exit, so tests can call it). */
export async function run(argv: string[], options: RunOptions = {}): Promise<number> {
  const env = options.env ?? process.env;
  const io = options.io ?? processIo;
  let verbForHelp: string | null = null;
  try {
    const inv = parseInvocation(argv);
    verbForHelp = inv.verb;
    if (inv.help) {
      io.out(inv.verb ? verbHelp(inv.verb) : mainHelp());
      return 0;
    }
    const verb = inv.verb!;
    const timeoutRaw = inv.flags.timeout;
    const timeoutMs = timeoutRaw === undefined ? DEFAULT_TIMEOUT_S * 1000 : parseDuration(String(timeoutRaw));
    if (timeoutMs === null || !(timeoutMs > 0)) {
      throw new UsageError(`--timeout must be a positive duration such as 30s or 2m (a bare number is seconds), got ${JSON.stringify(timeoutRaw)}`, verb);
    }
    const server = resolveServer(inv.flags, env, verb);
    const token = resolveToken(inv.flags, env, verb);
    let client: RtmClient;
    try {
      client = new RtmClient({
        baseUrl: server,
        timeoutMs,
        token,
        caller: "admin",
        fetch: nodeHttpFetch,
      });
    } catch (err) {
      throw new UsageError(`--server: ${(err as Error).message.replace(/^rtm client: /, "")}`, verb);
    }
    return await COMMANDS[verb](
      {
        client,
        io,
        output: (inv.flags.output as OutputFormat | undefined) ?? "table",
        flags: inv.flags,
        signal: options.signal ?? new AbortController().signal,
        timeoutMs,
      },
      inv.args,
    );
  } catch (err) {
    return reportFailure(err, io, options.signal, verbForHelp);
  }
}

/** Prints why an invocation failed and answers its exit code (./exitCodes.ts). */
function reportFailure(err: unknown, io: Io, signal: AbortSignal | undefined, verbForHelp: string | null): number {
  if (signal?.aborted) {
    io.err("rtmctl: interrupted\n");
    return EXIT_INTERRUPTED;
  }
  if (err instanceof UsageError) {
    io.err(`rtmctl: ${err.message}\n`);
    io.err(err.verb ? `Run 'rtmctl ${err.verb} --help' for usage.\n` : "Run 'rtmctl --help' for usage.\n");
    return EXIT_USAGE;
  }
  if (err instanceof RtmApiError) {
    // The op id is how the failure is found again: `rtmctl ops <game>`, or grep it in the server's JSON logs.
    io.err(`rtmctl: ${err.code} (HTTP ${err.status}): ${err.message}${err.opId ? ` [op ${err.opId}]` : ""}\n`);
    return exitCodeFor(err.code, err.status);
  }
  if (err instanceof RtmTransportError) {
    io.err(`rtmctl: cannot reach rtmanager: ${err.message}\n`);
    return EXIT_UNREACHABLE;
  }
  io.err(`rtmctl: ${verbForHelp ?? "error"}: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_UNEXPECTED;
}

if (isMain(import.meta.url)) {
  const interrupt = new AbortController();
  let interrupted = false;
  process.on("SIGINT", () => {
    // A second Ctrl-C leaves at once, whatever is still waiting.
    if (interrupted) process.exit(130);
    interrupted = true;
    interrupt.abort();
  });
  void run(process.argv.slice(2), { signal: interrupt.signal }).then((code) => {
    process.exitCode = code;
    // The verb is done: a connection or timer some library still holds must not keep a
    // script waiting. Unreferenced, so a clean process exits at once on its own and
    // output still draining into a pipe gets its grace.
    setTimeout(() => process.exit(code), 2000).unref();
  });
}
