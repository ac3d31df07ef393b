import { StringDecoder } from "node:string_decoder";
import { mapLimit } from "../model/mapLimit.js";
import Dockerode from "dockerode";
import { RtmError, type ErrorCode } from "../model/errors.js";
import type {
  ContainerSpec,
  DockerEvent,
  DockerEventHandlers,
  DockerPort,
  ObservedContainer,
} from "../model/ports.js";
import { ENGINE_PORT, GAME_STATE_PATH, LABELS, labelFilters, observedFromInspect, ownedBy, specLabels, observedFromSummary } from "./labels.js";

/** The subset of a pino logger the adapter uses; a pino Logger satisfies it. */
export interface AdapterLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type DockerCallOutcome = "ok" | "error";

export interface DockerAdapterOptions {
  /** Defaults to `new Dockerode()`: DOCKER_HOST, else /var/run/docker.sock. */
  docker?: Dockerode;
  /** This installation's id; only containers labelled with it are ever listed or watched. */
  instance: string;
  logger?: AdapterLogger;
  /** Called once per Docker API call; metrics plug in here. */
  onCall?(operation: string, outcome: DockerCallOutcome, seconds: number): void;
  /**
   * Upper bound of one API call (stop adds its own grace period). A wedged
   * dockerd would otherwise hang the reconcile loop forever. Default 30 s.
   */
  callTimeoutMs?: number;
  /** Upper bound of a whole image pull. Default 10 min. */
  pullTimeoutMs?: number;
  /** Event stream reconnect backoff: first delay and cap. Defaults 200 ms and 10 s. */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

const WATCHED_ACTIONS: readonly DockerEvent["action"][] = ["create", "start", "die", "oom", "destroy", "stop", "kill"];

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

class CallTimeoutError extends Error {
  override readonly name = "CallTimeoutError";
}

function asApiError(err: unknown): DockerApiError {
  return err instanceof Error ? (err as DockerApiError) : new Error(String(err));
}

function statusOf(err: unknown): number | undefined {
  return asApiError(err).statusCode;
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

function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

/** Reads newline-delimited JSON, tolerating chunks that split or join lines. */
function readJsonLines(
  stream: NodeJS.ReadableStream,
  onObject: (obj: unknown) => void,
  onBadLine: (line: string, err: unknown) => void,
): void {
  const decoder = new StringDecoder("utf8");
  let buffered = "";
  stream.on("data", (chunk: Buffer | string) => {
    buffered += typeof chunk === "string" ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        // A garbled line must not throw out of a 'data' listener: that would crash the process.
        onBadLine(line, err);
        continue;
      }
      onObject(obj);
    }
  });
}

function destroyStream(stream: NodeJS.ReadableStream): void {
  const s = stream as NodeJS.ReadableStream & { destroy?: (err?: Error) => void };
  s.destroy?.();
}

/** Docker's log framing: 8-byte header (stream type, 3 zero bytes, big-endian length), then the payload. */
export function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const type = buf[offset];
    const length = buf.readUInt32BE(offset + 4);
    if ((type !== 0 && type !== 1 && type !== 2) || buf[offset + 1] !== 0 || buf[offset + 2] !== 0 || buf[offset + 3] !== 0) {
      // Not framed (a TTY container): the rest is raw output.
      parts.push(buf.subarray(offset));
      offset = buf.length;
      break;
    }
    parts.push(buf.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  if (offset < buf.length) parts.push(buf.subarray(offset));
  return Buffer.concat(parts).toString("utf8");
}

interface EventMessage {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export class DockerAdapter implements DockerPort {
  private readonly docker: Dockerode;
  private readonly instance: string;
  private readonly logger: AdapterLogger | undefined;
  private readonly onCall: DockerAdapterOptions["onCall"];
  private readonly callTimeoutMs: number;
  private readonly pullTimeoutMs: number;
  private readonly reconnectBaseMs: number;
  private readonly reconnectMaxMs: number;

  constructor(options: DockerAdapterOptions) {
    if (!options.instance) throw new Error("DockerAdapter needs a non-empty instance id");
    this.docker = options.docker ?? new Dockerode();
    this.instance = options.instance;
    this.logger = options.logger;
    this.onCall = options.onCall;
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
    this.pullTimeoutMs = options.pullTimeoutMs ?? 10 * 60_000;
    this.reconnectBaseMs = options.reconnectBaseMs ?? 200;
    this.reconnectMaxMs = options.reconnectMaxMs ?? 10_000;
  }

  // ------------------------------------------------------------ plumbing

  /**
   * Runs one API call with a deadline and reports it to `onCall`. Errors the
   * caller treats as success (404 on remove...) count as "ok" via `tolerate`.
   */
  private async call<T>(
    operation: string,
    fn: (signal: AbortSignal) => Promise<T>,
    opts: { timeoutMs?: number; tolerate?: (err: unknown) => boolean } = {},
  ): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.callTimeoutMs;
    const started = performance.now();
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // Not every dockerode call honours the signal, so the race is what bounds the wait.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new CallTimeoutError(`Docker did not answer ${operation} within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      const result = await Promise.race([fn(abort.signal), deadline]);
      this.report(operation, "ok", started);
      return result;
    } catch (err) {
      this.report(operation, opts.tolerate?.(err) ? "ok" : "error", started);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private report(operation: string, outcome: DockerCallOutcome, started: number): void {
    if (!this.onCall) return;
    try {
      this.onCall(operation, outcome, (performance.now() - started) / 1000);
    } catch (err) {
      this.logger?.warn({ err, operation }, "docker onCall hook threw");
    }
  }

  /** docker_unavailable when nobody answered, else `code` with Docker's message. */
  private fail(operation: string, err: unknown, code: ErrorCode, what: string, details: Record<string, unknown> = {}): RtmError {
    if (err instanceof RtmError) return err;
    if (isUnreachable(err)) {
      return new RtmError(
        "docker_unavailable",
        `Docker engine unreachable (${operation}): ${asApiError(err).message}`,
        { operation, ...details },
        { cause: err },
      );
    }
    const status = statusOf(err);
    return new RtmError(code, `${what}: ${dockerMessage(err)}`, { operation, status: status ?? null, ...details }, { cause: err });
  }

  // ------------------------------------------------------------ engine

  async ping(): Promise<void> {
    try {
      await this.call("ping", () => this.docker.ping());
    } catch (err) {
      // Any failure of _ping, even an HTTP error, means the engine cannot be used.
      throw new RtmError("docker_unavailable", `Docker engine unreachable (ping): ${dockerMessage(err)}`, { operation: "ping" }, { cause: err });
    }
  }

  async networkExists(name: string): Promise<boolean> {
    try {
      const info = await this.call("network_inspect", () => this.docker.getNetwork(name).inspect(), { tolerate: isNotFound });
      // Docker also resolves a network by ID prefix; only an exact match counts.
      const net = info as { Name?: string; Id?: string };
      return net.Name === name || net.Id === name;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.fail("network_inspect", err, "internal_error", `inspect of network ${name} failed`);
    }
  }

  // ------------------------------------------------------------ containers

  listManaged(options: { inspect?: boolean } = {}): Promise<ObservedContainer[]> {
    return this.list(labelFilters(this.instance), options.inspect ?? true);
  }

  listForGame(gameId: string): Promise<ObservedContainer[]> {
    return this.list(labelFilters(this.instance, gameId));
  }

  /**
   * One list, then one inspect per container: exit code, OOM, start/finish
   * times and the host port exist only in inspect.
   */
  private async list(label: string[], inspect = true): Promise<ObservedContainer[]> {
    let summaries: Dockerode.ContainerInfo[];
    try {
      summaries = await this.call("list", (signal) => this.docker.listContainers({ all: true, filters: { label }, abortSignal: signal }));
    } catch (err) {
      throw this.fail("list", err, "internal_error", "listing containers failed");
    }
    const ours = summaries.filter((s) => ownedBy(s.Labels, this.instance));
    if (!inspect) return ours.map((s) => observedFromSummary(s, this.instance)).filter((o): o is ObservedContainer => o !== null);
    const observed = await mapLimit(ours, 8, (s) => this.inspect(s.Id));
    return observed.filter((o): o is ObservedContainer => o !== null);
  }

  /** Null when the container vanished between list and inspect, or is not ours. */
  private async inspect(id: string): Promise<ObservedContainer | null> {
    try {
      const info = await this.call("inspect", (signal) => this.docker.getContainer(id).inspect({ abortSignal: signal }), {
        tolerate: isNotFound,
      });
      return observedFromInspect(info, this.instance);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.fail("inspect", err, "internal_error", `inspect of container ${id} failed`);
    }
  }

  async create(spec: ContainerSpec): Promise<string> {
    const env: Record<string, string> = { ...spec.env, GAME_STATE_PATH, GAME_ID: spec.gameId };
    const { nanoCpus, memoryBytes, pidsLimit } = spec.resources;
    const hostConfig: Dockerode.HostConfig = {
      Binds: [`${spec.statePath}:${GAME_STATE_PATH}`],
      NetworkMode: spec.network,
      // The controller owns restarts (policy, backoff, operation log); Docker restarting behind its back would race it.
      RestartPolicy: { Name: "no" },
      NanoCpus: nanoCpus > 0 ? nanoCpus : undefined,
      Memory: memoryBytes > 0 ? memoryBytes : undefined,
      // Equal to Memory means no swap on top, so the memory limit is the real ceiling.
      MemorySwap: memoryBytes > 0 ? memoryBytes : undefined,
      PidsLimit: pidsLimit > 0 ? pidsLimit : undefined,
    };
    if (spec.publishHost) {
      // Empty HostPort: Docker picks a free port; listManaged reports it.
      hostConfig.PortBindings = { [ENGINE_PORT]: [{ HostIp: spec.publishHost, HostPort: "" }] };
    }
    const options: Dockerode.ContainerCreateOptions = {
      name: spec.name,
      Image: spec.imageRef,
      Labels: specLabels(spec, this.instance),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ExposedPorts: { [ENGINE_PORT]: {} },
      HostConfig: hostConfig,
      NetworkingConfig: { EndpointsConfig: { [spec.network]: { Aliases: [spec.name] } } },
    };
    try {
      const container = await this.call("create", (signal) => this.docker.createContainer({ ...options, abortSignal: signal }));
      return container.id;
    } catch (err) {
      throw this.createError(err, spec);
    }
  }

  private createError(err: unknown, spec: ContainerSpec): RtmError {
    const details = { gameId: spec.gameId, containerName: spec.name, imageRef: spec.imageRef };
    const status = statusOf(err);
    const message = dockerMessage(err);
    if (status === 409) {
      const existing = /by container "([0-9a-f]+)"/.exec(message)?.[1];
      return new RtmError(
        "conflict",
        `container name ${spec.name} is already in use: ${message}`,
        { ...details, ...(existing ? { existingContainerId: existing } : {}) },
        { cause: err },
      );
    }
    if (status === 404 && /no such image/i.test(message)) {
      // The controller pulls before creating, so a missing image here means the pull did not take.
      return new RtmError("image_pull_failed", `image ${spec.imageRef} is not present: ${message}`, details, { cause: err });
    }
    // 400 (bad config) and 404 (e.g. the network is missing) will fail the same way until the inputs change.
    if (status === 400 || status === 404) {
      return new RtmError("start_config_invalid", `Docker refused the container config: ${message}`, { ...details, status }, { cause: err });
    }
    return this.fail("create", err, "internal_error", `creating container ${spec.name} failed`, details);
  }

  async start(id: string): Promise<void> {
    try {
      await this.call("start", (signal) => this.docker.getContainer(id).start({ abortSignal: signal }), {
        tolerate: (err) => statusOf(err) === 304,
      });
    } catch (err) {
      if (statusOf(err) === 304) return; // already running
      throw this.fail("start", err, "container_start_failed", `starting container ${id} failed`, { containerId: id });
    }
  }

  async stop(id: string, timeoutSeconds: number): Promise<void> {
    const tolerated = (err: unknown) => statusOf(err) === 304 || statusOf(err) === 404;
    try {
      await this.call("stop", (signal) => this.docker.getContainer(id).stop({ t: timeoutSeconds, abortSignal: signal }), {
        timeoutMs: this.callTimeoutMs + timeoutSeconds * 1000,
        tolerate: tolerated,
      });
    } catch (err) {
      if (tolerated(err)) return;
      throw this.fail("stop", err, "internal_error", `stopping container ${id} failed`, { containerId: id });
    }
  }

  async remove(id: string): Promise<void> {
    const inProgress = (err: unknown) => statusOf(err) === 409 && /already in progress/i.test(dockerMessage(err));
    const tolerated = (err: unknown) => isNotFound(err) || inProgress(err);
    try {
      await this.call("remove", (signal) => this.docker.getContainer(id).remove({ force: true, v: true, abortSignal: signal }), {
        tolerate: tolerated,
      });
    } catch (err) {
      if (isNotFound(err)) return;
      if (inProgress(err)) {
        // Someone else is removing it; wait so a create with the same name right after does not conflict.
        await this.waitGone(id);
        return;
      }
      throw this.fail("remove", err, "internal_error", `removing container ${id} failed`, { containerId: id });
    }
  }

  private async waitGone(id: string): Promise<void> {
    const deadline = Date.now() + this.callTimeoutMs;
    while (Date.now() < deadline) {
      try {
        await this.call("inspect", (signal) => this.docker.getContainer(id).inspect({ abortSignal: signal }), { tolerate: isNotFound });
      } catch (err) {
        if (isNotFound(err)) return;
        throw this.fail("inspect", err, "internal_error", `inspect of container ${id} failed`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.logger?.warn({ containerId: id }, "container still present after a removal in progress; continuing");
  }

  async logs(id: string, tail: number): Promise<string> {
    try {
      const out: unknown = await this.call("logs", (signal) =>
        this.docker.getContainer(id).logs({ stdout: true, stderr: true, tail, follow: false, abortSignal: signal }),
      );
      // docker-modem hands back parsed JSON when the whole body happens to parse as JSON.
      if (Buffer.isBuffer(out)) return demuxLogs(out);
      return typeof out === "string" ? out : JSON.stringify(out);
    } catch (err) {
      if (isNotFound(err)) throw new RtmError("not_found", `no container ${id}`, { containerId: id }, { cause: err });
      throw this.fail("logs", err, "internal_error", `reading logs of ${id} failed`, { containerId: id });
    }
  }

  // ------------------------------------------------------------ images

  async imagePresent(ref: string): Promise<boolean> {
    try {
      await this.call("image_inspect", () => this.docker.getImage(ref).inspect(), { tolerate: isNotFound });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw this.fail("image_inspect", err, "internal_error", `inspect of image ${ref} failed`, { imageRef: ref });
    }
  }

  async imageLabels(ref: string): Promise<Record<string, string>> {
    try {
      const info = await this.call("image_inspect", () => this.docker.getImage(ref).inspect(), { tolerate: isNotFound });
      return { ...(info.Config?.Labels ?? {}) };
    } catch (err) {
      if (isNotFound(err)) {
        throw new RtmError("image_pull_failed", `image ${ref} is not present`, { imageRef: ref }, { cause: err });
      }
      throw this.fail("image_inspect", err, "internal_error", `inspect of image ${ref} failed`, { imageRef: ref });
    }
  }

  async pull(ref: string): Promise<void> {
    try {
      await this.call(
        "pull",
        async (signal) => {
          const stream = await this.docker.pull(ref, { abortSignal: signal });
          signal.addEventListener("abort", () => destroyStream(stream), { once: true });
          await this.followPull(ref, stream);
        },
        { timeoutMs: this.pullTimeoutMs },
      );
    } catch (err) {
      if (err instanceof CallTimeoutError) {
        // A slow registry, not a dead engine: the pull itself failed.
        throw new RtmError("image_pull_failed", `pull of ${ref} failed: ${err.message}`, { imageRef: ref }, { cause: err });
      }
      throw this.fail("pull", err, "image_pull_failed", `pull of ${ref} failed`, { imageRef: ref });
    }
  }

  /** Resolves when the progress stream ends; Docker reports a failed pull inside the stream, with HTTP 200. */
  private followPull(ref: string, stream: NodeJS.ReadableStream): Promise<void> {
    return new Promise((resolve, reject) => {
      let failure: string | null = null;
      let settled = false;
      const settle = (err: Error | null) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else if (failure !== null) reject(new RtmError("image_pull_failed", `pull of ${ref} failed: ${failure}`, { imageRef: ref }));
        else resolve();
      };
      readJsonLines(
        stream,
        (obj) => {
          if (obj && typeof obj === "object") {
            const o = obj as { error?: unknown; errorDetail?: { message?: unknown } };
            const msg = o.errorDetail?.message ?? o.error;
            if (typeof msg === "string" && failure === null) failure = msg;
          }
        },
        (line) => this.logger?.debug({ line, ref }, "unparseable pull progress line"),
      );
      let ended = false;
      stream.on("end", () => {
        ended = true;
        settle(null);
      });
      // A close without end is a cut connection: the image may be half pulled.
      stream.on("close", () => {
        if (!ended) settle(Object.assign(new Error("pull stream closed before completion"), { code: "ECONNRESET" }));
      });
      stream.on("error", (err: Error) => settle(err));
    });
  }

  // ------------------------------------------------------------ events

  /**
   * Streams this installation's container events until the returned function
   * is called. A broken stream is reported once (onDisconnect), retried with
   * capped, jittered exponential backoff, and onReconnect fires when a new
   * stream is up, so the controller can re-list what it may have missed.
   */
  watchEvents(handlers: DockerEventHandlers): () => void {
    let stopped = false;
    let attempt = 0;
    let broken = false;
    let retryTimer: NodeJS.Timeout | undefined;
    let current: { stream: NodeJS.ReadableStream | null; abort: AbortController } | null = null;
    // Replaying from the moment of the call closes the gap between the
    // caller's initial listing and the stream actually being connected.
    let since: number | undefined = Date.now() / 1000;

    const markBroken = (err: Error) => {
      if (stopped) return;
      if (!broken) {
        broken = true;
        this.logger?.warn({ err: err.message }, "docker event stream broken; reconnecting");
        safely("onDisconnect", () => handlers.onDisconnect(err));
      }
      scheduleRetry();
    };

    const safely = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (err) {
        this.logger?.error({ err, handler: what }, "docker event handler threw");
      }
    };

    const scheduleRetry = () => {
      if (stopped || retryTimer) return;
      const exp = Math.min(this.reconnectMaxMs, this.reconnectBaseMs * 2 ** attempt);
      attempt++;
      // Full jitter on the upper half: spread retries without ever going below half the step.
      const delay = exp / 2 + Math.random() * (exp / 2);
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        void connect();
      }, delay);
    };

    const connect = async () => {
      if (stopped) return;
      const abort = new AbortController();
      current = { stream: null, abort };
      let stream: NodeJS.ReadableStream;
      const started = performance.now();
      try {
        stream = await this.docker.getEvents({
          ...(since !== undefined ? { since } : {}),
          filters: { type: ["container"], label: labelFilters(this.instance), event: [...WATCHED_ACTIONS] },
          abortSignal: abort.signal,
        });
        this.report("events_connect", "ok", started);
      } catch (err) {
        this.report("events_connect", "error", started);
        if (stopped) return;
        this.logger?.debug({ err: asApiError(err).message, attempt }, "docker event stream connect failed");
        markBroken(asApiError(err));
        return;
      }
      if (stopped) {
        destroyStream(stream);
        return;
      }
      since = undefined;
      current = { stream, abort };
      const connectedAt = Date.now();
      if (broken) {
        broken = false;
        this.logger?.info({}, "docker event stream re-established");
        safely("onReconnect", () => handlers.onReconnect());
      }

      readJsonLines(
        stream,
        (obj) => {
          const event = this.parseEvent(obj);
          if (event) safely("onEvent", () => handlers.onEvent(event));
        },
        (line) => this.logger?.warn({ line }, "unparseable docker event"),
      );
      let ended = false;
      const onEnd = (err?: Error) => {
        if (ended) return;
        ended = true;
        // A stream that stayed up a while was healthy: start the backoff afresh.
        if (Date.now() - connectedAt > this.reconnectMaxMs) attempt = 0;
        markBroken(err ?? new Error("Docker event stream ended"));
      };
      stream.on("end", () => onEnd());
      stream.on("close", () => onEnd());
      stream.on("error", (err: Error) => onEnd(err));
    };

    void connect();

    return () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(retryTimer);
      if (current) {
        current.abort.abort();
        if (current.stream) destroyStream(current.stream);
        current = null;
      }
    };
  }

  private parseEvent(raw: unknown): DockerEvent | null {
    if (!raw || typeof raw !== "object") return null;
    const msg = raw as EventMessage;
    if (msg.Type !== undefined && msg.Type !== "container") return null;
    const action = (msg.Action ?? msg.status ?? "") as DockerEvent["action"];
    if (!WATCHED_ACTIONS.includes(action)) return null;
    const attrs = msg.Actor?.Attributes ?? {};
    // The daemon already filtered by label; checking again keeps another installation's events out for sure.
    if (!ownedBy(attrs, this.instance)) return null;
    const containerId = msg.Actor?.ID ?? msg.id;
    if (!containerId) return null;
    const code = attrs.exitCode !== undefined ? Number(attrs.exitCode) : NaN;
    return {
      gameId: attrs[LABELS.gameId] as string,
      containerId,
      action,
      exitCode: Number.isInteger(code) ? code : null,
    };
  }
}
