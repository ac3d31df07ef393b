/**
 * Stable error codes. The list is the contract's `ErrorCode` enum, in its
 * order; a test reads ../shared/contract/internal-openapi.yaml and fails when
 * the two drift.
 */
export const ERROR_CODES = [
  "invalid_request",
  "not_found",
  "conflict",
  "service_unavailable",
  "internal_error",
  "image_pull_failed",
  "image_ref_not_semver",
  "semver_patch_only",
  "container_start_failed",
  "start_config_invalid",
  "docker_unavailable",
  "replay_no_op",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The contract names the engine runtime after Docker; code outside the Docker adapter uses this name for it. */
export const RUNTIME_UNAVAILABLE = "docker_unavailable" satisfies ErrorCode;

/** HTTP status each code answers with on the REST surface. */
export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_request: 400,
  image_ref_not_semver: 400,
  not_found: 404,
  conflict: 409,
  semver_patch_only: 409,
  service_unavailable: 503,
  docker_unavailable: 503,
  internal_error: 500,
  image_pull_failed: 500,
  container_start_failed: 500,
  start_config_invalid: 500,
  replay_no_op: 200,
};

/**
 * Codes whose failure will not go away by retrying the same declaration:
 * the loop records them and waits for a new generation instead of backing off
 * forever.
 */
export const PERMANENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "invalid_request",
  "image_ref_not_semver",
  "semver_patch_only",
  "start_config_invalid",
]);

export class RtmError extends Error {
  override readonly name = "RtmError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRtmError(err: unknown): err is RtmError {
  return err instanceof RtmError;
}

/** Wraps anything thrown into an RtmError, keeping an existing code. */
export function toRtmError(err: unknown, fallback: ErrorCode = "internal_error"): RtmError {
  if (err instanceof RtmError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RtmError(fallback, message, undefined, { cause: err });
}
