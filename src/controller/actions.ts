/**
 * Executes a plan's actions against the Docker port, in order. Each action is
 * idempotent given the deterministic container name and labels, so a crash
 * at any point leaves state that the next reconcile finishes.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { configHash, type Declaration } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { parseMemory } from "../model/duration.js";
import { containerName } from "../model/gameId.js";
import type { ContainerResources, DockerPort } from "../model/ports.js";
import type { EventType } from "../model/status.js";
import { isRunning, type Action } from "./plan.js";

export interface ExecutorSettings {
  imagePullPolicy: "always" | "if_not_present" | "never";
  stopTimeoutMs: number;
  dockerNetwork: string;
  stateRoot: string;
  enginePublishHost: string | undefined;
  defaultCpus: number;
  defaultMemoryBytes: number;
  defaultPidsLimit: number;
}

export interface ActionObserver {
  /** Called after each action that changed something, for events and logs. */
  onAction(type: EventType, data: Record<string, unknown>): void;
  /** Called before each action is attempted (a failed stop may still have stopped the container). */
  beforeAction?(action: Action): void;
}

export function statePathOf(stateRoot: string, gameId: string): string {
  return path.join(stateRoot, gameId);
}

/** Image labels win, then the declaration, then configured defaults. */
export function resolveResources(imageLabels: Record<string, string>, d: Declaration, s: ExecutorSettings): ContainerResources {
  const labelCpus = Number(imageLabels["com.galaxy.cpu_quota"]);
  const labelMemory = imageLabels["com.galaxy.memory"] ? parseMemory(imageLabels["com.galaxy.memory"]) : null;
  const labelPids = Number(imageLabels["com.galaxy.pids_limit"]);
  const cpus = labelCpus > 0 ? labelCpus : (d.resources?.cpus ?? s.defaultCpus);
  const memory = labelMemory ?? (d.resources?.memory ? parseMemory(d.resources.memory) : null) ?? s.defaultMemoryBytes;
  const pids = Number.isInteger(labelPids) && labelPids > 0 ? labelPids : (d.resources?.pidsLimit ?? s.defaultPidsLimit);
  return { nanoCpus: Math.round(cpus * 1e9), memoryBytes: memory, pidsLimit: pids };
}

export async function ensureImage(docker: DockerPort, imageRef: string, policy: ExecutorSettings["imagePullPolicy"]): Promise<void> {
  if (policy === "always") return docker.pull(imageRef);
  if (await docker.imagePresent(imageRef)) return;
  if (policy === "never") {
    throw new RtmError("image_pull_failed", `image ${imageRef} is not present locally and RTMANAGER_IMAGE_PULL_POLICY is never`);
  }
  await docker.pull(imageRef);
}

export async function executeActions(
  actions: readonly Action[],
  ctx: {
    docker: DockerPort;
    declaration: Declaration | null;
    gameId: string;
    settings: ExecutorSettings;
    observer: ActionObserver;
    /** False once this replica lost leadership: it must not start another action. */
    mayAct?: () => boolean;
  },
): Promise<void> {
  const { docker, settings, observer, gameId } = ctx;
  let createdId: string | null = null;
  for (const action of actions) {
    if (ctx.mayAct && !ctx.mayAct()) {
      throw new RtmError("service_unavailable", "this replica lost leadership mid-reconcile; the new leader finishes the job");
    }
    observer.beforeAction?.(action);
    switch (action.type) {
      case "ensureImage":
        await ensureImage(docker, action.imageRef, action.policy ?? settings.imagePullPolicy);
        break;
      case "create": {
        const d = ctx.declaration;
        if (!d) throw new RtmError("internal_error", "create planned without a declaration");
        const statePath = statePathOf(settings.stateRoot, gameId);
        // 0750: the engine's state is not for other users of the host. Never deleted by rtmanager.
        await mkdir(statePath, { recursive: true, mode: 0o750 });
        const labels = await docker.imageLabels(action.imageRef);
        createdId = await docker.create({
          gameId,
          name: containerName(gameId),
          imageRef: action.imageRef,
          generation: d.generation,
          restartToken: d.restartToken ?? null,
          configHash: configHash(d),
          env: d.env ?? {},
          statePath,
          network: settings.dockerNetwork,
          resources: resolveResources(labels, d, settings),
          publishHost: settings.enginePublishHost ?? null,
        });
        observer.onAction("container_created", { containerId: createdId, imageRef: action.imageRef });
        break;
      }
      case "start": {
        const id = action.containerId === "created" ? createdId : action.containerId;
        if (!id) throw new RtmError("internal_error", "start planned before create");
        await docker.start(id);
        observer.onAction("container_started", { containerId: id });
        break;
      }
      case "stop":
        await docker.stop(action.containerId, Math.ceil(settings.stopTimeoutMs / 1000));
        observer.onAction("container_stopped", { containerId: action.containerId, reason: action.reason });
        break;
      case "remove":
        await docker.remove(action.containerId);
        observer.onAction("container_removed", { containerId: action.containerId });
        break;
      case "removeAll":
        for (const c of await docker.listForGame(gameId)) {
          if (isRunning(c)) {
            await docker.stop(c.id, Math.ceil(settings.stopTimeoutMs / 1000));
            observer.onAction("container_stopped", { containerId: c.id, reason: action.reason });
          }
          await docker.remove(c.id);
          observer.onAction("container_removed", { containerId: c.id });
        }
        break;
    }
  }
}
