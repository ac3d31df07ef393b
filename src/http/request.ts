/**
 * One request's way through the server: op id and trace, route match,
 * browser guard and bearer token, the answers served from memory, the
 * mutation slots, dispatch, the error envelope, and the request's metric and
 * log line.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../log.js";
import { RtmError, isRtmError } from "../model/errors.js";
import { opSourceFromCaller } from "../model/status.js";
import { isVerb } from "../model/verbs.js";
import { dispatch } from "./handlers.js";
import type { ServerParts } from "./parts.js";
import { sendError, sendJsonBytes, statusOf, transportError, type OpResponse } from "./respond.js";
import { parseTarget, type RouteDef, type RouteMatch, type RouteName, type Target } from "./routes.js";
import type { TokenCheck } from "./tokens.js";
import { parseTraceParent, rememberTrace, traceLogFields, type TraceParent } from "./traceparent.js";
import { CALLER_HEADER, OP_ID_HEADER, OP_ID_PATTERN } from "./wire.js";

/** What is known of a request before it is dispatched. */
interface Incoming {
  started: number;
  opId: string;
  trace: TraceParent | null;
  method: string;
  target: Target;
  match: RouteMatch | null;
  route: RouteDef | null;
  /** The route template, or "unmatched": the metrics label, never a raw path. */
  label: string;
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

function begin(s: ServerParts, req: IncomingMessage, res: OpResponse): Incoming {
  const started = performance.now();
  const opId = adoptOpId(req.headers[OP_ID_HEADER]);
  const trace = parseTraceParent(req.headers.traceparent);
  // Every answer carries it, 401s and 500s included (OpResponse adds it to the head).
  res.opId = opId;
  const method = req.method ?? "GET";
  const target = parseTarget(req.url);
  const match = s.router.match(target.pathname);
  const route = match?.routes.find((r) => r.method === method) ?? null;
  const label = match ? match.routes[0]!.template : "unmatched";
  // Built on first use: reads on the hot path mostly never log, and a pino child is not free.
  let child: Logger | null = null;
  const logger = (): Logger => (child ??= s.deps.logger.child({ opId, route: label, ...traceLogFields(trace) }));
  return { started, opId, trace, method, target, match, route, label, logger };
}

/** The request's metric and log line: mutations at info, the rest at debug. */
function finisher(s: ServerParts, res: ServerResponse, inc: Incoming): () => void {
  return () => {
    const seconds = (performance.now() - inc.started) / 1000;
    s.deps.metrics?.observeRequest(inc.label, inc.method, res.statusCode, seconds);
    const mutation = inc.route !== null && isVerb(inc.route.name);
    if (!mutation && !s.deps.logger.isLevelEnabled("debug")) return;
    const line = { method: inc.method, status: res.statusCode, ms: Math.round(seconds * 1000), gameId: inc.match?.gameId ?? undefined };
    if (mutation) inc.logger().info(line, "request");
    else inc.logger().debug(line, "request");
  };
}

/** Guards, token and route checks; throws the refusal. */
function checkRequest(s: ServerParts, req: IncomingMessage, res: ServerResponse, inc: Incoming): RouteDef {
  const { match, route } = inc;
  const open = match?.routes.some((r) => r.open) ?? false;
  // Probes stay open to kubelet, which dials the pod IP and sends no Origin.
  if (!open) s.checkBrowser(req);
  // The console's files hold no data; the page itself sends the token on every API call.
  const page = match?.routes.some((r) => r.page) ?? false;
  if (s.tokens && !open && !page) checkAuth(req, s.tokens, s.scrapers, route?.name);
  if (!match) throw new RtmError("not_found", `no such endpoint: ${inc.method} ${inc.target.pathname.slice(0, 200)}`);
  if (!route) {
    const allow = match.routes.map((r) => r.method).join(", ");
    res.setHeader("allow", allow);
    throw transportError(405, `method ${inc.method} is not allowed on ${inc.label}; allowed: ${allow}`);
  }
  return route;
}

/**
 * The hot reads, answered from the record cache without a promise; false
 * when memory cannot answer and dispatch must. Under load every
 * microsecond here costs several in the kernel (the client has gone to
 * sleep by the time the answer lands), so this path stays short.
 */
function serveFromMemory(s: ServerParts, route: RouteDef, gameId: string | null, res: ServerResponse): boolean {
  if (route.name === "get" && gameId !== null) {
    const record = s.deps.operations.peek(gameId);
    if (record === undefined) return false;
    sendJsonBytes(res, 200, s.recordJson.json(record));
    return true;
  }
  if (route.name === "list") {
    const records = s.deps.operations.peekList();
    if (records === undefined) return false;
    sendJsonBytes(res, 200, s.listJson.json(records));
    return true;
  }
  return false;
}

function fail(res: ServerResponse, err: unknown, logger: Logger): void {
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
}

/** Past the checks: a mutation takes a slot (and its trace is stored) before dispatch. */
function proceed(s: ServerParts, req: IncomingMessage, res: ServerResponse, inc: Incoming, route: RouteDef): void {
  const mutation = isVerb(route.name);
  if (mutation && !s.mutations.take()) {
    fail(res, s.mutations.refusal(), inc.logger());
    return;
  }
  if (mutation) s.sockets?.mutationSocket(req);
  const settled = mutation ? () => s.mutations.release() : () => {};
  const caller = req.headers[CALLER_HEADER];
  const opSource = opSourceFromCaller(typeof caller === "string" ? caller : undefined);
  const query = () => new URLSearchParams(inc.target.search);
  const ctx = { opId: inc.opId, route, gameId: inc.match?.gameId ?? "", opSource, query, logger: inc.logger };
  (mutation && inc.trace ? rememberTrace(s.deps.state, inc.opId, inc.trace, inc.logger()) : Promise.resolve())
    .then(() => dispatch(s, req, res, ctx))
    .catch((err: unknown) => fail(res, err, inc.logger()))
    .finally(settled);
}

/** The server's request listener. */
export function requestHandler(s: ServerParts): (req: IncomingMessage, res: OpResponse) => void {
  return (req, res) => {
    const inc = begin(s, req, res);
    const finished = finisher(s, res, inc);
    let route: RouteDef;
    try {
      route = checkRequest(s, req, res, inc);
      if (serveFromMemory(s, route, inc.match!.gameId, res)) {
        // Handed to the socket already: nothing left to wait for.
        finished();
        return;
      }
    } catch (err) {
      fail(res, err, inc.logger());
      finished();
      return;
    }
    res.on("close", finished);
    proceed(s, req, res, inc, route);
  };
}
