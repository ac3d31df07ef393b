/**
 * What goes over the wire, shared by the server and src/client so the two
 * cannot drift. Contract bodies come from src/model (ContractRuntimeRecord);
 * the rest is the extension surface documented in docs/http-extensions.md.
 */
import type { BuildInfo } from "../buildInfo.js";
import type { Declaration } from "../model/declaration.js";
import type { ErrorCode } from "../model/errors.js";
import type { HealthState, OperationEntry, RuntimeEvent, RuntimeRecord } from "../model/record.js";
import type { DesiredState, RuntimeStatus } from "../model/status.js";

/** A value after JSON.stringify: every Date becomes its ISO string. */
export type Wire<T> = {
  [K in keyof T]: T[K] extends Date ? string : Date extends T[K] ? Exclude<T[K], Date> | string : T[K];
};

export interface ErrorEnvelope {
  error: { code: ErrorCode; message: string };
}

/** GET /api/v1/ext/runtimes/{game_id}: the whole internal record and the declaration behind it. */
export interface ExtRuntimeView {
  gameId: string;
  record: Wire<RuntimeRecord> | null;
  declaration: Wire<Declaration> | null;
  /** Set when a declaration is stored but fails the schema (start_config_invalid). */
  declarationError: { code: ErrorCode; message: string } | null;
}

/**
 * One game in GET /api/v1/ext/runtimes: what an on-call engineer scans a
 * fleet for, flat so a table (rtmctl list -o wide, the console) reads it
 * directly. A game appears when it has a record, a declaration, or both.
 */
export interface ExtRuntimeSummary {
  gameId: string;
  /** The record's status; null while a declaration waits for its first reconcile. */
  status: RuntimeStatus | null;
  /** The declaration's desired state; null when the game has no (valid) declaration. */
  desiredState: DesiredState | null;
  /** The image the engine runs (the record's). */
  imageRef: string | null;
  /** The image the declaration asks for. */
  declaredImageRef: string | null;
  /** The declaration's generation; null without one. */
  generation: number | null;
  observedGeneration: number;
  /** A generation the loop will not act on (its patch rolled back); null when none. */
  heldGeneration: number | null;
  health: HealthState;
  consecutiveProbeFailures: number;
  restartCount: number;
  degraded: boolean;
  /** The node the engine's Pod is stuck on (Pods only); null when none. */
  lostNode: string | null;
  lostNodeSince: string | null;
  rolloutStartedAt: string | null;
  containerId: string | null;
  startedAt: string | null;
  lastOpAt: string | null;
  lastErrorCode: ErrorCode | null;
  lastErrorMessage: string | null;
  /** Set when the stored declaration fails the schema. */
  declarationError: { code: ErrorCode; message: string } | null;
  /** Why this game needs a look (ATTENTION_REASONS), empty when none; `unhealthy=true` keeps the non-empty ones. */
  attention: AttentionReason[];
}

/**
 * Reasons a game shows in `attention`, each one condition of the summary:
 * unhealthy (health), degraded (a rollback failed), node_lost, held (a
 * generation held after a rollback), error (lastErrorCode set), crash_loop
 * (restartCount at the crash-loop threshold or more), not_running (declared
 * running, recorded otherwise, no gate open), invalid_declaration.
 */
export const ATTENTION_REASONS = ["unhealthy", "degraded", "node_lost", "held", "error", "crash_loop", "not_running", "invalid_declaration"] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

/** GET /api/v1/ext/runtimes: every game, sorted by id, after the query's filters. */
export interface ExtRuntimeList {
  items: ExtRuntimeSummary[];
}

export interface ExtOperationList {
  items: Wire<OperationEntry>[];
}

/** One active image quarantine (GET /api/v1/ext/quarantines, and the answer of a lift). */
export interface ExtQuarantine {
  imageRef: string;
  since: string;
  rollbacks: number;
  /** The game whose rollback imposed it. */
  gameId: string;
  games: string[];
}

export interface ExtQuarantineList {
  items: ExtQuarantine[];
}

/** GET /api/v1/ext/version: which build answers. */
export type ExtVersion = BuildInfo;

export type WireEvent = Wire<RuntimeEvent>;

/** `event: snapshot` of the event stream. */
export interface EventSnapshot {
  /** The position the stream continues from; events after it follow. */
  cursor: number;
  records: Wire<RuntimeRecord>[];
}

export const DIAGNOSTIC_CODES = ["invalid_cursor", "cursor_expired", "cursor_unknown", "stream_failed"] as const;
export type DiagnosticCode = (typeof DIAGNOSTIC_CODES)[number];

/** `event: diagnostic`: something about the stream itself, never about a runtime. */
export interface EventDiagnostic {
  code: DiagnosticCode;
  message: string;
  /** cursor_expired: the oldest sequence still stored. */
  oldest?: number;
  /** Where the stream continues from. */
  cursor?: number;
}

export const OP_ID_HEADER = "x-op-id";
export const CALLER_HEADER = "x-galaxy-caller";
/** Incoming op ids are adopted only when they look like this; anything else gets a fresh UUID. */
export const OP_ID_PATTERN = /^[A-Za-z0-9._:-]{8,64}$/;
