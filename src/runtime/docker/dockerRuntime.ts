/**
 * The Docker implementation of RuntimePort, over dockerode. Its parts, one job
 * each: calls.ts (deadline, metrics, error reading), containers.ts
 * (lifecycle), images.ts (presence and pulls), events.ts (the event stream),
 * logs.ts, observed.ts (Docker's answers as ObservedContainer), labels.ts.
 */
import Dockerode from "dockerode";
import type {
  CallOptions,
  EngineEventHandlers,
  EngineSpec,
  ImagePullPolicy,
  LogStreamOptions,
  ObservedContainer,
  RuntimePort,
} from "../../model/ports.js";
import { IMPERATIVE_VERBS } from "../../model/ports.js";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import { defaultEngineHardening, type EngineHardening } from "../engineHardening.js";
import { DockerCalls, dockerMessage, failure, isNotFound, type AdapterLogger, type DockerContext, type OnDockerCall } from "./calls.js";
import { DockerContainers } from "./containers.js";
import { watchDockerEvents } from "./events.js";
import { DockerImages } from "./images.js";
import { ENGINE_PORT as ENGINE_HTTP_PORT } from "../../model/engine.js";
import { fsGroupProblem } from "./stateDir.js";
import { containerLogStream } from "./logs.js";

export type { AdapterLogger, DockerCallOutcome } from "./calls.js";

export interface DockerRuntimeOptions {
  /** Defaults to `new Dockerode()`: DOCKER_HOST, else /var/run/docker.sock. */
  docker?: Dockerode;
  /** This installation's id; only containers labelled with it are ever listed or watched. */
  instance: string;
  /** The Docker network every engine joins (RTMANAGER_DOCKER_NETWORK). */
  network: string;
  /** Publish each engine's 8080 on this host address and probe it there; null or absent: not published. */
  publishHost?: string | null;
  /** How engines are confined (RTMANAGER_ENGINE_*). Default: the settings' defaults, fsGroup = this process's group. */
  hardening?: EngineHardening;
  logger?: AdapterLogger;
  /** Called once per Docker API call; metrics plug in here. */
  onCall?: OnDockerCall;
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


/** Docker does nothing by itself: the controller pulls, creates, starts, restarts and replaces. */
export const DOCKER_VERBS = IMPERATIVE_VERBS;

export class DockerRuntime implements RuntimePort {
  readonly name = "docker";
  readonly verbs = DOCKER_VERBS;
  private readonly ctx: DockerContext;
  private readonly network: string;
  private readonly publishHost: string | null;
  private readonly containers: DockerContainers;
  private readonly images: DockerImages;
  private readonly reconnect: { baseMs: number; maxMs: number };

  constructor(options: DockerRuntimeOptions) {
    if (!options.instance) throw new Error("DockerRuntime needs a non-empty instance id");
    if (!options.network) throw new Error("DockerRuntime needs the engine network");
    this.ctx = {
      docker: options.docker ?? new Dockerode(),
      instance: options.instance,
      logger: options.logger,
      calls: new DockerCalls(options.callTimeoutMs ?? 30_000, options.onCall, options.logger),
    };
    this.network = options.network;
    this.publishHost = options.publishHost ?? null;
    const hardening = options.hardening ?? defaultEngineHardening();
    this.containers = new DockerContainers(this.ctx, { network: this.network, publishHost: this.publishHost, hardening });
    const problem = fsGroupProblem(hardening.fsGroup);
    if (problem) options.logger?.warn({ fsGroup: hardening.fsGroup }, problem);
    this.images = new DockerImages(this.ctx, options.pullTimeoutMs ?? 10 * 60_000);
    this.reconnect = { baseMs: options.reconnectBaseMs ?? 200, maxMs: options.reconnectMaxMs ?? 10_000 };
  }

  async ping(): Promise<void> {
    try {
      await this.ctx.calls.run("ping", () => this.ctx.docker.ping());
    } catch (err) {
      // Any failure of _ping, even an HTTP error, means the engine cannot be used.
      throw new RuntimeFailure("unavailable", "ping", `Docker engine unreachable (ping): ${dockerMessage(err)}`, {}, { cause: err });
    }
  }

  async setupProblem(): Promise<string | null> {
    if (await this.networkExists(this.network)) return null;
    // The module's ready() adds the fix (src/runtime/docker/module.ts).
    return `Docker network ${this.network} (RTMANAGER_DOCKER_NETWORK) does not exist`;
  }

  async networkExists(name: string): Promise<boolean> {
    try {
      const info = await this.ctx.calls.run("network_inspect", () => this.ctx.docker.getNetwork(name).inspect(), { tolerate: isNotFound });
      // Docker also resolves a network by ID prefix; only an exact match counts.
      const net = info as { Name?: string; Id?: string };
      return net.Name === name || net.Id === name;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw failure("network_inspect", err, "failed", `inspect of network ${name} failed`);
    }
  }

  listManaged(options?: { inspect?: boolean } & CallOptions): Promise<ObservedContainer[]> {
    return this.containers.listManaged(options);
  }

  listForGame(gameId: string, options?: CallOptions): Promise<ObservedContainer[]> {
    return this.containers.listForGame(gameId, options);
  }

  ensureImage(ref: string, policy: ImagePullPolicy, options?: CallOptions): Promise<void> {
    return this.images.ensure(ref, policy, options);
  }

  /** The image's labels: its com.galaxy.* resource labels are read from them. */
  imageMetadata(ref: string, options?: CallOptions): Promise<Record<string, string>> {
    return this.images.labels(ref, options);
  }

  /** Pulls unconditionally (ensureImage applies the policy). */
  pull(ref: string, options?: CallOptions): Promise<void> {
    return this.images.pull(ref, options);
  }

  create(spec: EngineSpec, options?: CallOptions): Promise<string> {
    return this.containers.create(spec, options);
  }

  start(id: string, options?: CallOptions): Promise<void> {
    return this.containers.start(id, options);
  }

  stop(id: string, timeoutSeconds: number, options?: CallOptions): Promise<void> {
    return this.containers.stop(id, timeoutSeconds, options);
  }

  remove(id: string, options?: CallOptions): Promise<void> {
    return this.containers.remove(id, options);
  }

  watchEvents(handlers: EngineEventHandlers): () => void {
    return watchDockerEvents(this.ctx, this.reconnect, handlers);
  }

  logStream(id: string, options: LogStreamOptions): Promise<AsyncIterable<Buffer>> {
    return containerLogStream(this.ctx, id, options);
  }

  /**
   * Through the port published on the development host address; else the
   * container's address on the engine network, taken from the same Docker
   * answer that listed it, so a probe needs no DNS lookup (Docker's embedded
   * DNS, through libuv's four-thread pool, 13 times a second for 200 engines)
   * and reaches that very container, not whichever one holds the alias at
   * that moment; else by container name.
   */
  probeAddress(engine: ObservedContainer): string | null {
    if (this.publishHost) return engine.publishedPort ? `${this.publishHost}:${engine.publishedPort}` : null;
    const address = engine.networkAddresses[this.network];
    return `${address ?? engine.name}:${ENGINE_HTTP_PORT}`;
  }
}
