/**
 * What each route answers. The lifecycle verbs share one handler driven by
 * the verb table (src/model/verbs.ts); the reads, probes and extensions have
 * one small handler each. Transport only: what an operation means lives in
 * src/controller/operations.ts.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { buildInfo } from "../buildInfo.js";
import type { OpContext } from "../controller/operations.js";
import { checkGameId } from "../controller/verbs.js";
import type { Logger } from "../log.js";
import { imageRefused } from "../model/admission.js";
import { RtmError, isRtmError } from "../model/errors.js";
import { OPERATION_LIST_DEFAULT_LIMIT, OPERATION_LIST_MAX_LIMIT, toContractRecord } from "../model/record.js";
import type { OpSource } from "../model/status.js";
import { isVerb, verbSpec, type VerbBody, type VerbName } from "../model/verbs.js";
import { discardBody, readJsonBody } from "./body.js";
import type { HttpDeps } from "./deps.js";
import type { ServerParts } from "./parts.js";
import { liftQuarantine, listQuarantines } from "./quarantines.js";
import { envelope, sendJson, sendJsonBytes, sendText } from "./respond.js";
import type { RouteDef, RouteName } from "./routes.js";
import { listRuntimes, type RuntimeListDeps } from "./runtimeList.js";
import { serveConsole } from "./ui/serve.js";
import type { ExtOperationList, ExtRuntimeView, ExtVersion } from "./wire.js";

export interface RequestContext {
  opId: string;
  route: RouteDef;
  gameId: string;
  opSource: OpSource;
  query(): URLSearchParams;
  logger(): Logger;
}

type Handler = (s: ServerParts, req: IncomingMessage, res: ServerResponse, ctx: RequestContext) => Promise<void> | void;

const opContext = (ctx: RequestContext): OpContext => ({ opId: ctx.opId, opSource: ctx.opSource, logger: ctx.logger() });

function checkImage(imageRef: string, allowlist: readonly string[] | undefined): void {
  const refused = imageRefused(imageRef, allowlist);
  if (refused) throw new RtmError("start_config_invalid", `${refused}; nothing was pulled or started`);
}

/** Every lifecycle verb: read its body by its schema, check its image, run it, answer with the record. */
async function serveVerb<V extends VerbName>(s: ServerParts, verb: V, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
  const spec = verbSpec(verb);
  let body: VerbBody<V>;
  if (spec.body) body = await readJsonBody(req, spec.body);
  else {
    discardBody(req);
    body = undefined as VerbBody<V>;
  }
  const image = spec.image?.(body);
  if (image !== undefined) checkImage(image, s.deps.imageAllowlist);
  const r = await s.deps.operations.perform(verb, ctx.gameId, body, opContext(ctx));
  sendJson(res, 200, toContractRecord(r.record));
}

function intParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === "") return fallback;
  if (!/^[0-9]{1,9}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new RtmError("invalid_request", `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw.slice(0, 32))}`);
  }
  return Number(raw);
}

/** The declaration source, when it can list (every real one can; a test may give `get` alone). */
function listSource(d: HttpDeps["declarations"]): RuntimeListDeps["declarations"] {
  if (!d?.listGameIds) return undefined;
  return { get: (id) => d.get(id), listGameIds: () => d.listGameIds!(), listDeclarations: d.listDeclarations?.bind(d) };
}

async function extRecord(s: ServerParts, res: ServerResponse, gameId: string): Promise<void> {
  checkGameId(gameId, "not_found");
  let declarationError: ExtRuntimeView["declarationError"] = null;
  const [record, declaration] = await Promise.all([
    s.deps.state.getRecord(gameId),
    (s.deps.declarations?.get(gameId) ?? Promise.resolve(null)).catch((err: unknown) => {
      // A stored declaration the schema refuses is exactly what an operator comes here to see.
      if (isRtmError(err) && err.code === "start_config_invalid") {
        declarationError = { code: err.code, message: err.message };
        return null;
      }
      throw err;
    }),
  ]);
  if (!record && !declaration && !declarationError) throw new RtmError("not_found", `runtime record not found for game ${gameId}`);
  const view = { gameId, record, declaration, declarationError } satisfies { [K in keyof ExtRuntimeView]: unknown };
  sendJson(res, 200, view);
}

async function extOperations(s: ServerParts, res: ServerResponse, ctx: RequestContext): Promise<void> {
  checkGameId(ctx.gameId, "not_found");
  const limit = intParam(ctx.query(), "limit", OPERATION_LIST_DEFAULT_LIMIT, OPERATION_LIST_MAX_LIMIT);
  const items = await s.deps.state.listOperations(ctx.gameId, limit);
  sendJson(res, 200, { items } satisfies { [K in keyof ExtOperationList]: unknown });
}

const HANDLERS: { [N in Exclude<RouteName, VerbName>]: Handler } = {
  healthz: (_s, _req, res) => sendJson(res, 200, { status: "ok" }),
  readyz: async (s, _req, res) => {
    const reason = await s.ready();
    if (reason === null) return sendJson(res, 200, { status: "ready" });
    return sendJson(res, 503, envelope("service_unavailable", reason));
  },
  metrics: async (s, _req, res) => sendText(res, 200, await s.deps.metrics!.render(), s.deps.metrics!.contentType),
  list: async (s, _req, res) => sendJsonBytes(res, 200, s.listJson.json(await s.deps.operations.list())),
  get: async (s, _req, res, ctx) => sendJsonBytes(res, 200, s.recordJson.json(await s.deps.operations.get(ctx.gameId))),
  extList: (s, _req, res, ctx) =>
    listRuntimes(res, { records: () => s.deps.operations.list(), declarations: listSource(s.deps.declarations) }, ctx.query()),
  extRecord: (s, _req, res, ctx) => extRecord(s, res, ctx.gameId),
  extOperations: (s, _req, res, ctx) => extOperations(s, res, ctx),
  extPlan: async (s, _req, res, ctx) => {
    checkGameId(ctx.gameId, "not_found");
    sendJson(res, 200, await s.deps.preview!(ctx.gameId));
  },
  extLogs: (s, _req, res, ctx) => {
    checkGameId(ctx.gameId, "not_found");
    return s.logStreams!.serve(res, ctx.gameId, ctx.query(), ctx.logger());
  },
  events: (s, req, res, ctx) => s.streams.serve(req, res, ctx.query(), ctx.logger()),
  extVersion: (_s, _req, res) => sendJson(res, 200, buildInfo() satisfies ExtVersion),
  extQuarantines: (s, _req, res) => listQuarantines(res, s.deps.quarantines!),
  extQuarantineLift: (s, req, res, ctx) => liftQuarantine(req, res, s.deps.quarantines!, ctx.opSource, ctx.logger()),
  ui: (_s, _req, res) => serveConsole(res, "index.html"),
  uiAsset: (_s, _req, res, ctx) => serveConsole(res, ctx.gameId),
};

export async function dispatch(s: ServerParts, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> {
  const name = ctx.route.name;
  if (isVerb(name)) return serveVerb(s, name, req, res, ctx);
  return HANDLERS[name](s, req, res, ctx);
}
