/** `rtmctl logs`: the engine's output as the server streams it, or followed live. */
import { UsageError } from "./args.js";
import { intFlag, structured, type CommandContext } from "./context.js";
import { EXIT_OK } from "./exitCodes.js";

/** The server's own bound of `limitBytes`. */
const MAX_LIMIT_BYTES = 1024 ** 3;

export async function logsCommand(ctx: CommandContext, [gameId = ""]: string[]): Promise<number> {
  const tail = intFlag(ctx.flags, "tail", 200, 10_000, "logs");
  const limitBytes = ctx.flags["limit-bytes"] === undefined ? undefined : intFlag(ctx.flags, "limit-bytes", 1, MAX_LIMIT_BYTES, "logs");
  const follow = ctx.flags.follow === true;
  if (follow && ctx.output !== "table") throw new UsageError("-o json|yaml prints a whole log at once; it cannot follow one", "logs");
  const stream = ctx.client.logStream(gameId, { tail, follow, limitBytes, signal: ctx.signal });
  const decoder = new TextDecoder();
  if (ctx.output !== "table") {
    let text = "";
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
    ctx.io.out(structured(ctx.output, { gameId, logs: text + decoder.decode() }));
    return EXIT_OK;
  }
  try {
    // Written as it arrives: a followed engine's lines appear as it prints them.
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      if (text) ctx.io.out(text);
    }
    const rest = decoder.decode();
    if (rest) ctx.io.out(rest);
  } catch (err) {
    // Ctrl-C is how a followed log is left: a normal end.
    if (follow && ctx.signal.aborted) return EXIT_OK;
    throw err;
  }
  if (follow && !ctx.signal.aborted) ctx.io.err("rtmctl: the log stream ended: the engine stopped, or the server's RTMANAGER_LOGS_FOLLOW_MAX ran out\n");
  return EXIT_OK;
}
