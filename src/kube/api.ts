/**
 * Reading the failures of @kubernetes/client-node calls, for every module
 * that talks to the API server (the GameRuntime source and its writers, the
 * Lease, the Pod runtime): the HTTP status, and the message a person can act on.
 */
import { ApiException } from "@kubernetes/client-node";

/** The HTTP status of a failed API call (ApiException, or a watch error), if any. */
export function httpStatusOf(err: unknown): number | null {
  if (err instanceof ApiException) return err.code;
  if (typeof err === "object" && err !== null) {
    const e = err as { statusCode?: unknown; code?: unknown };
    if (typeof e.statusCode === "number") return e.statusCode;
    if (typeof e.code === "number") return e.code;
  }
  return null;
}

/** node-fetch rejects an aborted request with an AbortError that carries no reason. */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

/** The `message` of a Kubernetes Status body, or the error's own message. */
export function apiMessageOf(err: unknown): string {
  if (isAbortError(err)) return "request aborted: no answer within its timeout (RTMANAGER_KUBE_REQUEST_TIMEOUT or the caller's bound)";
  if (err instanceof ApiException) {
    const body: unknown = err.body;
    let parsed: unknown = body;
    if (typeof body === "string") {
      try {
        parsed = JSON.parse(body);
      } catch {
        return body || `HTTP ${err.code}`;
      }
    }
    if (typeof parsed === "object" && parsed !== null && typeof (parsed as { message?: unknown }).message === "string") {
      return (parsed as { message: string }).message;
    }
    return `HTTP ${err.code}`;
  }
  return err instanceof Error ? err.message : String(err);
}
