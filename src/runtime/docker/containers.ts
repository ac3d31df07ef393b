/** Container lifecycle on Docker: list, create, start, stop, remove. */
import path from "node:path";
import type Dockerode from "dockerode";
import { mapLimit } from "../../model/mapLimit.js";
import { throwIfAborted, type AbortedError } from "../../model/abort.js";
import type { CallOptions, EngineSpec, ObservedContainer } from "../../model/ports.js";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import { dockerMessage, failure, isNotFound, statusOf, type DockerContext } from "./calls.js";
import type { EngineHardening } from "../engineHardening.js";
import { engineUser, hardenedHostConfig, hardeningDigest } from "./hardening.js";
import { ENGINE_PORT, GAME_STATE_PATH, LABELS, labelFilters, ownedBy, specLabels } from "./labels.js";
import { ensureStateDir } from "./stateDir.js";
import { observedFromInspect, observedFromSummary } from "./observed.js";

export interface EnginePlacement {
  /** Docker network every engine joins, with its container name as alias. */
  network: string;
  /** Publish 8080 on this host address (127.0.0.1 in development); null in production. */
  publishHost: string | null;
  /** How every engine is confined (capabilities, privileges, logs, root filesystem, user, fsGroup). */
  hardening: EngineHardening;
}

export class DockerContainers {
  constructor(
    private readonly ctx: DockerContext,
    private readonly placement: EnginePlacement,
  ) {}

  listManaged(options: { inspect?: boolean } & CallOptions = {}): Promise<ObservedContainer[]> {
    return this.list(labelFilters(this.ctx.instance), options.inspect ?? true, options.signal);
  }

  listForGame(gameId: string, options: CallOptions = {}): Promise<ObservedContainer[]> {
    return this.list(labelFilters(this.ctx.instance, gameId), true, options.signal);
  }

  /**
   * One list, then one inspect per container: exit code, OOM, start/finish
   * times and the host port exist only in inspect.
   */
  private async list(label: string[], inspect: boolean, caller: AbortSignal | undefined): Promise<ObservedContainer[]> {
    const { calls, docker, instance } = this.ctx;
    let summaries: Dockerode.ContainerInfo[];
    try {
      summaries = await calls.run("list", (signal) => docker.listContainers({ all: true, filters: { label }, abortSignal: signal }), { signal: caller });
    } catch (err) {
      throw failure("list", err, "failed", "listing containers failed");
    }
    const ours = summaries.filter((s) => ownedBy(s.Labels, instance));
    if (!inspect) return ours.map((s) => observedFromSummary(s, instance)).filter((o): o is ObservedContainer => o !== null);
    const observed = await mapLimit(ours, 8, (s) => this.inspect(s.Id, caller));
    return observed.filter((o): o is ObservedContainer => o !== null);
  }

  /** Null when the container vanished between list and inspect, or is not ours. */
  private async inspect(id: string, caller: AbortSignal | undefined): Promise<ObservedContainer | null> {
    try {
      const info = await this.ctx.calls.run("inspect", (signal) => this.ctx.docker.getContainer(id).inspect({ abortSignal: signal }), {
        tolerate: isNotFound,
        signal: caller,
      });
      return observedFromInspect(info, this.ctx.instance);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw failure("inspect", err, "failed", `inspect of container ${id} failed`);
    }
  }

  async create(spec: EngineSpec, options: CallOptions = {}): Promise<string> {
    if (!path.isAbsolute(spec.statePath)) {
      // Docker refuses a bind mount of a relative host path; say so before creating a directory relative to cwd.
      throw new RuntimeFailure("config_refused", "create", `the state path ${spec.statePath} is not absolute`, { gameId: spec.gameId, statePath: spec.statePath });
    }
    // Nothing is made, not even the state directory, once the caller gave up.
    throwIfAborted(options.signal);
    // Never deleted by rtmanager.
    await ensureStateDir(spec, this.placement.hardening.fsGroup, this.ctx.logger);
    const createOptions = this.createOptions(spec);
    try {
      const container = await this.ctx.calls.run("create", (signal) => this.ctx.docker.createContainer({ ...createOptions, abortSignal: signal }), { signal: options.signal });
      return container.id;
    } catch (err) {
      throw createFailure(err, spec);
    }
  }

  private createOptions(spec: EngineSpec): Dockerode.ContainerCreateOptions {
    const { network, publishHost, hardening } = this.placement;
    const env: Record<string, string> = { ...spec.env, GAME_STATE_PATH, GAME_ID: spec.gameId };
    const { cpus, memoryBytes, pidsLimit } = spec.resources;
    // Docker counts CPU in billionths of a core.
    const nanoCpus = Math.round(cpus * 1e9);
    const hostConfig: Dockerode.HostConfig = {
      Binds: [`${spec.statePath}:${GAME_STATE_PATH}`],
      NetworkMode: network,
      // The controller owns restarts (policy, backoff, operation log); Docker restarting behind its back would race it.
      RestartPolicy: { Name: "no" },
      NanoCpus: nanoCpus > 0 ? nanoCpus : undefined,
      Memory: memoryBytes > 0 ? memoryBytes : undefined,
      // Equal to Memory means no swap on top, so the memory limit is the real ceiling.
      MemorySwap: memoryBytes > 0 ? memoryBytes : undefined,
      PidsLimit: pidsLimit > 0 ? pidsLimit : undefined,
      ...hardenedHostConfig(hardening),
    };
    if (publishHost) {
      // Empty HostPort: Docker picks a free port; listManaged reports it.
      hostConfig.PortBindings = { [ENGINE_PORT]: [{ HostIp: publishHost, HostPort: "" }] };
    }
    return {
      name: spec.name,
      Image: spec.imageRef,
      Labels: { ...specLabels(spec, this.ctx.instance), [LABELS.hardening]: hardeningDigest(hardening) },
      User: engineUser(hardening),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ExposedPorts: { [ENGINE_PORT]: {} },
      HostConfig: hostConfig,
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [spec.name] } } },
    };
  }

  async start(id: string, options: CallOptions = {}): Promise<void> {
    try {
      await this.ctx.calls.run("start", (signal) => this.ctx.docker.getContainer(id).start({ abortSignal: signal }), {
        tolerate: (err) => statusOf(err) === 304,
        signal: options.signal,
      });
    } catch (err) {
      if (statusOf(err) === 304) return; // already running
      throw failure("start", err, "start_failed", `starting container ${id} failed`, { containerId: id });
    }
  }

  async stop(id: string, timeoutSeconds: number, options: CallOptions = {}): Promise<void> {
    const tolerated = (err: unknown) => statusOf(err) === 304 || statusOf(err) === 404;
    try {
      await this.ctx.calls.run("stop", (signal) => this.ctx.docker.getContainer(id).stop({ t: timeoutSeconds, abortSignal: signal }), {
        timeoutMs: this.ctx.calls.timeoutMs + timeoutSeconds * 1000,
        tolerate: tolerated,
        signal: options.signal,
      });
    } catch (err) {
      if (tolerated(err)) return;
      throw failure("stop", err, "failed", `stopping container ${id} failed`, { containerId: id });
    }
  }

  async remove(id: string, options: CallOptions = {}): Promise<void> {
    const inProgress = (err: unknown) => statusOf(err) === 409 && /already in progress/i.test(dockerMessage(err));
    const tolerated = (err: unknown) => isNotFound(err) || inProgress(err);
    try {
      await this.ctx.calls.run("remove", (signal) => this.ctx.docker.getContainer(id).remove({ force: true, v: true, abortSignal: signal }), {
        tolerate: tolerated,
        signal: options.signal,
      });
    } catch (err) {
      if (isNotFound(err)) return;
      if (inProgress(err)) {
        // Someone else is removing it; wait so a create with the same name right after does not conflict.
        await this.waitGone(id, options.signal);
        return;
      }
      throw failure("remove", err, "failed", `removing container ${id} failed`, { containerId: id });
    }
  }

  private async waitGone(id: string, caller: AbortSignal | undefined): Promise<void> {
    const deadline = Date.now() + this.ctx.calls.timeoutMs;
    while (Date.now() < deadline) {
      try {
        await this.ctx.calls.run("inspect", (signal) => this.ctx.docker.getContainer(id).inspect({ abortSignal: signal }), { tolerate: isNotFound, signal: caller });
      } catch (err) {
        if (isNotFound(err)) return;
        throw failure("inspect", err, "failed", `inspect of container ${id} failed`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    this.ctx.logger?.warn({ containerId: id }, "container still present after a removal in progress; continuing");
  }
}

/** What Docker's answer to a create says, without deciding what the controller does about it. */
function createFailure(err: unknown, spec: EngineSpec): RuntimeFailure | AbortedError {
  const details = { gameId: spec.gameId, containerName: spec.name, imageRef: spec.imageRef };
  const status = statusOf(err);
  const message = dockerMessage(err);
  if (status === 409) {
    const existing = /by container "([0-9a-f]+)"/.exec(message)?.[1];
    return new RuntimeFailure(
      "conflict",
      "create",
      `container name ${spec.name} is already in use: ${message}`,
      { ...details, ...(existing ? { existingContainerId: existing } : {}) },
      { cause: err },
    );
  }
  if (status === 404 && /no such image/i.test(message)) {
    return new RuntimeFailure("image_not_found", "create", `image ${spec.imageRef} is not present: ${message}`, details, { cause: err });
  }
  // 400 is a bad config; 404 of anything but the image is something the config names (e.g. the network).
  if (status === 400 || status === 404) {
    return new RuntimeFailure("config_refused", "create", `Docker refused the container config: ${message}`, { ...details, status }, { cause: err });
  }
  return failure("create", err, "failed", `creating container ${spec.name} failed`, details);
}
