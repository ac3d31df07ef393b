/**
 * The long-lived pieces one server is made of (token checks, streams, memos,
 * the router of the routes its deps enable), built once by createHttpServer
 * and shared by the request pipeline (request.ts) and the handlers.
 */
import type { IncomingMessage } from "node:http";
import { toContractRecord, type RuntimeRecord } from "../model/record.js";
import type { HttpDeps, ReadinessFailure } from "./deps.js";
import { EventStreams } from "./events.js";
import { browserGuard, type GuardSettings } from "./guards.js";
import { DEFAULT_HTTP_LIMITS, MutationSlots, type SocketTimeouts } from "./limits.js";
import { LogStreams } from "./logs.js";
import { CachedCheck } from "./readiness.js";
import { JsonMemo } from "./respond.js";
import { ROUTES, Router, type RouteDef } from "./routes.js";
import { fileTokens, staticTokens, type TokenCheck } from "./tokens.js";

export interface ServerParts {
  deps: HttpDeps;
  router: Router;
  tokens: TokenCheck | null;
  /** RTMANAGER_METRICS_TOKEN_FILE's tokens, valid on /metrics only. */
  scrapers: TokenCheck | null;
  checkBrowser(req: IncomingMessage): void;
  mutations: MutationSlots;
  /** null when ready, else the reason served with the 503. */
  ready(): Promise<string | null>;
  recordJson: JsonMemo<RuntimeRecord>;
  listJson: JsonMemo<readonly RuntimeRecord[]>;
  streams: EventStreams;
  logStreams: LogStreams | null;
  /** Set once the server exists (applySocketTimeouts needs it). */
  sockets: SocketTimeouts | null;
}

/** The routes whose dependency was given: the rest answer 404 like any unknown path. */
function availableRoutes(deps: HttpDeps): RouteDef[] {
  return ROUTES.filter((r) => {
    if (r.name === "metrics") return Boolean(deps.metrics);
    if (r.name === "extPlan") return Boolean(deps.preview);
    if (r.name === "extLogs") return Boolean(deps.logs);
    if (r.name === "extQuarantines" || r.name === "extQuarantineLift") return Boolean(deps.quarantines);
    return true;
  });
}

/** How long one readiness answer is served to every caller (readiness.ts). */
const READINESS_CACHE_MS = 1000;

/** The dependency is served; its address (in the detail) is logged, once per change. */
function readinessProbe(deps: HttpDeps): () => Promise<string | null> {
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

function tokenChecks(deps: HttpDeps): Pick<ServerParts, "tokens" | "scrapers"> {
  const rules = { minLength: deps.minTokenLength };
  const tokens = deps.tokenFile ? fileTokens(deps.tokenFile, deps.logger, rules) : deps.token ? staticTokens(deps.token) : null;
  const scrapers = deps.metricsTokenFile ? fileTokens(deps.metricsTokenFile, deps.logger, { ...rules, setting: "RTMANAGER_METRICS_TOKEN_FILE" }) : null;
  return { tokens, scrapers };
}

function streamsOf(deps: HttpDeps): Pick<ServerParts, "streams" | "logStreams"> {
  const streams = new EventStreams({
    state: deps.state,
    subscribeEvents: deps.subscribeEvents,
    pollMs: deps.events?.pollMs,
    keepAliveMs: deps.events?.keepAliveMs,
    maxStreams: deps.limits?.maxEventStreams,
    logger: deps.logger,
  });
  const limits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  const logStreams = deps.logs ? new LogStreams(deps.logs, { max: limits.maxLogFollows, perGame: limits.maxLogFollowsPerGame }) : null;
  deps.metrics?.bindStreams?.(() => ({ eventStreams: streams.size, eventSubscribers: streams.feed.size, logFollows: logStreams?.size ?? 0 }));
  return { streams, logStreams };
}

export function buildParts(deps: HttpDeps): ServerParts {
  const guards: GuardSettings = { allowedHosts: ["localhost"], allowedOrigins: [], checkHost: true, ...deps.guards };
  return {
    deps,
    router: new Router(availableRoutes(deps)),
    ...tokenChecks(deps),
    checkBrowser: browserGuard(guards),
    mutations: new MutationSlots(deps.limits?.maxConcurrentMutations),
    ready: readinessProbe(deps),
    recordJson: new JsonMemo<RuntimeRecord>(toContractRecord),
    listJson: new JsonMemo<readonly RuntimeRecord[]>((records) => ({ items: records.map(toContractRecord) })),
    ...streamsOf(deps),
    sockets: null,
  };
}
