/**
 * The REST surface on plain node:http: the contract's internal API, probes,
 * /metrics and the extension endpoints. Transport only; what an operation
 * means lives in src/controller/operations.ts.
 */
import { randomUUID } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import { buildInfo } from "../buildInfo.js";
import type { RuntimeOperations } from "../controller/operations.js";
import { checkGameId } from "../controller/operations.js";
import type { Logger } from "../log.js";
import type { Declaration } from "../model/declaration.js";
import { RtmError, isRtmError } from "../model/errors.js";
import type { StateStore } from "../model/ports.js";
import { OPERATION_LIST_DEFAULT_LIMIT, OPERATION_LIST_MAX_LIMIT, toContractRecord, type RuntimeRecord } from "../model/record.js";
import { opSourceFromCaller } from "../model/status.js";
import { imageRefused } from "../model/admission.js";
import { discardBody, readJsonBody } from "./body.js";
import { EventStreams } from "./events.js";
import { LogStreams, type LogRouteDeps } from "./logs.js";
import { browserGuard, type GuardSettings } from "./guards.js";
import { applySocketTimeouts, DEFAULT_HTTP_LIMITS, MutationSlots, serverTimeoutOptions, type HttpLimits, type HttpStreamCounts } from "./limits.js";
import { fileTokens, staticTokens, type TokenCheck } from "./tokens.js";
import { envelope, JsonMemo, OpResponse, sendError, sendJson, sendJsonBytes, sendText, statusOf, transportError } from "./respond.js";
import { CachedCheck } from "./readiness.js";
import { ROUTES, Router, parseTarget, type RouteDef, type RouteName } from "./routes.js";
import { liftQuarantine, listQuarantines, type QuarantineRouteDeps } from "./quarantines.js";
import { listRuntimes, type RuntimeListDeps } from "./runtimeList.js";
import { parseTraceParent, rememberTrace, traceLogFields } from "./traceparent.js";
import { serveConsole } from "./ui/serve.js";
import { PatchRequestSchema, StartRequestSchema, StopRequestSchema } from "./schemas.js";
import { CALLER_HEADER, OP_ID_HEADER, OP_ID_PATTERN, type ExtOperationList, type ExtRuntimeView, type ExtVersion } from "./wire.js";

/** The metrics as the HTTP server sees them (src/metrics.ts implements it). */
export interface HttpMetrics {
  readonly contentType: string;
  render(): Promise<string>;
  /** `route` is the route template (`/api/v1/internal/runtimes/{game_id}/stop`) or "unmatched", never a raw path. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** Streams held open, read at scrape time (a leak shows as subscribers above streams). */
  bindStreams?(counts: () => HttpStreamCounts): void;
  /** Once per readiness dependency check actually run. */
  onReadinessCheck?(): void;
}

export interface HttpDeps {
  operations: RuntimeOperations;
  state: StateStore;
  logger: Logger;
  /** When set, every path but /healthz and /readyz needs `Authorization: Bearer <token>`. */
  token?: string;
  /** Like `token`, read from a file of one or two lines (both valid) and re-read when it changes. */
  tokenFile?: string;
  /** Tokens (same file format) that may only GET /metrics. */
  metricsTokenFile?: string;
  /** Tokens read from files must be at least this long (MIN_TOKEN_LENGTH unless short ones are allowed). */
  minTokenLength?: number;
  /** null when ready, else the reason (served as the 503 message) and a detail for the log only. */
  readiness(): Promise<ReadinessFailure | null>;
  /** What the loop would do now (Reconciler.preview); enables GET .../plan. */
  preview?(gameId: string): Promise<unknown>;
  /** Enables GET /metrics; every request is observed through it. */
  metrics?: HttpMetrics;
  /** Wakes event streams when new events may exist; without it they poll. */
  subscribeEvents?(listener: () => void): () => void;
  /** Engine output and its bounds; enables GET .../logs (src/http/logs.ts). */
  logs?: LogRouteDeps;
  /** The desired state, shown next to the record by GET /api/v1/ext/runtimes/{game_id}. */
  declarations?: { get(gameId: string): Promise<Declaration | null> } & Partial<NonNullable<RuntimeListDeps["declarations"]>>;
  /** Event stream timing; the defaults (1 s poll, 15 s keep-alive) suit production. */
  events?: { pollMs?: number; keepAliveMs?: number };
  /** Host and Origin checks; defaults: localhost and IP literals, no browser origin. */
  guards?: Partial<GuardSettings>;
  /** Caps and timeouts; see limits.ts for the defaults. */
  limits?: Partial<HttpLimits>;
  /** Image quarantines (src/controller/quarantine.ts); enables /api/v1/ext/quarantines. */
  quarantines?: QuarantineRouteDeps;
  /** RTMANAGER_IMAGE_ALLOWLIST, checked on start and patch before anything is written. */
  imageAllowlist?: readonly string[];
}

/** `reason` names the dependency and is served; `detail` (addresses, driver messages) goes to the log only. */
export interface ReadinessFailure {
  reason: string;
  detail?: string;
}

const MUTATIONS: ReadonlySet<RouteName> = new Set(["start", "stop", "restart", "patch", "cleanup"]);

interface RequestContext {
  opId: string;
  route: RouteDef;
  gameId: string;
  query(): URLSearchParams;
  logger(): Logger;
}

function adoptOpId(header: string | string[] | undefined): string {
  return typeof header === "string" && OP_ID_PATTERN.test(header) ? header : randomUUID();
}

/** `scrapers` (RTMANAGER_METRICS_TOKEN_FILE) are valid on /metrics only. */
function checkAuth(req: IncomingMessage, tokens: TokenCheck, scrapers: TokenCheck | null, route: RouteName | undefined): void {
  const header = req.headers.authorization;
  if (!header) throw transportError(401, "missing bearer token: send Authorization: Bearer <RTMANAGER_INTERNAL_TOKEN>");
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m) throw transportError(401, "Authorization header must be Bearer <token>");
  if (tokens.accepts(m[1]!)) return;
  if (scrapers?.accepts(m[1]!)) {
    if (route === "metrics") return;
    throw transportError(401, "this token (RTMANAGER_METRICS_TOKEN_FILE) may only scrape GET /metrics");
  }
  throw transportError(401, "wrong bearer token");
}

function checkImage(imageRef: string, allowlist: readonly string[] | undefined): void {
  const refused = imageRefused(imageRef, allowlist);
  if (refused) throw new RtmError("start_config_invalid", `${refused}; nothing was pulled or started`);
}

/** How long one readiness answer is served to every caller (readiness.ts). */
const READINESS_CACHE_MS = 1000;

/** The dependency is served; its address (in the detail) is logged, once per change. */
function readinessProbe(deps: HttpDeps) {
  let lastLogged: string | null = null;
  const shared = new CachedCheck<ReadinessFailure | null>({
    check: () => deps.readiness().catch((err: unknown) => ({ reason: "readiness check failed", detail: String((err as Error).message) })),
    ttlMs: READINESS_CACHE_MS,
    onCheck: () => deps.metrics?.onReadinessCheck?.(),
  });
  return async (): Promise<string | null> => {
    const failure = await shared.get();
    const line = failure ? `${failure.reason}: ${failure.detail ?? ""}` : null;
    if (line !== lastLogged) {
      if (failure) deps.logger.warn({ reason: failure.reason, detail: failure.detail }, "not ready");
      else if (lastLogged !== null) deps.logger.info("ready again");
      lastLogged = line;
    }
    return failure?.reason ?? null;
  };
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

export function createHttpServer(deps: HttpDeps): http.Server {
  const available = ROUTES.filter((r) => {
    if (r.name === "metrics") return Boolean(deps.metrics);
    if (r.name === "extPlan") return Boolean(deps.preview);
    if (r.name === "extLogs") return Boolean(deps.logs);
    if (r.name === "extQuarantines" || r.name === "extQuarantineLift") return Boolean(deps.quarantines);
    return true;
  });
  const router = new Router(available);
  const tokenRules = { minLength: deps.minTokenLength };
  const tokens: TokenCheck | null = deps.tokenFile ? fileTokens(deps.tokenFile, deps.logger, tokenRules) : deps.token ? staticTokens(deps.token) : null;
  const scrapers = deps.metricsTokenFile ? fileTokens(deps.metricsTokenFile, deps.logger, { ...tokenRules, setting: "RTMANAGER_METRICS_TOKEN_FILE" }) : null;
  const guards: GuardSettings = { allowedHosts: ["localhost"], allowedOrigins: [], checkHost: true, ...deps.guards };
  const checkBrowser = browserGuard(guards);
  const mutations = new MutationSlots(deps.limits?.maxConcurrentMutations);
  const ready = readinessProbe(deps);
  const recordJson = new JsonMemo<RuntimeRecord>(toContractRecord);
  const listJson = new JsonMemo<readonly RuntimeRecord[]>((records) => ({ items: records.map(toContractRecord) }));
  const streams = new EventStreams({
    state: deps.state,
    subscribeEvents: deps.subscribeEvents,
    pollMs: deps.events?.pollMs,
    keepAliveMs: deps.events?.keepAliveMs,
    maxStreams: deps.limits?.maxEventStreams,
    logger: deps.logger,
  });
  const httpLimits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  const logStreams = deps.logs ? new LogStreams(deps.logs, { max: httpLimits.maxLogFollows, perGame: httpLimits.maxLogFollowsPerGame }) : null;
  deps.metrics?.bindStreams?.(() => ({ eventStreams: streams.size, eventSubscribers: streams.feed.size, logFollows: logStreams?.size ?? 0 }));

  const dispatch = async (req: IncomingMessage, res: ServerResponse, ctx: RequestContext): Promise<void> => {
    const { operations, state } = deps;
    const { gameId } = ctx;
    const caller = req.headers[CALLER_HEADER];
    const opSource = opSourceFromCaller(typeof caller === "string" ? caller : undefined);
    const opCtx = () => ({ opId: ctx.opId, opSource, logger: ctx.logger() });

    switch (ctx.route.name) {
      case "healthz":
        return sendJson(res, 200, { status: "ok" });
      case "readyz": {
        const reason = await ready();
        if (reason === null) return sendJson(res, 200, { status: "ready" });
        return sendJson(res, 503, envelope("service_unavailable", reason));
      }
      case "metrics": {
        const m = deps.metrics!;
        return sendText(res, 200, await m.render(), m.contentType);
      }
      case "list":
        return sendJsonBytes(res, 200, listJson.json(await operations.list()));
      case "get":
        return sendJsonBytes(res, 200, recordJson.json(await operations.get(gameId)));
      case "start": {
        const body = await readJsonBody(req, StartRequestSchema);
        checkImage(body.image_ref, deps.imageAllowlist);
        const r = await operations.start(gameId, body.image_ref, opCtx());
        return sendJson(res, 200, toContractRecord(r.record));
      }
      case "stop": {
        const body = await readJsonBody(req, StopRequestSchema);
        const r = await operations.stop(gameId, body.reason, opCtx());
        return sendJson(res, 200, toContractRecord(r.record));
      }
      case "restart": {
        discardBody(req);
        const r = await operations.restart(gameId, opCtx());
        return sendJson(res, 200, toContractRecord(r.record));
      }
      case "patch": {
        const body = await readJsonBody(req, PatchRequestSchema);
        checkImage(body.image_ref, deps.imageAllowlist);
        const r = await operations.patch(gameId, body.image_ref, opCtx());
        return sendJson(res, 200, toContractRecord(r.record));
      }
      case "cleanup": {
        discardBody(req);
        const r = await operations.cleanup(gameId, opCtx());
        return sendJson(res, 200, toContractRecord(r.record));
      }
      case "extList":
        return listRuntimes(res, { records: () => operations.list(), declarations: listSource(deps.declarations) }, ctx.query());
      case "extRecord": {
        checkGameId(gameId, "not_found");
        let declarationError: ExtRuntimeView["declarationError"] = null;
        const [record, declaration] = await Promise.all([
          state.getRecord(gameId),
          (deps.declarations?.get(gameId) ?? Promise.resolve(null)).catch((err: unknown) => {
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
        return sendJson(res, 200, view);
      }
      case "extOperations": {
        checkGameId(gameId, "not_found");
        const limit = intParam(ctx.query(), "limit", OPERATION_LIST_DEFAULT_LIMIT, OPERATION_LIST_MAX_LIMIT);
        const items = await state.listOperations(gameId, limit);
        return sendJson(res, 200, { items } satisfies { [K in keyof ExtOperationList]: unknown });
      }
      case "extPlan":
        checkGameId(gameId, "not_found");
        return sendJson(res, 200, await deps.preview!(gameId));
      case "extLogs":
        checkGameId(gameId, "not_found");
        return logStreams!.serve(res, gameId, ctx.query(), ctx.logger());
      case "events":
        return streams.serve(req, res, ctx.query(), ctx.logger());
      case "extVersion":
        return sendJson(res, 200, buildInfo() satisfies ExtVersion);
      case "extQuarantines":
        return listQuarantines(res, deps.quarantines!);
      case "extQuarantineLift":
        return liftQuarantine(req, res, deps.quarantines!, opSource, ctx.logger());
      case "ui":
      case "uiAsset":
        return serveConsole(res, ctx.route.name === "ui" ? "index.html" : gameId);
    }
  };

  /**
   * The hot reads, answered from the record cache without a promise; false
   * when memory cannot answer and dispatch must. Under load every
   * microsecond here costs several in the kernel (the client has gone to
   * sleep by the time the answer lands), so this path stays short.
   */
  const serveFromMemory = (route: RouteDef, gameId: string | null, res: ServerResponse): boolean => {
    if (route.name === "get" && gameId !== null) {
      const record = deps.operations.peek(gameId);
      if (record === undefined) return false;
      sendJsonBytes(res, 200, recordJson.json(record));
      return true;
    }
    if (route.name === "list") {
      const records = deps.operations.peekList();
      if (records === undefined) return false;
      sendJsonBytes(res, 200, listJson.json(records));
      return true;
    }
    return false;
  };

  const handle = (req: IncomingMessage, res: OpResponse): void => {
    const started = performance.now();
    const opId = adoptOpId(req.headers[OP_ID_HEADER]);
    const trace = parseTraceParent(req.headers.traceparent);
    // Every answer carries it, 401s and 500s included (OpResponse adds it to the head).
    res.opId = opId;
    const method = req.method ?? "GET";
    const target = parseTarget(req.url);
    const match = router.match(target.pathname);
    const route = match?.routes.find((r) => r.method === method) ?? null;
    const label = match ? match.routes[0]!.template : "unmatched";
    // Built on first use: reads on the hot path mostly never log, and a pino child is not free.
    let child: Logger | null = null;
    const logger = (): Logger => (child ??= deps.logger.child({ opId, route: label, ...traceLogFields(trace) }));

    const finished = (): void => {
      const seconds = (performance.now() - started) / 1000;
      deps.metrics?.observeRequest(label, method, res.statusCode, seconds);
      const mutation = route !== null && MUTATIONS.has(route.name);
      if (!mutation && !deps.logger.isLevelEnabled("debug")) return;
      const line = { method, status: res.statusCode, ms: Math.round(seconds * 1000), gameId: match?.gameId ?? undefined };
      if (mutation) logger().info(line, "request");
      else logger().debug(line, "request");
    };

    try {
      const open = match?.routes.some((r) => r.open) ?? false;
      // Probes stay open to kubelet, which dials the pod IP and sends no Origin.
      if (!open) checkBrowser(req);
      // The console's files hold no data; the page itself sends the token on every API call.
      const page = match?.routes.some((r) => r.page) ?? false;
      if (tokens && !open && !page) checkAuth(req, tokens, scrapers, route?.name);
      if (!match) throw new RtmError("not_found", `no such endpoint: ${method} ${target.pathname.slice(0, 200)}`);
      if (!route) {
        const allow = match.routes.map((r) => r.method).join(", ");
        res.setHeader("allow", allow);
        throw transportError(405, `method ${method} is not allowed on ${label}; allowed: ${allow}`);
      }
      if (serveFromMemory(route, match.gameId, res)) {
        // Handed to the socket already: nothing left to wait for.
        finished();
        return;
      }
    } catch (err) {
      fail(res, err, logger());
      finished();
      return;
    }
    res.on("close", finished);
    const mutation = MUTATIONS.has(route.name);
    if (mutation && !mutations.take()) {
      fail(res, mutations.refusal(), logger());
      return;
    }
    if (mutation) limits.mutationSocket(req);
    const settled = mutation ? () => mutations.release() : () => {};
    const ctx = { opId, route, gameId: match.gameId ?? "", query: () => new URLSearchParams(target.search), logger };
    (mutation && trace ? rememberTrace(deps.state, opId, trace, logger()) : Promise.resolve())
      .then(() => dispatch(req, res, ctx))
      .catch((err: unknown) => fail(res, err, logger()))
      .finally(settled);
  };

  const fail = (res: ServerResponse, err: unknown, logger: Logger): void => {
    const known = isRtmError(err);
    const status = known ? statusOf(err) : 500;
    if (!known) logger.error({ err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) }, "unexpected error");
    else if (status >= 500) logger.error({ code: err.code, err }, "request failed");
    if (res.headersSent) {
      // A stream already under way cannot switch to an error envelope.
      res.end();
      return;
    }
    const retryAfter = known ? err.details?.retryAfterSeconds : undefined;
    const headers: Record<string, string> = typeof retryAfter === "number" ? { "retry-after": String(retryAfter) } : {};
    // Unknown errors keep their text in the log only: it can carry SQL, paths or hosts.
    sendError(res, known ? err : new RtmError("internal_error", "internal server error"), headers);
  };

  const server = http.createServer<typeof IncomingMessage, typeof OpResponse>({ ServerResponse: OpResponse, ...serverTimeoutOptions(deps.limits) }, handle);
  const limits = applySocketTimeouts(server, deps.limits);
  const close = server.close.bind(server);
  // Event streams never finish on their own; without this close() would wait for every client.
  server.close = ((callback?: (err?: Error) => void) => {
    streams.closeAll();
    logStreams?.closeAll();
    tokens?.close();
    scrapers?.close();
    return close(callback);
  }) as typeof server.close;
  return server;
}
