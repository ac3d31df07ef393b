/**
 * GET /api/v1/ext/runtimes (docs/ext-openapi.yaml): every game an on-call
 * engineer may need to find, one flat summary each, with the reasons it
 * needs a look. `summarize` and `filterSummaries` are pure; the route only
 * reads the records and the declarations.
 */
import type { ServerResponse } from "node:http";
import { CRASH_LOOP_THRESHOLD } from "../controller/plan.js";
import type { Declaration } from "../model/declaration.js";
import { RtmError, isRtmError } from "../model/errors.js";
import type { RuntimeRecord } from "../model/record.js";
import { RUNTIME_STATUSES, type RuntimeStatus } from "../model/status.js";
import { sendJson } from "./respond.js";
import type { AttentionReason, ExtRuntimeList, ExtRuntimeSummary } from "./wire.js";

/** What the route reads; the declaration source of either kind (store or GameRuntime) fits. */
export interface RuntimeListDeps {
  records(): Promise<readonly RuntimeRecord[]>;
  declarations?: {
    get(gameId: string): Promise<Declaration | null>;
    listGameIds(): Promise<string[]>;
    listDeclarations?(): Promise<Map<string, Declaration | RtmError>>;
  };
}

export interface RuntimeListFilter {
  /** Keep games whose record has one of these statuses; empty keeps all. */
  statuses: RuntimeStatus[];
  /** Keep only games with at least one attention reason. */
  attentionOnly: boolean;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function attentionOf(s: Omit<ExtRuntimeSummary, "attention">): AttentionReason[] {
  const out: AttentionReason[] = [];
  if (s.health === "unhealthy") out.push("unhealthy");
  if (s.degraded) out.push("degraded");
  if (s.lostNode !== null) out.push("node_lost");
  if (s.heldGeneration !== null) out.push("held");
  if (s.lastErrorCode !== null) out.push("error");
  if (s.restartCount >= CRASH_LOOP_THRESHOLD) out.push("crash_loop");
  // A gate in progress is the loop at work, not a problem yet.
  if (s.desiredState === "running" && s.status !== "running" && s.rolloutStartedAt === null) out.push("not_running");
  if (s.declarationError !== null) out.push("invalid_declaration");
  return out;
}

/** One summary per game known to either side, sorted by game id. */
export function summarize(records: readonly RuntimeRecord[], declarations: ReadonlyMap<string, Declaration | RtmError>): ExtRuntimeSummary[] {
  const byGame = new Map(records.map((r) => [r.gameId, r]));
  const ids = [...new Set([...byGame.keys(), ...declarations.keys()])].sort();
  return ids.map((gameId) => {
    const r = byGame.get(gameId) ?? null;
    const entry = declarations.get(gameId);
    const d = entry && !isRtmError(entry) ? entry : null;
    const base = {
      gameId,
      status: r?.status ?? null,
      desiredState: d?.desiredState ?? null,
      imageRef: r?.currentImageRef ?? null,
      declaredImageRef: d?.imageRef ?? null,
      generation: d?.generation ?? null,
      observedGeneration: r?.observedGeneration ?? 0,
      heldGeneration: r?.heldGeneration ?? null,
      health: r?.health ?? "unknown",
      consecutiveProbeFailures: r?.consecutiveProbeFailures ?? 0,
      restartCount: r?.restartCount ?? 0,
      degraded: r?.degraded ?? false,
      lostNode: r?.lostNode ?? null,
      lostNodeSince: iso(r?.lostNodeSince ?? null),
      rolloutStartedAt: iso(r?.rolloutStartedAt ?? null),
      containerId: r?.currentContainerId ?? null,
      startedAt: iso(r?.startedAt ?? null),
      lastOpAt: iso(r?.lastOpAt ?? null),
      lastErrorCode: r?.lastErrorCode ?? null,
      lastErrorMessage: r?.lastErrorMessage ?? null,
      declarationError: entry && isRtmError(entry) ? { code: entry.code, message: entry.message } : null,
    } satisfies Omit<ExtRuntimeSummary, "attention">;
    return { ...base, attention: attentionOf(base) };
  });
}

export function filterSummaries(items: ExtRuntimeSummary[], filter: RuntimeListFilter): ExtRuntimeSummary[] {
  return items.filter(
    (s) => (filter.statuses.length === 0 || (s.status !== null && filter.statuses.includes(s.status))) && (!filter.attentionOnly || s.attention.length > 0),
  );
}

/** `status` (comma-separated, may repeat) and `unhealthy` (true/false/1/0); anything else in them is 400. */
export function parseListQuery(query: URLSearchParams): RuntimeListFilter {
  const statuses: RuntimeStatus[] = [];
  for (const raw of query.getAll("status")) {
    for (const part of raw.split(",")) {
      if (part === "") continue;
      if (!(RUNTIME_STATUSES as readonly string[]).includes(part)) {
        throw new RtmError("invalid_request", `status must be one of ${RUNTIME_STATUSES.join(", ")} (comma-separated), got ${JSON.stringify(part.slice(0, 32))}`);
      }
      statuses.push(part as RuntimeStatus);
    }
  }
  const flag = query.get("unhealthy");
  if (flag !== null && !["true", "false", "1", "0", ""].includes(flag)) {
    throw new RtmError("invalid_request", `unhealthy must be true or false, got ${JSON.stringify(flag.slice(0, 32))}`);
  }
  return { statuses, attentionOnly: flag === "true" || flag === "1" };
}

/**
 * Bulk when the source can (the SQL store: one query); else one get per id
 * (the GameRuntime source answers from its reflector's memory).
 */
async function readDeclarations(deps: RuntimeListDeps): Promise<Map<string, Declaration | RtmError>> {
  const source = deps.declarations;
  if (!source) return new Map();
  if (source.listDeclarations) return source.listDeclarations();
  const out = new Map<string, Declaration | RtmError>();
  for (const gameId of await source.listGameIds()) {
    const d = await source.get(gameId).catch((err: unknown) => {
      if (isRtmError(err) && err.code === "start_config_invalid") return err;
      throw err;
    });
    if (d) out.set(gameId, d);
  }
  return out;
}

export async function listRuntimes(res: ServerResponse, deps: RuntimeListDeps, query: URLSearchParams): Promise<void> {
  const filter = parseListQuery(query);
  const [records, declarations] = await Promise.all([deps.records(), readDeclarations(deps)]);
  const items = filterSummaries(summarize(records, declarations), filter);
  sendJson(res, 200, { items } satisfies ExtRuntimeList);
}
