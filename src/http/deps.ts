/** What the HTTP server is built from (createHttpServer's argument). */
import type { RuntimeOperations } from "../controller/operations.js";
import type { Logger } from "../log.js";
import type { Declaration } from "../model/declaration.js";
import type { StateStore } from "../model/ports.js";
import type { GuardSettings } from "./guards.js";
import type { HttpLimits, HttpStreamCounts } from "./limits.js";
import type { LogRouteDeps } from "./logs.js";
import type { QuarantineRouteDeps } from "./quarantines.js";
import type { RuntimeListDeps } from "./runtimeList.js";

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

/** What the server asks of the operations layer (RuntimeOperations implements it). */
export type HttpOperations = Pick<RuntimeOperations, "get" | "list" | "peek" | "peekList" | "perform">;

export interface HttpDeps {
  operations: HttpOperations;
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
