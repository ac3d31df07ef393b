/**
 * TypeScript client of the Runtime Manager REST API: the contract's
 * operations (the same calls Game Master's Go client makes) plus the
 * extension endpoints. Any non-2xx answer throws RtmApiError carrying the
 * envelope's code ("unknown" when the body has none, as the Go client does)
 * and the X-Op-Id the server answered with, so a failure can be found in the
 * server's logs and operation log.
 */
import type { Plan } from "../controller/planner.js";
import type { ContractRuntimeRecord } from "../model/record.js";
import type { StopReason } from "../model/status.js";
import { INTERNAL_RUNTIMES, VERBS, verbPath, type VerbBody, type VerbName } from "../model/verbs.js";
import type {
  AttentionReason,
  ExtOperationList,
  ExtQuarantine,
  ExtQuarantineList,
  ExtRuntimeList,
  ExtRuntimeSummary,
  ExtRuntimeView,
  ExtVersion,
  WireEvent,
} from "../http/wire.js";
import type { RuntimeStatus } from "../model/status.js";
import { parseEventStream, type StreamedEvent } from "./eventStream.js";

export type {
  AttentionReason,
  ContractRuntimeRecord,
  ExtOperationList,
  ExtQuarantine,
  ExtRuntimeSummary,
  ExtRuntimeView,
  ExtVersion,
  Plan,
  RuntimeStatus,
  StopReason,
  VerbBody,
  VerbName,
  WireEvent,
};
export { VERB_NAMES } from "../model/verbs.js";
export { ATTENTION_REASONS } from "../http/wire.js";
export { RUNTIME_STATUSES } from "../model/status.js";
export { parseEventStream, type StreamedEvent } from "./eventStream.js";

/** Filters of GET /api/v1/ext/runtimes, applied by the server. */
export interface RuntimeListQuery {
  /** Keep these record statuses; empty or absent keeps all. */
  statuses?: readonly RuntimeStatus[];
  /** Keep only games with an attention reason. */
  unhealthy?: boolean;
}
export type { EventDiagnostic, EventSnapshot, Wire } from "../http/wire.js";

export interface RtmClientOptions {
  /** Absolute base URL of the listener, e.g. http://rtmanager:8096. */
  baseUrl: string;
  /** Bound of one request (for events: until the stream's headers arrive). */
  timeoutMs: number;
  token?: string;
  /** Sent as X-Galaxy-Caller; recorded as op_source gm_rest or admin_rest. */
  caller?: "gm" | "admin";
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** Sent as X-Op-Id: the server adopts it for its logs and operation log. */
  opId?: string;
  signal?: AbortSignal;
}

export class RtmApiError extends Error {
  override readonly name = "RtmApiError";
  constructor(
    readonly status: number,
    /** The envelope's error code, or "unknown" when the body carried none. */
    readonly code: string,
    message: string,
    /** X-Op-Id of the failed request, when the server sent one. */
    readonly opId: string | null,
  ) {
    super(message);
  }
}

/** The request never got an HTTP answer: connection refused, reset, or the timeout. */
export class RtmTransportError extends Error {
  override readonly name = "RtmTransportError";
  constructor(
    message: string,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface EventsOptions {
  gameId?: string;
  /** Resume after this event seq (sent as Last-Event-ID). */
  cursor?: string | number;
  signal?: AbortSignal;
}

export interface LogStreamOptions extends CallOptions {
  /** Lines from the end of the stored output (server default 200, at most 10000). */
  tail?: number;
  /** Keep streaming new output. */
  follow?: boolean;
  /** Bytes to receive at most; without follow the server's ceiling also applies. */
  limitBytes?: number;
}

const INTERNAL = INTERNAL_RUNTIMES;
const EXT = "/api/v1/ext";

function decodeEnvelope(text: string): { code: string; message: string } | null {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && "error" in parsed) {
      const error = (parsed as { error: unknown }).error;
      if (error && typeof error === "object") {
        const { code, message } = error as { code?: unknown; message?: unknown };
        return { code: typeof code === "string" && code ? code : "unknown", message: typeof message === "string" ? message : "" };
      }
    }
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  return null;
}

export class RtmClient {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly token: string | undefined;
  private readonly caller: "gm" | "admin" | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(options: RtmClientOptions) {
    const raw = options.baseUrl?.trim() ?? "";
    if (!raw) throw new Error("rtm client: base url must not be empty");
    let url: URL;
    try {
      url = new URL(raw.replace(/\/+$/, ""));
    } catch {
      throw new Error(`rtm client: base url must be absolute, got ${JSON.stringify(raw)}`);
    }
    if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.host) {
      throw new Error(`rtm client: base url must be an absolute http(s) URL, got ${JSON.stringify(raw)}`);
    }
    if (!(options.timeoutMs > 0)) throw new Error("rtm client: request timeout must be positive");
    this.baseUrl = url.toString().replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs;
    this.token = options.token;
    this.caller = options.caller;
    this.fetchImpl = options.fetch ?? globalThis.fetch;
  }

  list(opts?: CallOptions): Promise<ContractRuntimeRecord[]> {
    return this.json<{ items: ContractRuntimeRecord[] }>("GET", INTERNAL, undefined, opts).then((r) => r.items);
  }

  get(gameId: string, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.json("GET", `${INTERNAL}/${id(gameId)}`, undefined, opts);
  }

  start(gameId: string, imageRef: string, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.verb("start", gameId, { image_ref: imageRef }, opts);
  }

  stop(gameId: string, reason: StopReason, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.verb("stop", gameId, { reason }, opts);
  }

  restart(gameId: string, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.verb("restart", gameId, undefined, opts);
  }

  patch(gameId: string, imageRef: string, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.verb("patch", gameId, { image_ref: imageRef }, opts);
  }

  cleanup(gameId: string, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.verb("cleanup", gameId, undefined, opts);
  }

  /** Any lifecycle verb, by its row in the verb table (src/model/verbs.ts): its method, path and body. */
  verb<V extends VerbName>(verb: V, gameId: string, body: VerbBody<V>, opts?: CallOptions): Promise<ContractRuntimeRecord> {
    return this.json(VERBS[verb].method, verbPath(verb, id(gameId)), body, opts);
  }

  /** Every game as the on-call scans it (health, restarts, held, lost node, attention), sorted by id. */
  runtimes(query: RuntimeListQuery = {}, opts?: CallOptions): Promise<ExtRuntimeSummary[]> {
    const params = new URLSearchParams();
    if (query.statuses?.length) params.set("status", query.statuses.join(","));
    if (query.unhealthy) params.set("unhealthy", "true");
    const q = params.size ? `?${params.toString()}` : "";
    return this.json<ExtRuntimeList>("GET", `${EXT}/runtimes${q}`, undefined, opts).then((r) => r.items);
  }

  extRecord(gameId: string, opts?: CallOptions): Promise<ExtRuntimeView> {
    return this.json("GET", `${EXT}/runtimes/${id(gameId)}`, undefined, opts);
  }

  /** Newest first. */
  operations(gameId: string, limit?: number, opts?: CallOptions): Promise<ExtOperationList["items"]> {
    const q = limit !== undefined ? `?limit=${limit}` : "";
    return this.json<ExtOperationList>("GET", `${EXT}/runtimes/${id(gameId)}/operations${q}`, undefined, opts).then((r) => r.items);
  }

  plan(gameId: string, opts?: CallOptions): Promise<Plan> {
    return this.json("GET", `${EXT}/runtimes/${id(gameId)}/plan`, undefined, opts);
  }

  /** The engine's last `tail` lines as text, within the server's byte ceiling. */
  async logs(gameId: string, tail?: number, opts?: CallOptions): Promise<string> {
    const q = tail !== undefined ? `?tail=${tail}` : "";
    const res = await this.send("GET", `${EXT}/runtimes/${id(gameId)}/logs${q}`, undefined, opts, "text/plain");
    return res.text();
  }

  /** The server's version, commit and Node version. */
  version(opts?: CallOptions): Promise<ExtVersion> {
    return this.json("GET", `${EXT}/version`, undefined, opts);
  }

  /** Images quarantined now, oldest first. */
  quarantines(opts?: CallOptions): Promise<ExtQuarantine[]> {
    return this.json<ExtQuarantineList>("GET", `${EXT}/quarantines`, undefined, opts).then((r) => r.items);
  }

  /** Lifts the quarantine of `imageRef`; 404 not_found when it has none. */
  liftQuarantine(imageRef: string, opts?: CallOptions): Promise<ExtQuarantine> {
    return this.json("POST", `${EXT}/quarantines/lift`, { image_ref: imageRef }, opts);
  }

  /**
   * The engine's output as it arrives. With `follow` it goes on until the
   * engine stops, the server's bound ends it, or `signal` aborts (then the
   * iteration simply ends). The request timeout covers only the wait for the
   * answer's headers.
   */
  async *logStream(gameId: string, options: LogStreamOptions = {}): AsyncIterable<Uint8Array> {
    const params = new URLSearchParams();
    if (options.tail !== undefined) params.set("tail", String(options.tail));
    if (options.limitBytes !== undefined) params.set("limitBytes", String(options.limitBytes));
    if (options.follow) params.set("follow", "true");
    const q = params.size ? `?${params.toString()}` : "";
    const res = await this.send("GET", `${EXT}/runtimes/${id(gameId)}/logs${q}`, undefined, options, "text/plain", {}, false);
    if (!res.body) return;
    const reader = res.body.getReader();
    const onAbort = () => void reader.cancel().catch(() => undefined);
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (options.signal?.aborted) return;
          throw new RtmTransportError(`rtm GET logs of ${gameId}: the stream broke: ${(err as Error).message}`, false, { cause: err });
        }
        if (chunk.done) return;
        yield chunk.value;
      }
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
      await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  }

  /**
   * The event stream: a snapshot, the backlog after `cursor`, then live
   * events until `signal` aborts or the server ends the stream. No automatic
   * reconnect: resume by calling again with the last `id` seen.
   */
  async *events(options: EventsOptions = {}): AsyncIterable<StreamedEvent> {
    const params = new URLSearchParams();
    if (options.gameId) params.set("game_id", options.gameId);
    const q = params.size ? `?${params.toString()}` : "";
    const headers: Record<string, string> = {};
    if (options.cursor !== undefined) headers["last-event-id"] = String(options.cursor);
    const res = await this.send("GET", `${EXT}/events${q}`, undefined, { signal: options.signal }, "text/event-stream", headers, false);
    if (!res.body) return;
    yield* parseEventStream(res.body, options.signal);
  }

  private async json<T>(method: string, path: string, body: unknown, opts?: CallOptions): Promise<T> {
    const res = await this.send(method, path, body, opts, "application/json");
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new RtmTransportError(`rtm ${method} ${path}: answer ${res.status} is not JSON: ${JSON.stringify(text.slice(0, 100))}`, false, { cause: err });
    }
  }

  private headers(accept: string, hasBody: boolean, opts: CallOptions | undefined, extra: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { accept, ...extra };
    if (hasBody) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (this.caller) headers["x-galaxy-caller"] = this.caller;
    if (opts?.opId) headers["x-op-id"] = opts.opId;
    return headers;
  }

  /**
   * `timeoutWholeBody`: for ordinary calls the timeout covers reading the
   * answer too; for the event stream only until the headers arrive.
   */
  private async send(
    method: string,
    path: string,
    body: unknown,
    opts: CallOptions | undefined,
    accept: string,
    extraHeaders: Record<string, string> = {},
    timeoutWholeBody = true,
  ): Promise<Response> {
    const headers = this.headers(accept, body !== undefined, opts, extraHeaders);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new DOMException("request timed out", "TimeoutError")), this.timeoutMs);
    const signal = opts?.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (err) {
      clearTimeout(timer);
      if (opts?.signal?.aborted) throw err;
      const timedOut = timeout.signal.aborted;
      const why = timedOut ? `timed out after ${this.timeoutMs} ms` : (err as Error).message;
      throw new RtmTransportError(`rtm ${method} ${path}: ${why}`, timedOut, { cause: err });
    }
    if (!res.ok) {
      const text = await res.text().catch(() => "");
      clearTimeout(timer);
      throw apiErrorOf(res, text, `rtm ${method} ${path}`);
    }
    if (timeoutWholeBody) return this.buffered(res, `${method} ${path}`, opts, timeout.signal, timer);
    clearTimeout(timer);
    return res;
  }

  /** The whole answer read under the request's timer: the caller reads the body right after. */
  private async buffered(res: Response, what: string, opts: CallOptions | undefined, timeout: AbortSignal, timer: NodeJS.Timeout): Promise<Response> {
    let buffered: ArrayBuffer;
    try {
      buffered = await res.arrayBuffer();
    } catch (err) {
      if (opts?.signal?.aborted) throw err;
      const timedOut = timeout.aborted;
      const why = timedOut ? `timed out after ${this.timeoutMs} ms reading the answer` : `reading the answer failed: ${(err as Error).message}`;
      throw new RtmTransportError(`rtm ${what}: ${why}`, timedOut, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    return new Response(buffered, { status: res.status, headers: res.headers });
  }
}

/** A non-2xx answer as the error envelope's code and message (the status alone when the body is no envelope). */
function apiErrorOf(res: Response, text: string, call: string): RtmApiError {
  const decoded = decodeEnvelope(text);
  return new RtmApiError(res.status, decoded?.code ?? "unknown", decoded?.message || `${call}: unexpected status ${res.status}`, res.headers.get("x-op-id"));
}

function id(gameId: string): string {
  if (gameId.trim() === "") throw new Error("rtm client: game id must not be empty");
  return encodeURIComponent(gameId);
}
