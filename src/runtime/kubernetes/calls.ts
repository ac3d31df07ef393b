/**
 * Every API call of the Pod runtime goes through here: a deadline (a wedged
 * API server must not hang the loop) and one reading of its failures as
 * RuntimeFailure kinds.
 */
import { Observable, type ConfigurationOptions, type RequestContext, type ResponseContext } from "@kubernetes/client-node";
import { apiMessageOf, httpStatusOf } from "../../crd/api.js";
import { abortReason, raceAbort, throwIfAborted } from "../../model/abort.js";
import { RuntimeFailure, type RuntimeFailureKind } from "../../model/runtimeFailure.js";
import { withTimeout } from "../../model/timeout.js";

export interface KubeCallLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/**
 * A 403 that admission gives for now, not for this config: the ResourceQuota
 * admission's "exceeded quota" (and "status unknown for quota"), and the
 * NamespaceLifecycle admission's "because it is being terminated". The same
 * create succeeds once quota frees up or the namespace is back.
 */
const TRANSIENT_FORBIDDEN = /exceeded quota|status unknown for quota|because it is being terminated/;

export function failureKind(status: number | null, operation: string, message = ""): RuntimeFailureKind {
  if (status === 429) return "refused_for_now";
  if (status === null || status >= 500) return "unavailable";
  if (status === 403 && TRANSIENT_FORBIDDEN.test(message)) return "refused_for_now";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  // 400/422 (invalid) and 403 on a create (PodSecurity admission, a quota) refuse this config; elsewhere 403 is RBAC.
  if (status === 400 || status === 422 || (status === 403 && operation === "create")) return "config_refused";
  return "failed";
}

/**
 * Request options that abort the HTTP request when `signal` fires or after
 * `timeoutMs`. client-node 1.4 hands `RequestContext.getSignal()` to
 * node-fetch; a per-call middleware runs after BoundedKubeConfig set its
 * timeout signal and replaces it, so the timeout is combined in here.
 */
export function abortOptions(signal: AbortSignal | undefined, timeoutMs: number, opt?: ConfigurationOptions): ConfigurationOptions | undefined {
  if (!signal) return opt;
  const middleware = {
    pre: (context: RequestContext) => {
      const both = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
      // node-fetch's AbortSignal type is structural; the platform's works.
      context.setSignal(both as Parameters<RequestContext["setSignal"]>[0]);
      return new Observable(Promise.resolve(context));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { ...opt, middleware: [...(opt?.middleware ?? []), middleware], middlewareMergeStrategy: "append" };
}

export class KubeCalls {
  constructor(readonly timeoutMs: number) {}

  /**
   * One API call with a deadline. `signal` (a reconcile's: lost leadership,
   * shutdown) aborts the HTTP request (`work` gets the request options that
   * carry it) and the call rejects with the AbortedError, never a RuntimeFailure.
   */
  async run<T>(operation: string, what: string, work: (options: ConfigurationOptions | undefined) => Promise<T>, details: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
    throwIfAborted(signal);
    try {
      return await raceAbort(withTimeout(work(abortOptions(signal, this.timeoutMs)), this.timeoutMs, () => new Error(`no answer within ${this.timeoutMs} ms`)), signal);
    } catch (err) {
      if (signal?.aborted) throw abortReason(signal);
      throw asFailure(err, operation, what, details);
    }
  }
}

export function asFailure(err: unknown, operation: string, what: string, details: Record<string, unknown> = {}): RuntimeFailure {
  if (err instanceof RuntimeFailure) return err;
  const status = httpStatusOf(err);
  const message = apiMessageOf(err);
  const kind = failureKind(status, operation, message);
  const prefix =
    kind === "unavailable" ? `Kubernetes API ${status ? `answered ${status}` : "unreachable"}: ` : kind === "refused_for_now" ? `Kubernetes API refused for now (${status}; retried with backoff): ` : "";
  return new RuntimeFailure(kind, operation, `${prefix}${what}: ${message}`, { ...details, ...(status ? { status } : {}) }, { cause: err });
}

export const isStatus = (err: unknown, status: number): boolean =>
  httpStatusOf(err) === status || (err instanceof RuntimeFailure && err.details.status === status);
