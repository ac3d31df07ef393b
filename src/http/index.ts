export { createHttpServer, type HttpDeps, type HttpMetrics, type HttpOperations } from "./server.js";
export { EventStreams, type EventStreamOptions } from "./events.js";
export { MAX_BODY_BYTES } from "./body.js";
export { ROUTES, type RouteDef, type RouteName } from "./routes.js";
export { PatchRequestSchema, StartRequestSchema, StopRequestSchema, type PatchRequest, type StartRequest, type StopRequest } from "../model/verbs.js";
export * from "./wire.js";
