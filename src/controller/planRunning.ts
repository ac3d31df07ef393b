/**
 * A game declared running: one function per situation, each returning null
 * when the situation is not its own, tried in order (as Agones'
 * syncGameServer* steps are). The order is the priority: a resumed gate
 * before anything, then a declaration change (patch, restart), then the
 * engine's own trouble (unhealthy, exited), then adoption and steady state.
 */
import type { Declaration } from "../model/declaration.js";
import { isDeclarative, NODE_LOST_RULE, type EngineProblem, type ObservedContainer } from "../model/ports.js";
import { fleetHold, quarantineHold } from "./planFleet.js";
import { CODE_BY_FAILURE_KIND } from "./runtimeErrors.js";
import { checkPatch, countRestart, declaredRestart, gate, gateFor, holdPlan, isNewExit, isUnhealthy, resetCrashLoop, restartDelay, restartReason, tokenDiffers } from "./runningRules.js";
import type { RuntimeRecord } from "../model/record.js";
import {
  ACCEPTED_RECHECK_MS,
  createActions,
  finish,
  isAccepted,
  isRunning,
  planTerminating,
  replaceActions,
  rollbackActions,
  type Plan,
  type PlannerInput,
} from "./plan.js";

export interface Situation {
  p: Plan;
  input: PlannerInput;
  d: Declaration;
  c: ObservedContainer | null;
  generationChanged: boolean;
}

/** A situation with an engine to look at. */
type EngineSituation = Situation & { c: ObservedContainer };

export function planRunning(s: Situation): Plan {
  // An open gate first, whatever the engine's state: an engine that exited or vanished during it fails the gate.
  const resumed = resumeGate(s);
  if (resumed) return finish(resumed);
  const c = s.c;
  // The engine a split replace deleted, gone but for its last state: its successor is still to be made.
  const replaced = !!c && !c.terminating && s.input.replacing?.generation === s.d.generation && s.input.replacing.replacedId === c.id;
  if (!c || replaced) return finish(planMissing(s));
  const e: EngineSituation = { ...s, c };
  const p = isRunning(c)
    ? (planNodeLost(e) ?? planTerminating(e.p, c) ?? planPatch(e) ?? planRestart(e) ?? planUnhealthy(e) ?? planRuntimeRestarted(e) ?? planAdopt(e) ?? planSteady(e))
    : (planNodeLost(e) ?? planTerminating(e.p, c) ?? planAccepted(e) ?? planUnstarted(e) ?? planReplaceFinished(e) ?? planRecreateStopped(e) ?? planExited(e));
  // An engine on its way out (a replace's old Pod, evicted, that a finalizer holds) says nothing about the declaration.
  if (c.problem && !p.problem && !c.terminating) p.problem = problemOf(c.problem);
  return finish(p);
}

/** An engine problem as the record's error: the runtime's reason first (conditions take it as their reason). */
function problemOf(problem: EngineProblem): NonNullable<Plan["problem"]> {
  return { code: CODE_BY_FAILURE_KIND[problem.kind], message: `${problem.reason}: ${problem.message}` };
}

/**
 * The runtime will never run the engine again (a Failed Pod: the kubelet
 * rejected it at admission with OutOfcpu, OutOfmemory, NodeAffinity,
 * Preempting…): whatever the restart policy says the runtime does itself,
 * nothing restarts it. Replaced, after the crash-loop backoff, unless the
 * declared policy is never.
 */
function planReplaceFinished({ p, input, d, c, generationChanged }: EngineSituation): Plan | null {
  const problem = c.problem;
  if (!problem?.final || !isDeclarative(input.verbs) || d.restartPolicy === "never") return null;
  p.problem = problemOf(problem);
  if (isNewExit(c, input.record)) {
    p.events.push({ type: "container_exited", data: { containerId: c.id, exitCode: c.exitCode, reason: problem.reason, message: problem.message } });
  }
  if (generationChanged) {
    // A new intent (a start): carried out on a fresh Pod at once, as planRecreateStopped would.
    p.actions.push(...replaceActions(c, d.imageRef));
    p.kind = "start";
    p.reason = `the runtime will not run the engine again (${problem.reason}): a new Pod for the declaration`;
    return p;
  }
  const delay = restartDelay(input, c.finishedAt ?? c.createdAt);
  if (delay > 0) {
    p.requeueAfterMs = delay;
    p.reason = `the runtime will not run the engine again (${problem.reason}); replacing it in ${Math.ceil(delay / 1000)}s (backoff)`;
    return p;
  }
  p.actions.push(...replaceActions(c, d.imageRef));
  countRestart(p, input.record, "exit", { reason: problem.reason });
  p.reason = `the runtime will not run the engine again (${problem.reason}: ${problem.message}): replacing it`;
  return p;
}

/**
 * The engine's node is lost (NotReady/Unknown): the engine may still run
 * there and hold its claim, and no API call reaches it. Kubernetes' rule:
 * a Pod is replaced only once the API says its old incarnation is gone
 * (the Node deleted, or tainted node.kubernetes.io/out-of-service, and the
 * pod GC deleting the Pod; or an operator force-deleting it). Until then it
 * is reported (nodeLossEvents) and nothing else is done: not a patch, not
 * a restart, not a recreate on failed probes.
 */
function planNodeLost({ p, c }: EngineSituation): Plan | null {
  if (!c.lostPlacement) return null;
  p.converges = false;
  p.reason = `node ${c.lostPlacement.node} is lost (${c.lostPlacement.reason}): ${NODE_LOST_RULE}`;
  return p;
}

/**
 * Once per transition, whatever is declared: the engine's node was lost
 * (`node_lost`), or the record's lost node no longer holds the engine (it
 * came back, or its Pod is gone: `node_lost_cleared`). The record remembers
 * the lost node, so a repeated reconcile reports nothing new.
 */
export function nodeLossEvents(p: Plan, record: RuntimeRecord | null, c: ObservedContainer | null): void {
  const lost = c?.lostPlacement ?? null;
  const before = record?.lostNode ?? null;
  if (before && before !== lost?.node) {
    const how = c && c.id === record?.currentContainerId ? "node_ready" : "engine_replaced";
    p.events.push({ type: "node_lost_cleared", data: { node: before, since: record?.lostNodeSince?.toISOString() ?? null, how, containerId: c?.id ?? null } });
  }
  if (lost && lost.node !== before) {
    p.events.push({ type: "node_lost", data: { node: lost.node, reason: lost.reason, since: lost.since.toISOString(), containerId: c?.id ?? null } });
  }
}

/**
 * A patch or restart whose health gate is open (its interim record says so,
 * for the declared image): check it once more, with the time left since the
 * record's rolloutStartedAt. The next reconcile of a gate, or the first one
 * after a controller stopped during it.
 */
function resumeGate({ p, input, d, c, generationChanged }: Situation): Plan | null {
  const { record, now, settings } = input;
  if (!record?.rolloutStartedAt || !generationChanged || (c?.imageRef ?? record.currentImageRef) !== d.imageRef) return null;
  const elapsed = now.getTime() - record.rolloutStartedAt.getTime();
  const rollbackTo = record.previousImageRef && record.previousImageRef !== d.imageRef ? record.previousImageRef : null;
  p.kind = rollbackTo ? "patch" : "restart";
  const inPlace = isDeclarative(input.verbs) && c ? { containerId: c.id } : null;
  p.gate = { ...gate(settings, rollbackTo, Math.max(0, settings.patchHealthTimeoutMs - elapsed), inPlace), resumed: true };
  p.reason = `health gate of ${d.imageRef} open (${Math.round(elapsed / 1000)}s elapsed)`;
  return p;
}

/** No container at all: create one (a start, a patch of a vanished engine, or a self-heal). */
function planMissing({ p, input, d, generationChanged }: Situation): Plan {
  const { record, settings } = input;
  const split = input.replacing;
  if (split && split.generation === d.generation) {
    // The second half of a replace whose old engine had to go first: the same kind, cause and a fresh gate.
    p.actions.push(...createActions(d.imageRef));
    // The successor is a new engine: a rollback that swapped the replaced one's image in place (an in-place patch of
    // a Pod that had finished) cannot restore it, so it replaces whatever runs then, as any replace's rollback does.
    const gate = split.gate && { ...split.gate, resumed: false, rollback: split.gate.rollbackTo ? rollbackActions(split.gate.rollbackTo, null) : [] };
    Object.assign(p, { kind: split.kind, restartCause: split.restartCause, gate });
    p.reason = `the replaced engine is gone: creating its successor (${split.kind})`;
    return p;
  }
  const wasRunningImage = record?.status === "running" ? record.currentImageRef : null;
  const disappeared = record?.status === "running" && !!record.currentContainerId;
  if (disappeared) p.events.push({ type: "container_disappeared", data: { containerId: record.currentContainerId } });
  const imageChanges = !!wasRunningImage && wasRunningImage !== d.imageRef;
  if (imageChanges) {
    const refused = checkPatch(wasRunningImage, d.imageRef);
    if (refused) return holdPlan(p, refused);
    // Not gated here (nothing runs to roll back to), so no canary either; but never a quarantined image.
    const held = quarantineHold(p, input, d.imageRef);
    if (held) return held;
  }
  p.actions.push(...createActions(d.imageRef));
  p.kind = generationChanged ? (imageChanges ? "patch" : "start") : "self_heal";
  if (p.kind === "self_heal") p.restartCause = "disappeared";
  if (p.kind === "start" && settings.startWaitHealthy) p.gate = gateFor(settings, null);
  p.reason = disappeared ? "container disappeared: recreating it" : "no container: creating and starting it";
  return p;
}

/** A new image on a running engine: pull first (the old engine serves meanwhile), then replace, gated, with a rollback. */
function planPatch({ p, input, d, c }: EngineSituation): Plan | null {
  if (c.imageRef === d.imageRef) return null;
  const refused = checkPatch(c.imageRef, d.imageRef);
  if (refused) return holdPlan(p, refused);
  const held = fleetHold(p, input, d.imageRef);
  if (held) return held;
  p.kind = "patch";
  // In place only when the image is the only change: a swap keeps the engine's env and resources, so a patch
  // that also changes them (or the restart token or policy) recreates the engine, which takes all of them.
  if (isDeclarative(input.verbs) && !declaredRestart(d, c)) {
    // The runtime swaps the image of the same engine (same node, same volume); so does its rollback.
    p.actions.push({ type: "updateImage", containerId: c.id, imageRef: d.imageRef });
    p.gate = gateFor(input.settings, c.imageRef, { containerId: c.id });
    p.reason = `patching ${c.imageRef} -> ${d.imageRef} in place`;
    return p;
  }
  p.actions.push(...replaceActions(c, d.imageRef));
  p.gate = gateFor(input.settings, c.imageRef, null);
  p.reason = `patching ${c.imageRef} -> ${d.imageRef}`;
  return p;
}

/** A new restart token, or new env or resources: recreate on the same image, gated. */
function planRestart({ p, input, d, c }: EngineSituation): Plan | null {
  const cause = declaredRestart(d, c);
  if (!cause) return null;
  p.actions.push(...replaceActions(c, d.imageRef));
  p.kind = "restart";
  p.restartCause = cause;
  p.gate = gateFor(input.settings, null);
  p.reason = `${restartReason(d, c, cause)}: recreating the container on the same image`;
  return p;
}

/** Failed probes past the threshold: recreate under the restart policy, after the crash-loop backoff. */
function planUnhealthy({ p, input, d, c }: EngineSituation): Plan | null {
  // On every runtime: a Pod's readiness probe never restarts anything (and a liveness probe is not used, see
  // manifests.ts), so the controller recreates it. A Pod on a lost node never gets here (planNodeLost).
  // An engine the runtime is restarting (a Pod mid image swap) is judged again once it runs: its failures are the old one's.
  if (!isUnhealthy(input) || d.restartPolicy === "never" || c.phase !== "running" || c.restarting) return null;
  const delay = restartDelay(input, c.startedAt);
  if (delay > 0) {
    p.requeueAfterMs = delay;
    p.reason = `engine unhealthy; restart in ${Math.ceil(delay / 1000)}s (backoff)`;
    return p;
  }
  p.actions.push(...replaceActions(c, d.imageRef));
  countRestart(p, input.record, "unhealthy", { cause: "unhealthy" });
  p.reason = `engine failed ${input.health?.consecutiveFailures} probes in a row: restarting it`;
  return p;
}

/**
 * The runtime restarted the engine by itself (a Pod's kubelet, after an exit
 * or a failed liveness probe): its restart count went up since the record
 * last saw it. Nothing to do but record the exit.
 */
function planRuntimeRestarted({ p, input, c }: EngineSituation): Plan | null {
  const { record } = input;
  const seen = record?.restartCount ?? 0;
  if (c.restartCount === null || !record || c.restartCount === 0 || !isDeclarative(input.verbs)) return null;
  // The kubelet's count restarts at 0 in a Pod the controller recreated, while the record keeps the controller's
  // own count (the crash-loop backoff): a new container id with restarts behind it is a restart too.
  if (c.restartCount <= seen && c.id === record.currentContainerId) return null;
  p.kind = "record_exit";
  p.events.push({
    type: c.oomKilled ? "container_oom" : "container_exited",
    data: { containerId: record.currentContainerId, restartedAs: c.id, restartCount: c.restartCount, restartedBy: "runtime" },
  });
  p.reason = `the runtime restarted the engine itself (restart ${c.restartCount}); recording the exit`;
  return p;
}

/** A running container that matches the declaration but is not the one recorded: take it over, no runtime call. */
function planAdopt({ p, input, d, c, generationChanged }: EngineSituation): Plan | null {
  const { record } = input;
  if (record && record.currentContainerId === c.id) return null;
  // The start of this generation finishing: the record named the engine while the runtime had only accepted it.
  if (record && record.status !== "running" && generationChanged && isDeclarative(input.verbs) && c.generation === d.generation) return null;
  p.kind = "reconcile_adopt";
  p.opSource = "reconcile";
  p.events.push({ type: "container_adopted", data: { containerId: c.id } });
  p.reason = "running container matches the declaration: adopting it";
  resetCrashLoop(p, input, c);
  return p;
}

function planSteady({ p, input, c }: EngineSituation): Plan {
  p.reason = isUnhealthy(input) ? "engine unhealthy; restart policy never: reporting only" : "running as declared";
  resetCrashLoop(p, input, c);
  return p;
}

/**
 * The runtime has the engine and starts it by itself (a Pod): nothing to do
 * but wait for its watch, within the start bound. Past it, the start action
 * (planUnstarted) asks the runtime, which fails it.
 */
function planAccepted({ p, input, d, c }: EngineSituation): Plan | null {
  if (!isAccepted(c, input.verbs) || c.imageRef !== d.imageRef || tokenDiffers(d, c)) return null;
  const left = (input.settings.podStartTimeoutMs ?? 30_000) - (input.now.getTime() - c.createdAt.getTime());
  if (left <= 0) return null;
  p.converges = false;
  p.requeueAfterMs = Math.min(left, ACCEPTED_RECHECK_MS);
  p.reason = "the runtime accepted the engine and has not started it yet";
  return p;
}

/** A crash between create and start: finish the job. */
function planUnstarted({ p, d, c, generationChanged }: EngineSituation): Plan | null {
  // An engine the runtime accepted for this start and cannot run (a Pod whose image the kubelet cannot pull):
  // the start action asks the runtime, which answers why, as the start's error.
  const cannotPull = c.problem?.kind === "pull_failed";
  if (c.phase !== "pending" || (cannotPull && !generationChanged) || c.imageRef !== d.imageRef || tokenDiffers(d, c)) return null;
  p.actions.push({ type: "start", containerId: c.id });
  p.kind = generationChanged ? "start" : "self_heal";
  p.reason = "container was created but never started: starting it";
  return p;
}

/** A stopped container and a new intent (start after stop, new image, restart): a fresh container. */
function planRecreateStopped({ p, input, d, c, generationChanged }: EngineSituation): Plan | null {
  const exitedOnItsOwn = !generationChanged && c.imageRef === d.imageRef && !tokenDiffers(d, c) && input.record?.currentContainerId === c.id;
  if (exitedOnItsOwn) return null;
  p.actions.push(...replaceActions(c, d.imageRef));
  p.kind = "start";
  if (input.settings.startWaitHealthy) p.gate = gateFor(input.settings, null);
  p.reason = "declared running: recreating the stopped container";
  return p;
}

/** The engine exited on its own: record it, and restart it if the restart policy says so, after the backoff. */
function planExited({ p, input, d, c }: EngineSituation): Plan {
  const { record } = input;
  const newExit = isNewExit(c, record);
  if (newExit) {
    p.events.push({ type: c.oomKilled ? "container_oom" : "container_exited", data: { containerId: c.id, exitCode: c.exitCode } });
  }
  const cleanExit = c.exitCode === 0 && !c.oomKilled;
  if (isDeclarative(input.verbs)) {
    // The runtime applies the restart policy itself (a Pod's restartPolicy): record, never race it.
    if (newExit) p.kind = "record_exit";
    p.reason = `engine exited with code ${c.exitCode}; the runtime applies restart policy ${d.restartPolicy} itself`;
    return p;
  }
  if (d.restartPolicy === "never" || (d.restartPolicy === "on-failure" && cleanExit)) {
    if (newExit) p.kind = "record_exit";
    p.reason = `engine exited with code ${c.exitCode}; restart policy ${d.restartPolicy} leaves it stopped`;
    return p;
  }
  const delay = restartDelay(input, c.finishedAt);
  if (delay > 0) {
    if (newExit) p.kind = "record_exit";
    p.requeueAfterMs = delay;
    p.reason = `engine exited with code ${c.exitCode}; restarting in ${Math.ceil(delay / 1000)}s (restart ${(record?.restartCount ?? 0) + 1}, backoff)`;
    return p;
  }
  // A runtime can refuse to start an engine again (a container runtime after a daemon
  // restart: "task already exists"); once a start has failed, recreate instead.
  const startFailedBefore =
    record?.lastErrorCode === "container_start_failed" && record.lastErrorGeneration === d.generation && record.heldGeneration !== d.generation;
  p.actions.push(...(startFailedBefore ? replaceActions(c, d.imageRef) : [{ type: "start", containerId: c.id } as const]));
  const exitCause = c.oomKilled ? "oom" : "exit";
  countRestart(p, record, startFailedBefore ? "start_failed" : exitCause, { exitCode: c.exitCode });
  p.reason = `engine exited with code ${c.exitCode}; restart policy ${d.restartPolicy} ${startFailedBefore ? "recreates it (its last start failed)" : "restarts it"}`;
  return p;
}
