/**
 * What goes over the wire, shared by the server and src/client so the two
 * cannot drift. Contract bodies come from src/model (ContractRuntimeRecord);
 * the rest is the extension surface documented in docs/http-extensions.md.
 */
import type { BuildInfo } from "../buildInfo.js";
import type { Declaration } from "../model/declaration.js";
import type { ErrorCode } from "../model/errors.js";
import type { OperationEntry, RuntimeEvent, RuntimeRecord } from "../model/record.js";

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
