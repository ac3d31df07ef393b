/**
 * The REST surface on plain node:http: the contract's internal API, probes,
 * /metrics and the extension endpoints. This file wires the pieces; a
 * request's way through them is request.ts, what each route answers is
 * handlers.ts, and what an operation means lives in src/controller.
 */
import http, { IncomingMessage } from "node:http";
import type { HttpDeps } from "./deps.js";
import { applySocketTimeouts, serverTimeoutOptions } from "./limits.js";
import { buildParts } from "./parts.js";
import { requestHandler } from "./request.js";
import { OpResponse } from "./respond.js";

export type { HttpDeps, HttpMetrics, HttpOperations, ReadinessFailure } from "./deps.js";

export function createHttpServer(deps: HttpDeps): http.Server {
  const parts = buildParts(deps);
  const server = http.createServer<typeof IncomingMessage, typeof OpResponse>(
    { ServerResponse: OpResponse, ...serverTimeoutOptions(deps.limits) },
    requestHandler(parts),
  );
  parts.sockets = applySocketTimeouts(server, deps.limits);
  const close = server.close.bind(server);
  // Event streams never finish on their own; without this close() would wait for every client.
  server.close = ((callback?: (err?: Error) => void) => {
    parts.streams.closeAll();
    parts.logStreams?.closeAll();
    parts.tokens?.close();
    parts.scrapers?.close();
    return close(callback);
  }) as typeof server.close;
  return server;
}
