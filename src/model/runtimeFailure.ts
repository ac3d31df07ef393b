/**
 * What went wrong in an engine runtime, in the runtime's terms. Adapters throw
 * it; they do not decide what it means for the contract or whether retrying
 * helps: src/controller/runtimeErrors.ts maps each kind to an RtmError code.
 */
export const RUNTIME_FAILURE_KINDS = [
  /** Nobody answered (socket refused, timeout, connection cut). */
  "unavailable",
  /** The image is not present where it has to be. */
  "image_not_found",
  /** Fetching the image failed. */
  "pull_failed",
  /** The runtime refused the engine's configuration; the same inputs fail the same way. */
  "config_refused",
  /**
   * The runtime refused for now and says so (a quota, a namespace being
   * deleted, rate limiting, no node with room): the same request may succeed
   * later without any change, so it is retried with backoff.
   */
  "refused_for_now",
  /** The engine could not be started. */
  "start_failed",
  /** No such engine. */
  "not_found",
  /** An engine of that name already exists. */
  "conflict",
  /** Any other refusal. */
  "failed",
] as const;

export type RuntimeFailureKind = (typeof RUNTIME_FAILURE_KINDS)[number];

export class RuntimeFailure extends Error {
  override readonly name = "RuntimeFailure";
  constructor(
    readonly kind: RuntimeFailureKind,
    /** The runtime call that failed ("create", "pull", ...). */
    readonly operation: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRuntimeFailure(err: unknown): err is RuntimeFailure {
  return err instanceof RuntimeFailure;
}

/**
 * How one runtime API call ended, for rtmanager_runtime_api_calls_total:
 * answered (`ok`, including answers the caller handles such as 404 on a
 * remove), failed (`error`), or cut short by its reconcile's signal (lost
 * leadership, shutdown: `aborted`), which says nothing of the runtime.
 */
export type RuntimeCallOutcome = "ok" | "error" | "aborted";

/**
 * Not a failure: a runtime call that had to delete an engine before making
 * its successor (a finished Pod, an evicted one holding the name) found the
 * deletion accepted but not done, the old engine held by someone's finalizer.
 * The call stops there rather than wait; the caller leaves the successor to
 * the reconcile the runtime's watch wakes once the old engine is gone, as it
 * does a replace it split itself (src/controller/actions.ts).
 */
export class EngineStillTerminating extends Error {
  override readonly name = "EngineStillTerminating";
  constructor(
    /** The runtime call that stopped ("create", "updateImage"). */
    readonly operation: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
