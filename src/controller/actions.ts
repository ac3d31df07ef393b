/**
 * Executes a plan's actions against the engine runtime, in order. Each action
 * is idempotent given the deterministic container name and labels, so a crash
 * at any point leaves state that the next reconcile finishes. A runtime's
 * failure leaves here as the contract error it stands for (runtimeErrors.ts).
 * The runtime is the reconcile's scoped one (reconcileScope.ts): it checks
 * leadership before each call and passes the reconcile's signal; a call cut
 * short by it leaves here as the AbortedError it is, no contract error.
 */
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { declaredResources, labelResources, resourcesBelowFloor, resourcesRefused, type ResourceCeilings } from "../model/admission.js";
import { isAborted } from "../model/abort.js";
import { configHash, type Declaration } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { containerName } from "../model/gameId.js";
import { isDeclarative, type ContainerResources, type EngineSpec, type ImagePullPolicy, type RuntimePort } from "../model/ports.js";
import { EngineStillTerminating } from "../model/runtimeFailure.js";
import type { EventType } from "../model/status.js";
import { isRunning, verbOf, type Action } from "./plan.js";
import { contractError } from "./runtimeErrors.js";

export interface ExecutorSettings {
  imagePullPolicy: ImagePullPolicy;
  stopTimeoutMs: number;
  stateRoot: string;
  defaultCpus: number;
  defaultMemoryBytes: number;
  defaultPidsLimit: number;
  /** RTMANAGER_MAX_*: what image labels may ask for; the declaration is held by the planner already. */
  resourceCeilings?: ResourceCeilings;
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

/** The record's network and state path: the runtime's own terms when it has them, else the configured ones. */
export function recordLocationOf(
  runtime: Pick<RuntimePort, "recordLocation">,
  settings: { stateRoot: string; engineNetwork?: string },
  gameId: string,
): { statePath: string; dockerNetwork: string } {
  const own = runtime.recordLocation?.(gameId);
  return own ? { statePath: own.statePath, dockerNetwork: own.network } : { statePath: statePathOf(settings.stateRoot, gameId), dockerNetwork: settings.engineNetwork ?? "" };
}

/** The image's resource labels (its metadata) win, then the declaration, then configured defaults. */
export function resolveResources(imageMetadata: Record<string, string>, d: Declaration, s: ExecutorSettings): ContainerResources {
  const labels = labelResources(imageMetadata);
  // Labels are only known once the image is local: this is the first place they can be refused. Permanent: not retried until the declaration changes.
  if (labels.refused) throw new RtmError("start_config_invalid", `${labels.refused}; no container was created`);
  const declared = declaredResources(d.resources);
  const cpus = labels.asked.cpus ?? declared.cpus ?? s.defaultCpus;
  const memory = labels.asked.memoryBytes ?? declared.memoryBytes ?? s.defaultMemoryBytes;
  const pids = labels.asked.pidsLimit ?? declared.pidsLimit ?? s.defaultPidsLimit;
  const asked = { cpus, memoryBytes: memory, pidsLimit: pids };
  const source = "the image's com.galaxy.* labels (or the declaration)";
  // A limit under the floor is refused, never dropped: 1e-10 CPUs would otherwise become 0 nano-CPUs, "no limit".
  const refused = resourcesBelowFloor(asked, source) ?? resourcesRefused(asked, s.resourceCeilings, source);
  if (refused) throw new RtmError("start_config_invalid", `${refused}; no container was created`);
  return { cpus, memoryBytes: memory, pidsLimit: pids };
}

export interface ExecutionContext {
  runtime: RuntimePort;
  declaration: Declaration | null;
  gameId: string;
  settings: ExecutorSettings;
  observer: ActionObserver;
  /**
   * A create after a deletion the runtime has only accepted: `defer` (the
   * default) returns and leaves it to a later reconcile; `wait` waits for the
   * old engine to go. Only a rollout's own replace inside a gate check (a
   * rollback that cannot be made in place, the recreate of an engine an
   * in-place update finished) waits, so that check has its engine.
   */
  afterDeletion?: "defer" | "wait";
}

/** How often a waiting replace looks whether the old engine is gone. */
const GONE_POLL_MS = 250;

/**
 * Runs `actions` in order. Returns true when it stopped before a create
 * because an engine it deleted is still terminating (a Pod in its grace
 * period holds the name the new one needs), or because the runtime deleted
 * one itself and said so (EngineStillTerminating: a finished Pod's image
 * update, an evicted Pod in a create's way): a replace on such a runtime is
 * split across reconciles, the create left to the reconcile the runtime's
 * watch wakes once the old engine is gone (planTerminating waits meanwhile).
 */
export async function executeActions(actions: readonly Action[], ctx: ExecutionContext): Promise<boolean> {
  // A remove before a create in the same plan is a replace's: the runtime keeps what the successor supersedes.
  const run = { createdId: null as string | null, replace: actions.some((a) => a.type === "create") };
  let deleted = false;
  for (const action of actions) {
    // The planner speaks the runtime's vocabulary (inVocabulary); a step outside it is a planner bug, not a runtime failure.
    if (verbOf(action, ctx.runtime.verbs) === null) {
      throw new RtmError("internal_error", `a ${action.type} was planned, but the ${ctx.runtime.name} runtime offers only ${ctx.runtime.verbs.join(", ")}`);
    }
    if (action.type === "create" && deleted && (await stillTerminating(ctx))) {
      if (ctx.afterDeletion !== "wait") return true;
      await untilGone(ctx);
    }
    deleted ||= action.type === "stop" || action.type === "remove" || action.type === "removeAll";
    ctx.observer.beforeAction?.(action);
    try {
      await executeAction(action, ctx, run);
    } catch (err) {
      if (!(err instanceof EngineStillTerminating)) throw isAborted(err) ? err : contractError(err);
      // The runtime deleted an engine inside the call (a finished Pod it recreates) and someone holds it.
      if (ctx.afterDeletion !== "wait") return true;
      await untilGone(ctx);
      await executeSuccessor(action, ctx, run);
    }
  }
  return false;
}

/** What is left of `action` once the engine its runtime call deleted is gone: the new engine. */
async function executeSuccessor(action: Action, ctx: ExecutionContext, run: { createdId: string | null; replace: boolean }): Promise<void> {
  const successor: Action = action.type === "updateImage" ? { type: "create", imageRef: action.imageRef } : action;
  try {
    await executeAction(successor, ctx, run);
  } catch (err) {
    throw isAborted(err) ? err : contractError(err);
  }
}

async function untilGone(ctx: ExecutionContext): Promise<void> {
  const boundMs = ctx.settings.stopTimeoutMs + 30_000;
  const deadline = Date.now() + boundMs;
  while (await stillTerminating(ctx)) {
    if (Date.now() >= deadline) throw new RtmError("container_start_failed", `the old engine of ${ctx.gameId} is still being deleted after ${Math.round(boundMs / 1000)}s; its replacement was not created`);
    await sleep(GONE_POLL_MS);
  }
}

/** Whether an engine of the game is still being deleted (a declarative runtime's deletions return once accepted). */
async function stillTerminating(ctx: ExecutionContext): Promise<boolean> {
  if (!isDeclarative(ctx.runtime.verbs)) return false;
  try {
    return (await ctx.runtime.listForGame(ctx.gameId)).some((c) => c.terminating);
  } catch (err) {
    throw isAborted(err) ? err : contractError(err);
  }
}

async function executeAction(action: Action, ctx: ExecutionContext, run: { createdId: string | null; replace: boolean }): Promise<void> {
  const { runtime, settings, observer, gameId } = ctx;
  switch (action.type) {
    case "ensureImage":
      await runtime.ensureImage(action.imageRef, action.policy ?? settings.imagePullPolicy);
      break;
    case "create":
      run.createdId = await runtime.create(await engineSpec(action.imageRef, ctx));
      observer.onAction("container_created", { containerId: run.createdId, imageRef: action.imageRef });
      break;
    case "updateImage":
      if (!runtime.updateImage) throw new RtmError("internal_error", `an in-place image update was planned, but the ${runtime.name} runtime has no updateImage`);
      await runtime.updateImage(action.containerId, await engineSpec(action.imageRef, ctx));
      observer.onAction("image_updated", { containerId: action.containerId, imageRef: action.imageRef });
      break;
    case "start": {
      const id = action.containerId === "created" ? run.createdId : action.containerId;
      if (!id) throw new RtmError("internal_error", "start planned before create");
      await runtime.start(id);
      observer.onAction("container_started", { containerId: id });
      break;
    }
    case "stop":
      await runtime.stop(action.containerId, Math.ceil(settings.stopTimeoutMs / 1000));
      observer.onAction("container_stopped", { containerId: action.containerId, reason: action.reason });
      break;
    case "remove":
      await runtime.remove(action.containerId, run.replace ? { succeeded: true } : undefined);
      observer.onAction("container_removed", { containerId: action.containerId });
      break;
    case "removeAll":
      for (const c of await runtime.listForGame(gameId)) {
        if (isRunning(c)) {
          await runtime.stop(c.id, Math.ceil(settings.stopTimeoutMs / 1000));
          observer.onAction("container_stopped", { containerId: c.id, reason: action.reason });
        }
        await runtime.remove(c.id);
        observer.onAction("container_removed", { containerId: c.id });
      }
      break;
  }
}

/** What an engine on `imageRef` is made of: the declaration, the image's resource labels, the settings. */
async function engineSpec(imageRef: string, ctx: ExecutionContext): Promise<EngineSpec> {
  const { runtime, settings, gameId, declaration: d } = ctx;
  if (!d) throw new RtmError("internal_error", "an engine was planned without a declaration");
  const labels = (await runtime.imageMetadata?.(imageRef)) ?? {};
  return {
    gameId,
    name: containerName(gameId),
    imageRef,
    generation: d.generation,
    restartToken: d.restartToken ?? null,
    configHash: configHash(d),
    env: d.env ?? {},
    statePath: recordLocationOf(runtime, settings, gameId).statePath,
    resources: resolveResources(labels, d, settings),
    restartPolicy: d.restartPolicy,
  };
}
