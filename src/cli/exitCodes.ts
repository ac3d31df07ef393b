/**
 * rtmctl's exit codes: one per contract error code, so a script can branch on
 * `$?` without parsing output. Codes are stable; new ones are only appended.
 */
import { ERROR_CODES, type ErrorCode } from "../model/errors.js";

export const EXIT_OK = 0;
/** Anything unforeseen: a bug, an answer that is not the API's. */
export const EXIT_UNEXPECTED = 1;
/** Bad flags or arguments; nothing was sent. */
export const EXIT_USAGE = 2;
/** No HTTP answer: connection refused, DNS, or the request timed out. */
export const EXIT_UNREACHABLE = 3;
/** 401: missing or wrong bearer token (the contract carries it as invalid_request). */
export const EXIT_UNAUTHORIZED = 4;
/** The server answered with an error code this rtmctl does not know (a newer server). */
export const EXIT_UNKNOWN_CODE = 5;
/** `rtmctl wait`: the condition did not hold within --timeout. */
export const EXIT_WAIT_TIMEOUT = 6;
/** Ctrl-C while waiting (128 + SIGINT, as shells report it); --follow and --watch end with 0 instead. */
export const EXIT_INTERRUPTED = 130;

export const EXIT_BY_CODE: Record<ErrorCode, number> = {
  invalid_request: 10,
  not_found: 11,
  conflict: 12,
  service_unavailable: 13,
  internal_error: 14,
  image_pull_failed: 15,
  image_ref_not_semver: 16,
  semver_patch_only: 17,
  container_start_failed: 18,
  start_config_invalid: 19,
  docker_unavailable: 20,
  // A replay is a success: the runtime already is what was asked.
  replay_no_op: 0,
};

export function exitCodeFor(code: string, httpStatus?: number): number {
  if (httpStatus === 401) return EXIT_UNAUTHORIZED;
  return (ERROR_CODES as readonly string[]).includes(code) ? EXIT_BY_CODE[code as ErrorCode] : EXIT_UNKNOWN_CODE;
}

/** The table `rtmctl --help` prints and docs/operations.md repeats. */
export function exitCodeTable(): [number, string][] {
  return [
    [EXIT_OK, "success (a replay that changed nothing included)"],
    [EXIT_UNEXPECTED, "unexpected failure"],
    [EXIT_USAGE, "usage error: bad verb, flag or argument"],
    [EXIT_UNREACHABLE, "server unreachable or request timed out"],
    [EXIT_UNAUTHORIZED, "unauthorized: missing or wrong token"],
    [EXIT_UNKNOWN_CODE, "the server answered an error code rtmctl does not know"],
    [EXIT_WAIT_TIMEOUT, "wait: the condition did not hold within --timeout"],
    ...ERROR_CODES.filter((c) => EXIT_BY_CODE[c] !== 0).map((c): [number, string] => [EXIT_BY_CODE[c], c]),
    [EXIT_INTERRUPTED, "interrupted (Ctrl-C) while waiting"],
  ];
}
