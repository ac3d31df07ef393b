/** rtmctl's verbs, flags and help text, parsed with node:util parseArgs. */
import { parseArgs } from "node:util";
import { OPERATION_LIST_MAX_LIMIT } from "../model/record.js";
import { RUNTIME_STATUSES, STOP_REASONS } from "../model/status.js";
import { VERB_NAMES } from "../model/verbs.js";
import { exitCodeTable } from "./exitCodes.js";

export const DEFAULT_SERVER = "http://127.0.0.1:8096";
/** Longer than the server's default RTMANAGER_OP_TIMEOUT (90 s), so its own 503 arrives first. */
export const DEFAULT_TIMEOUT_S = 120;
/** `rtmctl ops` shows a screenful by default, fewer than the server's default page. */
export const OPS_DEFAULT_ROWS = 20;

export type OutputFormat = "table" | "json" | "yaml";
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "json", "yaml"];
/** What -o takes: the formats, and `wide` (list only: the table with every column). */
export const OUTPUT_CHOICES: readonly string[] = [...OUTPUT_FORMATS, "wide"];
/** What `rtmctl wait --for` accepts. */
export const WAIT_CONDITIONS = ["running", "healthy", "removed"] as const;
export type WaitCondition = (typeof WAIT_CONDITIONS)[number];

export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
  value?: string;
  description: string;
  /** Values a shell may complete; verbs' args are completed from the verb table. */
  choices?: readonly string[];
}

/** The lifecycle verbs come from the verb table (src/model/verbs.ts), in its order, each with a SPECS row below. */
export const VERBS = ["list", "get", ...VERB_NAMES, "ops", "events", "logs", "diff", "wait", "version", "quarantine", "completion"] as const;
export type Verb = (typeof VERBS)[number];

export interface VerbSpec {
  args: string[];
  summary: string;
  details?: string;
  flags: Record<string, FlagSpec>;
  examples: string[];
  /** Positional arguments after `args` that may be left out (`quarantine lift <image>`). */
  optionalArgs?: string[];
  /** Values a shell may complete for the positional arguments, when they are a fixed set. */
  argChoices?: readonly string[];
  /** Waits for the loop: shows a progress line and sends an op id. */
  mutation?: boolean;
}

export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  server: {
    type: "string",
    value: "url",
    description: `rtmanager base URL (env RTMCTL_SERVER; else the address in RTMANAGER_INTERNAL_HTTP_ADDR, as inside rtmanager's container; else ${DEFAULT_SERVER})`,
  },
  token: { type: "string", value: "token", description: "bearer token (env RTMANAGER_INTERNAL_TOKEN); visible in ps, prefer --token-file" },
  "token-file": { type: "string", value: "path", description: "file holding the bearer token, first line (env RTMCTL_TOKEN_FILE, else RTMANAGER_INTERNAL_TOKEN_FILE)" },
  output: { type: "string", short: "o", value: "table|json|yaml|wide", description: "output format (default table; wide: list only)", choices: OUTPUT_CHOICES },
  timeout: {
    type: "string",
    value: "duration",
    description: `request timeout, e.g. 30s, 2m; a bare number is seconds (default ${DEFAULT_TIMEOUT_S}s); for wait, the whole wait`,
  },
  help: { type: "boolean", short: "h", description: "show help" },
};

const OP_ID_FLAG: FlagSpec = { type: "string", value: "id", description: "X-Op-Id to send (default: a fresh UUID, printed on stderr)" };
const WATCH_FLAG: FlagSpec = { type: "boolean", short: "w", description: "redraw whenever the event stream reports a change, until Ctrl-C (exit 0)" };

export const SPECS: Record<Verb, VerbSpec> = {
  list: {
    args: [],
    summary: "list runtimes; -o wide adds health, restarts, held generation, lost node and why a game needs a look",
    details:
      "Plain: the contract's records (-o json prints them as GET /api/v1/internal/runtimes answers).\n" +
      "With -o wide, --status or --unhealthy: the extension list (GET /api/v1/ext/runtimes), filtered by the server;\n" +
      "-o json|yaml then prints its items (gameId, health, restartCount, heldGeneration, lostNode, attention, ...).\n" +
      "--unhealthy keeps games with an ATTENTION reason: unhealthy, degraded, node_lost, held, error, crash_loop,\n" +
      "not_running (declared running, recorded otherwise, no health gate open), invalid_declaration.\n" +
      "With --watch and -o json|yaml, each redraw is one more JSON value or YAML document.",
    flags: {
      watch: WATCH_FLAG,
      status: { type: "string", value: "status[,status]", description: `only runtimes whose record is ${RUNTIME_STATUSES.join(", ")} (comma-separated)` },
      unhealthy: { type: "boolean", description: "only runtimes that need a look (see above)" },
      "no-headers": { type: "boolean", description: "table rows without the header line" },
    },
    examples: [
      "rtmctl list -o wide",
      "rtmctl list --unhealthy -o wide",
      "rtmctl list --status running --no-headers | awk '{print $1}'",
      "rtmctl list -o json | jq -r '.[] | select(.status==\"running\") | .game_id'",
      "rtmctl list --unhealthy -o json | jq -r '.[] | \"\\(.gameId) \\(.attention | join(\",\"))\"'",
      "rtmctl list --watch",
    ],
  },
  get: {
    args: ["game"],
    summary: "show one runtime: record, declaration, last error",
    details: "-o json|yaml prints the extension view: { gameId, record, declaration, declarationError }.",
    flags: { watch: WATCH_FLAG },
    examples: ["rtmctl get game-42", "rtmctl get game-42 -o yaml", "rtmctl get game-42 -w"],
  },
  start: {
    args: ["game", "image"],
    summary: "start a runtime on an image and wait until it runs",
    flags: { "op-id": OP_ID_FLAG },
    examples: ["rtmctl start game-42 registry/galaxy/engine:1.4.2"],
    mutation: true,
  },
  stop: {
    args: ["game"],
    summary: "stop a runtime and wait until it is stopped",
    flags: {
      reason: { type: "string", value: "reason", description: `one of ${STOP_REASONS.join(", ")} (default admin_request)`, choices: STOP_REASONS },
      "op-id": OP_ID_FLAG,
    },
    examples: ["rtmctl stop game-42", "rtmctl stop game-42 --reason finished"],
    mutation: true,
  },
  restart: {
    args: ["game"],
    summary: "recreate the container on the same image and wait until it runs",
    flags: { "op-id": OP_ID_FLAG },
    examples: ["rtmctl restart game-42"],
    mutation: true,
  },
  patch: {
    args: ["game", "image"],
    summary: "move a running runtime to a new patch version of its image",
    flags: { "op-id": OP_ID_FLAG },
    examples: ["rtmctl patch game-42 registry/galaxy/engine:1.4.3"],
    mutation: true,
  },
  cleanup: {
    args: ["game"],
    summary: "remove a stopped runtime's container (its state directory is kept)",
    flags: { "op-id": OP_ID_FLAG },
    examples: ["rtmctl cleanup game-42"],
    mutation: true,
  },
  ops: {
    args: ["game"],
    summary: "operation log of a game, newest first",
    flags: { limit: { type: "string", value: "n", description: `rows to show (default ${OPS_DEFAULT_ROWS}, max ${OPERATION_LIST_MAX_LIMIT})` } },
    examples: ["rtmctl ops game-42", "rtmctl ops game-42 -o json | jq '.[] | select(.outcome==\"failure\")'"],
  },
  events: {
    args: [],
    summary: "runtime events: the stored backlog, or follow live",
    details:
      "Without --follow: prints stored events (the last --tail of them) and exits.\n" +
      "With --follow: prints events as they happen until interrupted, reconnecting from the last event seen.\n" +
      "-o json prints one JSON object per line (NDJSON); -o yaml one YAML document per event.",
    flags: {
      game: { type: "string", value: "game", description: "only this game's events" },
      follow: { type: "boolean", short: "f", description: "keep streaming new events" },
      since: { type: "string", value: "seq", description: "start after this event sequence number" },
      tail: { type: "string", value: "n", description: "without --follow: print only the last n (default 100)" },
    },
    examples: ["rtmctl events --game game-42", "rtmctl events --follow", "rtmctl events -f -o json | jq -c ."],
  },
  logs: {
    args: ["game"],
    summary: "the engine's output: its last lines, or follow it live",
    details:
      "Streams as the server sends it. Without --follow the server caps the bytes (RTMANAGER_LOGS_MAX_BYTES).\n" +
      "With --follow: new output until the engine stops, the server's bound (RTMANAGER_LOGS_FOLLOW_MAX) or Ctrl-C (exit 0).\n" +
      "-o json|yaml (not with --follow) prints { gameId, logs }.",
    flags: {
      follow: { type: "boolean", short: "f", description: "keep streaming new output" },
      tail: { type: "string", value: "n", description: "lines from the end (default 200, max 10000)" },
      "limit-bytes": { type: "string", value: "n", description: "stop after n bytes" },
    },
    examples: ["rtmctl logs game-42 --tail 50", "rtmctl logs game-42 -f --tail 10", "rtmctl logs game-42 -f --limit-bytes 65536"],
  },
  diff: {
    args: ["game"],
    summary: "what the loop would do for a game now (the planner's plan, nothing executed)",
    flags: {},
    examples: ["rtmctl diff game-42"],
  },
  version: {
    args: [],
    summary: "this rtmctl's version and the server's (version, commit, Node)",
    details: "The client line is printed before the server is asked, so it shows even when the server cannot be reached.",
    flags: {},
    examples: ["rtmctl version", "rtmctl version -o json | jq -r .server.commit"],
  },
  wait: {
    args: ["game"],
    summary: "wait until a runtime is running, healthy or removed",
    details:
      "Checks at once, then again on every event of the game (and every few seconds: a first healthy probe is not an event),\n" +
      "until the condition holds or --timeout (default 120s) runs out; a last GET decides.\n" +
      "Exit 0 when met, 6 on timeout, else the error's exit code (11: no such game, for running and healthy).\n" +
      "removed: the record says removed, or nothing is known of the game any more.",
    flags: {
      for: { type: "string", value: "condition", description: `one of ${WAIT_CONDITIONS.join(", ")} (required)`, choices: WAIT_CONDITIONS },
    },
    examples: ["rtmctl wait game-42 --for=running --timeout=60s", "rtmctl cleanup game-42 && rtmctl wait game-42 --for=removed"],
  },
  quarantine: {
    args: ["list|lift"],
    optionalArgs: ["image"],
    argChoices: ["list", "lift"],
    summary: "list the quarantined images, or lift one's quarantine",
    details:
      "An image is quarantined when RTMANAGER_QUARANTINE_AFTER patches to it were rolled back within RTMANAGER_QUARANTINE_WINDOW;\n" +
      "patches to it are then refused (500 container_start_failed) until it is lifted. Lift it once the image is fixed or known good.\n" +
      "Exit 11 when lifting an image that is not quarantined.",
    flags: {},
    examples: ["rtmctl quarantine list", "rtmctl quarantine lift registry/galaxy/engine:1.4.3"],
  },
  completion: {
    args: ["shell"],
    summary: "print a shell completion script (bash or zsh)",
    argChoices: ["bash", "zsh"],
    details: "Verbs and flags come from the same table as this help, so the two cannot drift.",
    flags: {},
    examples: ["source <(rtmctl completion bash)", "rtmctl completion zsh > \"${fpath[1]}/_rtmctl\""],
  },
};

export class UsageError extends Error {
  override readonly name = "UsageError";
  constructor(
    message: string,
    readonly verb: Verb | null = null,
  ) {
    super(message);
  }
}

export type FlagValues = Record<string, string | boolean | undefined>;

export interface Invocation {
  verb: Verb | null;
  args: string[];
  flags: FlagValues;
  help: boolean;
}

type ParseOptions = Record<string, { type: "string" | "boolean"; short?: string }>;

function toParseOptions(flags: Record<string, FlagSpec>): ParseOptions {
  return Object.fromEntries(Object.entries(flags).map(([name, f]) => [name, f.short ? { type: f.type, short: f.short } : { type: f.type }]));
}

function isVerb(s: string | undefined): s is Verb {
  return (VERBS as readonly string[]).includes(s ?? "");
}

/**
 * Two passes: a lenient one to find the verb wherever the global flags sit,
 * then a strict one with the verb's own flags, so a flag of another verb is
 * refused rather than ignored.
 */
export function parseInvocation(argv: string[]): Invocation {
  const allFlags: Record<string, FlagSpec> = { ...GLOBAL_FLAGS };
  for (const spec of Object.values(SPECS)) Object.assign(allFlags, spec.flags);
  const loose = parseArgs({ args: argv, options: toParseOptions(allFlags), strict: false, allowPositionals: true });
  const first = loose.positionals[0];
  if (first === "help") {
    const topic = loose.positionals[1];
    return { verb: isVerb(topic) ? topic : null, args: [], flags: {}, help: true };
  }
  if (first === undefined) {
    if (loose.values.help === true) return { verb: null, args: [], flags: {}, help: true };
    throw new UsageError("no verb given");
  }
  if (!isVerb(first)) throw new UsageError(`unknown verb ${JSON.stringify(first)}`);
  const verb = first;
  const spec = SPECS[verb];
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: toParseOptions({ ...GLOBAL_FLAGS, ...spec.flags }), strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split("\n")[0] ?? "bad flags", verb);
  }
  const flags = parsed.values as FlagValues;
  const args = parsed.positionals.slice(1);
  if (flags.help === true) return { verb, args, flags, help: true };
  const optional = spec.optionalArgs?.length ?? 0;
  if (args.length < spec.args.length || args.length > spec.args.length + optional) {
    const want = spec.args.length === 0 ? "no arguments" : [...spec.args.map((a) => `<${a}>`), ...(spec.optionalArgs ?? []).map((a) => `[<${a}>]`)].join(" ");
    throw new UsageError(`${verb} takes ${want}, got ${args.length === 0 ? "none" : args.map((a) => JSON.stringify(a)).join(" ")}`, verb);
  }
  const output = flags.output;
  if (output === "wide") {
    if (verb !== "list") throw new UsageError("-o wide is for list only", verb);
    // A table with more columns: the verb reads `wide`, everything else sees a table.
    flags.output = "table";
    flags.wide = true;
  } else if (output !== undefined && !(OUTPUT_FORMATS as readonly unknown[]).includes(output)) {
    throw new UsageError(`-o must be one of ${OUTPUT_CHOICES.join(", ")}, got ${JSON.stringify(output)}`, verb);
  }
  return { verb, args, flags, help: false };
}

function flagLines(flags: Record<string, FlagSpec>): string[] {
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : "    "}--${name}${f.value ? ` <${f.value}>` : ""}`;
    return [left, f.description] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, d]) => `  ${l.padEnd(width)}   ${d}`);
}

export function verbHelp(verb: Verb): string {
  const spec = SPECS[verb];
  const lines = [
    `rtmctl ${verb}${spec.args.map((a) => ` <${a}>`).join("")} [flags]`,
    "",
    `${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.`,
  ];
  if (spec.details) lines.push("", spec.details);
  if (Object.keys(spec.flags).length > 0) lines.push("", "Flags:", ...flagLines(spec.flags));
  lines.push("", "Global flags:", ...flagLines(GLOBAL_FLAGS), "", "Examples:", ...spec.examples.map((e) => `  ${e}`), "");
  return lines.join("\n");
}

export function mainHelp(): string {
  const width = Math.max(...VERBS.map((v) => `${v}${SPECS[v].args.map((a) => ` <${a}>`).join("")}`.length));
  const lines = [
    "rtmctl: operate the Runtime Manager (rtmanager) over its REST API.",
    "",
    "Usage: rtmctl <verb> [arguments] [flags]",
    "",
    "Verbs:",
    ...VERBS.map((v) => `  ${`${v}${SPECS[v].args.map((a) => ` <${a}>`).join("")}`.padEnd(width)}   ${SPECS[v].summary}`),
    "",
    "Global flags:",
    ...flagLines(GLOBAL_FLAGS),
    "",
    "Exit codes:",
    ...exitCodeTable().map(([code, what]) => `  ${String(code).padStart(2)}  ${what}`),
    "",
    "Run `rtmctl <verb> --help` for a verb's flags and examples.",
    "",
  ];
  return lines.join("\n");
}

export function isMutation(verb: Verb): boolean {
  return SPECS[verb].mutation === true;
}
