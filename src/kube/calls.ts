/**
 * Every API call of an engine runtime on Kubernetes goes through here: one
 * reading of its failures as RuntimeFailure kinds. Its deadline is the
 * client's (kubeClient, client.ts): the request itself is aborted at
 * RTMANAGER_KUBE_REQUEST_TIMEOUT, so a wedged API server neither hangs the
 * loop nor keeps a connection open behind a timer that gave up on it.
 */
import { Observable, type ConfigurationOptions, type RequestContext, type ResponseContext } from "@kubernetes/client-node";
import { abortReason, raceAbort, throwIfAborted } from "../model/abort.js";
import { RuntimeFailure, type RuntimeCallOutcome, type RuntimeFailureKind } from "../model/runtimeFailure.js";
import { apiMessageOf, httpStatusOf } from "./api.js";
import type { BoundedKubeConfig } from "./client.js";

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

/** One report per API call, for rtmanager_runtime_api_calls_total and its latency histogram. */
export type OnKubeCall = (operation: string, outcome: RuntimeCallOutcome, seconds: number) => void;

/**
 * A definite answer the caller expects and handles (the object is already
 * gone, or changed under a write) is not the API failing, as DockerCalls'
 * `tolerate` does for Docker's 404s: it counts as "ok".
 */
const ANSWERED: ReadonlySet<RuntimeFailureKind> = new Set(["not_found", "conflict"]);

/** What bounds the waits measured in request timeouts when requests have none (RTMANAGER_KUBE_REQUEST_TIMEOUT=0). */
const WAIT_WITHOUT_REQUEST_TIMEOUT_MS = 30_000;

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
  /**
   * The client's request timeout, which also bounds the waits on the watch
   * that stand in for one request (a Pod gone, the cache's first lists).
   */
  readonly timeoutMs: number;

  constructor(
    kubeConfig: BoundedKubeConfig,
    private readonly onCall?: OnKubeCall,
  ) {
    this.timeoutMs = kubeConfig.requestTimeoutMs > 0 ? kubeConfig.requestTimeoutMs : WAIT_WITHOUT_REQUEST_TIMEOUT_MS;
  }

  /**
   * One API call. `signal` (a reconcile's: lost leadership, shutdown) aborts
   * the HTTP request (`work` gets the request options that carry it) and the
   * call rejects with the AbortedError, never a RuntimeFailure.
   */
  async run<T>(operation: string, what: string, work: (options: ConfigurationOptions | undefined) => Promise<T>, details: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
    throwIfAborted(signal);
    const started = performance.now();
    try {
      const result = await raceAbort(work(abortOptions(signal, this.timeoutMs)), signal);
      this.report(operation, "ok", started);
      return result;
    } catch (err) {
      if (signal?.aborted) {
        // Cut short by the caller (lost leadership, shutdown): no verdict on the API server.
        this.report(operation, "aborted", started);
        throw abortReason(signal);
      }
      const failure = asFailure(err, operation, what, details);
      this.report(operation, ANSWERED.has(failure.kind) ? "ok" : "error", started);
      throw failure;
    }
  }

  private report(operation: string, outcome: RuntimeCallOutcome, started: number): void {
    // A metrics hook never changes what the call returns.
    try {
      this.onCall?.(operation, outcome, (performance.now() - started) / 1000);
    } catch {
      // ignored: see above
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
