/** The verbs, each over RtmClient: print for people (table) or scripts (json, yaml), return an exit code. */
import { randomUUID } from "node:crypto";
import { buildInfo, type BuildInfo } from "../buildInfo.js";
import type { Action } from "../controller/planner.js";
import type { ContractRuntimeRecord } from "../client/index.js";
import { OPERATION_LIST_MAX_LIMIT } from "../model/record.js";
import { STOP_REASONS, type StopReason } from "../model/status.js";
import { VERB_NAMES, type VerbBody, type VerbName } from "../model/verbs.js";
import { OPS_DEFAULT_ROWS, UsageError, type FlagValues, type Verb } from "./args.js";
import { completionScript } from "./completion.js";
import { intFlag, structured, type Command, type CommandContext, type Io } from "./context.js";
import { eventsCommand } from "./events.js";
import { EXIT_OK } from "./exitCodes.js";
import { dash, duration, humanMs, shortId, table, truncate } from "./format.js";
import { listText, recordTable } from "./list.js";
import { showRuntime } from "./show.js";
import { logsCommand } from "./logs.js";
import { quarantineCommand } from "./quarantine.js";
import { waitCommand, watchLoop } from "./watch.js";

export type { Io } from "./context.js";

/**
 * Draws "<what>: waiting for the loop... 3s" on stderr while `work` runs.
 * Only on a terminal: in a pipe or a log it would be noise.
 */
async function withProgress<T>(io: Io, what: string, work: Promise<T>): Promise<T> {
  if (!io.stderrIsTty) return work;
  const started = Date.now();
  const draw = () => io.err(`\r\x1b[K${what}: waiting for the loop... ${Math.floor((Date.now() - started) / 1000)}s`);
  draw();
  const timer = setInterval(draw, 1000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    io.err("\r\x1b[K");
  }
}

/** How each lifecycle verb's request body is formed from rtmctl's arguments and flags (the rest is the verb table's). */
const VERB_BODIES: { [V in VerbName]: (args: string[], flags: FlagValues) => VerbBody<V> } = {
  start: ([, image = ""]) => ({ image_ref: image }),
  stop: (_args, flags) => {
    if (flags.reason === undefined) return { reason: "admin_request" };
    const r = String(flags.reason);
    if (!(STOP_REASONS as readonly string[]).includes(r)) throw new UsageError(`--reason must be one of ${STOP_REASONS.join(", ")}`, "stop");
    return { reason: r as StopReason };
  },
  restart: () => undefined,
  patch: ([, image = ""]) => ({ image_ref: image }),
  cleanup: () => undefined,
};

function verbCommand<V extends VerbName>(verb: V): Command {
  return async (ctx, args) => {
    const gameId = args[0] ?? "";
    const opId = typeof ctx.flags["op-id"] === "string" ? ctx.flags["op-id"] : randomUUID();
    const body = VERB_BODIES[verb](args, ctx.flags) as VerbBody<V>;
    // The op id goes to stderr first, so it is known even if the wait is interrupted.
    ctx.io.err(`${verb} ${gameId}: op ${opId}\n`);
    let record: ContractRuntimeRecord;
    try {
      record = await withProgress(ctx.io, `${verb} ${gameId}`, ctx.client.verb(verb, gameId, body, { opId, signal: ctx.signal }));
    } catch (err) {
      if (ctx.signal.aborted) {
        // The declaration may already be written: the loop carries on without us.
        ctx.io.err(`rtmctl: interrupted; the operation may still complete on the server: rtmctl ops ${gameId} (op ${opId})\n`);
      }
      throw err;
    }
    ctx.io.out(ctx.output === "table" ? recordTable([record], Date.now()) : structured(ctx.output, record));
    return EXIT_OK;
  };
}

const VERB_COMMANDS = Object.fromEntries(VERB_NAMES.map((verb) => [verb, verbCommand(verb)])) as Record<VerbName, Command>;

function describeAction(a: Action): string {
  switch (a.type) {
    case "ensureImage":
      return `ensure image ${a.imageRef} is present${a.policy === "never" ? " (must already be local)" : ""}`;
    case "create":
      return `create a container on ${a.imageRef}`;
    case "start":
      return a.containerId === "created" ? "start the new container" : `start container ${shortId(a.containerId)}`;
    case "stop":
      return `stop container ${shortId(a.containerId)}${a.reason ? ` (reason ${a.reason})` : ""}`;
    case "remove":
      return `remove container ${shortId(a.containerId)}`;
    case "updateImage":
      return `set the image of container ${shortId(a.containerId)} to ${a.imageRef} in place`;
    case "removeAll":
      return "stop and remove every container of the game";
  }
}

async function getText(ctx: CommandContext, gameId: string, watching: boolean): Promise<string> {
  const view = await ctx.client.extRecord(gameId, { signal: ctx.signal });
  if (ctx.output === "table") return showRuntime(view, Date.now());
  return watching ? streamedDoc(ctx, view) : structured(ctx.output, view);
}

/** While watching, each redraw is one more JSON value or YAML document, so a reader can split them. */
function streamedDoc(ctx: CommandContext, value: unknown): string {
  return ctx.output === "yaml" ? `---\n${structured("yaml", value)}` : structured("json", value);
}

export const COMMANDS: Record<Verb, Command> = {
  async list(ctx) {
    if (ctx.flags.watch === true) return watchLoop(ctx, undefined, () => listText(ctx, true));
    ctx.io.out(await listText(ctx, false));
    return EXIT_OK;
  },

  async get(ctx, [gameId = ""]) {
    if (ctx.flags.watch === true) return watchLoop(ctx, gameId, () => getText(ctx, gameId, true));
    ctx.io.out(await getText(ctx, gameId, false));
    return EXIT_OK;
  },

  ...VERB_COMMANDS,

  async ops(ctx, [gameId = ""]) {
    const limit = intFlag(ctx.flags, "limit", OPS_DEFAULT_ROWS, OPERATION_LIST_MAX_LIMIT, "ops");
    const items = await ctx.client.operations(gameId, limit);
    if (ctx.output !== "table") {
      ctx.io.out(structured(ctx.output, items));
      return EXIT_OK;
    }
    if (items.length === 0) {
      ctx.io.err(`no operations logged for ${gameId}\n`);
      return EXIT_OK;
    }
    ctx.io.out(
      table(
        ["STARTED", "OP ID", "KIND", "SOURCE", "OUTCOME", "ERROR", "TOOK", "IMAGE", "TRACE", "MESSAGE"],
        items.map((o) => [
          o.startedAt,
          o.opId,
          o.kind,
          o.opSource,
          o.outcome,
          dash(o.errorCode),
          duration(o.startedAt, o.finishedAt),
          dash(o.imageRef),
          // The whole traceparent: what a tracing UI's search box takes.
          dash(o.traceParent),
          truncate(o.message, 80),
        ]),
      ),
    );
    return EXIT_OK;
  },

  events: eventsCommand,
  logs: logsCommand,
  wait: waitCommand,
  quarantine: quarantineCommand,

  async completion(ctx, [shell = ""]) {
    if (shell !== "bash" && shell !== "zsh") throw new UsageError(`completion takes bash or zsh, got ${JSON.stringify(shell)}`, "completion");
    ctx.io.out(completionScript(shell));
    return EXIT_OK;
  },

  async diff(ctx, [gameId = ""]) {
    const plan = await ctx.client.plan(gameId);
    if (ctx.output !== "table") {
      ctx.io.out(structured(ctx.output, plan));
      return EXIT_OK;
    }
    const lines = [`${gameId}: ${plan.reason}`];
    if (plan.kind) lines.push(`operation: ${plan.kind} (source ${plan.opSource}${plan.opId ? `, op ${plan.opId}` : ""})`);
    if (plan.actions.length === 0) lines.push("actions: none");
    else lines.push("actions:", ...plan.actions.map((a, i) => `  ${i + 1}. ${describeAction(a)}`));
    if (plan.events.length > 0) lines.push("events:", ...plan.events.map((e) => `  ${e.type} ${truncate(JSON.stringify(e.data), 100)}`));
    if (plan.hold) lines.push(`held: ${plan.hold.code}: ${plan.hold.message}`);
    if (plan.requeueAfterMs !== null) lines.push(`looks again in: ${humanMs(plan.requeueAfterMs)}`);
    ctx.io.out(`${lines.join("\n")}\n`);
    return EXIT_OK;
  },

  async version(ctx) {
    const client = buildInfo();
    const line = (who: string, v: BuildInfo) => `${who}: ${v.version} (commit ${v.commit}, node ${v.node})\n`;
    if (ctx.output !== "table") {
      ctx.io.out(structured(ctx.output, { client, server: await ctx.client.version({ signal: ctx.signal }) }));
      return EXIT_OK;
    }
    ctx.io.out(line("client", client));
    ctx.io.out(line("server", await ctx.client.version({ signal: ctx.signal })));
    return EXIT_OK;
  },
};
