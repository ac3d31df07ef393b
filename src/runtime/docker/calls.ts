/**
 * Every Docker API call goes through here: a deadline (a wedged dockerd must
 * not hang the loop), one report per call for the metrics, and the reading of
 * Docker's errors into RuntimeFailures.
 */
import type Dockerode from "dockerode";
import { abortReason, isAborted, raceAbort, throwIfAborted, type AbortedError } from "../../model/abort.js";
import { RuntimeFailure, type RuntimeCallOutcome, type RuntimeFailureKind } from "../../model/runtimeFailure.js";

/** The subset of a pino logger the adapter uses; a pino Logger satisfies it. */
export interface AdapterLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type DockerCallOutcome = RuntimeCallOutcome;
export type OnDockerCall = (operation: string, outcome: DockerCallOutcome, seconds: number) => void;

/** What the adapter's parts share. */
export interface DockerContext {
  docker: Dockerode;
  /** This installation's id; only containers labelled with it are ever listed or watched. */
  instance: string;
  logger: AdapterLogger | undefined;
  calls: DockerCalls;
}

/** Errors meaning "nobody answered", as opposed to "the engine said no". */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "EPIPE",
  "ECONNRESET",
  "EACCES",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ERR_SOCKET_CLOSED",
]);

/** What docker-modem puts on the errors it rejects with. */
interface DockerApiError extends Error {
  statusCode?: number;
  code?: string;
  json?: unknown;
}

export class CallTimeoutError extends Error {
  override readonly name = "CallTimeoutError";
}

export function asApiError(err: unknown): DockerApiError {
  return err instanceof Error ? (err as DockerApiError) : new Error(String(err));
}

export function statusOf(err: unknown): number | undefined {
  return asApiError(err).statusCode;
}

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** Docker's own words: the JSON body's message, without docker-modem's "(HTTP code N) ..." prefix. */
export function dockerMessage(err: unknown): string {
  const e = asApiError(err);
  const json = e.json;
  if (json && typeof json === "object" && "message" in json && typeof json.message === "string") return json.message;
  if (Buffer.isBuffer(json) && json.length > 0) return json.toString("utf8").trim();
  return e.message.replace(/^\(HTTP code \d+\) [^-]*- /, "").trim();
}

export function isUnreachable(err: unknown): boolean {
  if (err instanceof CallTimeoutError) return true;
  const e = asApiError(err);
  if (e.statusCode !== undefined) return false;
  if (e.code && UNREACHABLE_CODES.has(e.code)) return true;
  return e.name === "AbortError" || /socket hang up|ECONNREFUSED|ECONNRESET|EPIPE/i.test(e.message);
}

/**
 * `unavailable` when nobody answered, else `kind` with Docker's message. A
 * RuntimeFailure already made further down, and a call the caller's signal
 * aborted (no failure of Docker's), pass through unchanged.
 */
export function failure(
  operation: string,
  err: unknown,
  kind: RuntimeFailureKind,
  what: string,
  details: Record<string, unknown> = {},
): RuntimeFailure | AbortedError {
  if (err instanceof RuntimeFailure || isAborted(err)) return err;
  if (isUnreachable(err)) {
    return new RuntimeFailure("unavailable", operation, `Docker engine unreachable (${operation}): ${asApiError(err).message}`, details, { cause: err });
  }
  const status = statusOf(err);
  return new RuntimeFailure(kind, operation, `${what}: ${dockerMessage(err)}`, { status: status ?? null, ...details }, { cause: err });
}

export class DockerCalls {
  constructor(
    private readonly callTimeoutMs: number,
    private readonly onCall: OnDockerCall | undefined,
    private readonly logger: AdapterLogger | undefined,
  ) {}

  get timeoutMs(): number {
    return this.callTimeoutMs;
  }

  /**
   * Runs one API call with a deadline and reports it to `onCall`. Errors the
   * caller treats as success (404 on remove...) count as "ok" via `tolerate`.
   * The caller's `signal` (a reconcile's: lost leadership, shutdown) aborts
   * the HTTP request as the deadline does (docker-modem takes `abortSignal`
   * and destroys the request), and the call rejects with an AbortedError.
   */
  async run<T>(
    operation: string,
    fn: (signal: AbortSignal) => Promise<T>,
    opts: { timeoutMs?: number; tolerate?: (err: unknown) => boolean; signal?: AbortSignal } = {},
  ): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    const caller = opts.signal;
    throwIfAborted(caller);
    const started = performance.now();
    const abort = new AbortController();
    const onCallerAbort = () => abort.abort(caller?.reason);
    caller?.addEventListener("abort", onCallerAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    // Not every dockerode call honours the signal, so the race is what bounds the wait.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new CallTimeoutError(`Docker did not answer ${operation} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const result = await raceAbort(Promise.race([fn(abort.signal), deadline]), caller);
      this.report(operation, "ok", started);
      return result;
    } catch (err) {
      // Cut short by the caller (lost leadership, shutdown): no verdict on Docker, so neither ok nor error.
      this.report(operation, caller?.aborted ? "aborted" : opts.tolerate?.(err) ? "ok" : "error", started);
      // Docker's answer to a request we cut short (docker-modem's own AbortError) is no answer of Docker's.
      throw caller?.aborted ? abortReason(caller) : err;
    } finally {
      clearTimeout(timer);
      caller?.removeEventListener("abort", onCallerAbort);
    }
  }

  report(operation: string, outcome: DockerCallOutcome, started: number): void {
    if (!this.onCall) return;
    try {
      this.onCall(operation, outcome, (performance.now() - started) / 1000);
    } catch (err) {
      this.logger?.warn({ err, operation }, "docker onCall hook threw");
    }
  }
}
