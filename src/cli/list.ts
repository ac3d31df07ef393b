/**
 * `rtmctl list`: the contract's records by default (what scripts have always
 * parsed), or, with -o wide, --status or --unhealthy, the extension list
 * (GET /api/v1/ext/runtimes) that carries what the on-call scans a fleet for:
 * health, restarts, a held generation, a degraded rollback, a lost node, and
 * why a game needs a look.
 */
import { RUNTIME_STATUSES, type ContractRuntimeRecord, type ExtRuntimeSummary, type RuntimeStatus } from "../client/index.js";
import { UsageError } from "./args.js";
import { structured, type CommandContext } from "./context.js";
import { age, dash, shortId, table } from "./format.js";

export interface ListView {
  /** -o wide: every column. */
  wide: boolean;
  /** --no-headers: rows only, for `| while read`. */
  headers: boolean;
  statuses: RuntimeStatus[];
  unhealthy: boolean;
}

export function listView(ctx: Pick<CommandContext, "flags">): ListView {
  const statuses: RuntimeStatus[] = [];
  const raw = ctx.flags.status;
  if (typeof raw === "string") {
    for (const s of raw.split(",").filter((p) => p !== "")) {
      if (!(RUNTIME_STATUSES as readonly string[]).includes(s)) throw new UsageError(`--status must be one or more of ${RUNTIME_STATUSES.join(", ")} (comma-separated), got ${JSON.stringify(s)}`, "list");
      statuses.push(s as RuntimeStatus);
    }
  }
  return { wide: ctx.flags.wide === true, headers: ctx.flags["no-headers"] !== true, statuses, unhealthy: ctx.flags.unhealthy === true };
}

/** The extension list is asked only when something needs it, so a plain `list` works against any server. */
export const needsExtList = (v: ListView): boolean => v.wide || v.unhealthy || v.statuses.length > 0;

export function recordTable(records: ContractRuntimeRecord[], now: number, headers = true): string {
  return table(
    ["GAME", "STATUS", "IMAGE", "CONTAINER", "STARTED", "LAST OP"],
    records.map((r) => [r.game_id, r.status, dash(r.current_image_ref), shortId(r.current_container_id), age(r.started_at, now), age(r.last_op_at, now)]),
    headers,
  );
}

/** "3/3", or "2/3" while the loop has not caught up with the declaration; "-/1" with no declaration. */
function generationCell(s: ExtRuntimeSummary): string {
  return `${s.observedGeneration}/${s.generation ?? "-"}`;
}

function healthCell(s: ExtRuntimeSummary): string {
  return s.consecutiveProbeFailures > 0 && s.health !== "unhealthy" ? `${s.health} (${s.consecutiveProbeFailures} failed)` : s.health;
}

export function summaryTable(items: ExtRuntimeSummary[], now: number, view: Pick<ListView, "wide" | "headers">): string {
  if (!view.wide) {
    return table(
      ["GAME", "STATUS", "IMAGE", "CONTAINER", "STARTED", "LAST OP"],
      items.map((s) => [s.gameId, dash(s.status), dash(s.imageRef), shortId(s.containerId), age(s.startedAt, now), age(s.lastOpAt, now)]),
      view.headers,
    );
  }
  return table(
    ["GAME", "STATUS", "DESIRED", "HEALTH", "RESTARTS", "GEN", "HELD", "DEGRADED", "LOST NODE", "IMAGE", "STARTED", "ERROR", "ATTENTION"],
    items.map((s) => [
      s.gameId,
      dash(s.status),
      dash(s.desiredState),
      healthCell(s),
      String(s.restartCount),
      generationCell(s),
      dash(s.heldGeneration),
      s.degraded ? "yes" : "-",
      s.lostNode ? `${s.lostNode} (${age(s.lostNodeSince, now)})` : "-",
      dash(s.imageRef),
      age(s.startedAt, now),
      dash(s.lastErrorCode ?? s.declarationError?.code),
      s.attention.length ? s.attention.join(",") : "-",
    ]),
    view.headers,
  );
}

/** `list` as printed: a table, or the records (or, with the extension list, its items) for -o json|yaml. */
export async function listText(ctx: CommandContext, watching: boolean): Promise<string> {
  const view = listView(ctx);
  const ext = needsExtList(view);
  const rows: (ContractRuntimeRecord | ExtRuntimeSummary)[] = ext
    ? await ctx.client.runtimes({ statuses: view.statuses, unhealthy: view.unhealthy }, { signal: ctx.signal })
    : await ctx.client.list({ signal: ctx.signal });
  if (ctx.output !== "table") {
    // While watching, each redraw is one more JSON value or YAML document, so a reader can split them.
    return watching && ctx.output === "yaml" ? `---\n${structured("yaml", rows)}` : structured(ctx.output, rows);
  }
  if (rows.length === 0) {
    const none = ext && (view.unhealthy || view.statuses.length > 0) ? "no runtimes match\n" : "no runtimes\n";
    if (watching) return none;
    ctx.io.err(none);
    return "";
  }
  const now = Date.now();
  return ext ? summaryTable(rows as ExtRuntimeSummary[], now, view) : recordTable(rows as ContractRuntimeRecord[], now, view.headers);
}
