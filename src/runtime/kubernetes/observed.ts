/**
 * A game's Pod (or, once a stop deleted it, the tombstone on its Service) as
 * the ObservedContainer the controller reasons about. Pure.
 *
 * The id is the engine container's id as the kubelet reports it (scheme
 * stripped: `docker://abc` -> `abc`); it changes when the kubelet restarts
 * the container, which is how the record notices a restart it did not make.
 * Before the first container exists the id is `pod:<uid>`.
 */
import type { V1ContainerStatus, V1Pod, V1Service } from "@kubernetes/client-node";
import type { EnginePhase, EngineProblem, ObservedContainer } from "../../model/ports.js";
import type { RestartPolicy } from "../../model/status.js";
import { ENGINE_CONTAINER, ownedBy, POD_ANNOTATIONS, POD_LABELS } from "./names.js";
import { engineNodeLoss, type NodeLookup } from "./nodeHealth.js";

/** Waiting reasons that mean the image cannot be had: the engine is down until someone fixes the image. */
export const IMAGE_FAILURE_REASONS = new Set(["ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName"]);

/**
 * A Pod the node evicted (or lost) is finished for good and will never run
 * again: the runtime reports it as gone, so the controller recreates it, and
 * a create replaces it.
 */
export function isEvicted(pod: V1Pod): boolean {
  return pod.status?.phase === "Failed" && ["Evicted", "NodeLost", "Shutdown", "NodeShutdown", "Terminated", "UnexpectedAdmissionError"].includes(pod.status.reason ?? "");
}

/**
 * Waiting reasons of a container the kubelet could not create or start
 * (kuberuntime_container.go startContainer: ErrCreateContainerConfig,
 * ErrCreateContainer, ErrRunContainer; it retries them on each sync).
 */
export const CONTAINER_ERROR_REASONS = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError", "PreCreateHookError", "PostStartHookError"]);

/**
 * Why the engine cannot run, as the Pod says it, or null: a Failed Pod (the
 * kubelet's admission rejections OutOfcpu, OutOfmemory, NodeAffinity,
 * Preempting…, or a container that ended a Never Pod) is final; a container
 * the kubelet cannot create or start, and a Pod no node fits
 * (PodScheduled=False, Unschedulable), are retried by Kubernetes itself.
 */
export function engineProblem(pod: V1Pod): EngineProblem | null {
  const status = pod.status;
  const cs = engineStatus(pod);
  if (status?.phase === "Failed") {
    const ended = cs?.state?.terminated;
    const reason = status.reason ?? ended?.reason ?? "Failed";
    const message = status.message ?? (ended ? `the engine exited with code ${ended.exitCode}` : "the Pod failed");
    return { kind: "start_failed", reason, message, final: true };
  }
  const waiting = cs?.state?.waiting;
  if (waiting && CONTAINER_ERROR_REASONS.has(waiting.reason ?? "")) return { kind: "start_failed", reason: waiting.reason!, message: waiting.message ?? waiting.reason!, final: false };
  const scheduled = status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") return { kind: "refused_for_now", reason: "Unschedulable", message: scheduled.message ?? "no node fits the Pod", final: false };
  return null;
}

export function stripScheme(containerID: string | undefined): string | null {
  if (!containerID) return null;
  const i = containerID.indexOf("://");
  return i >= 0 ? containerID.slice(i + 3) : containerID;
}

function parseGeneration(value: string | undefined): number | null {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
}

const toDate = (v: Date | string | undefined | null): Date | null => (v ? new Date(v) : null);

/** A Pod's restartPolicy as the declaration spells it (the API server defaults an absent one to Always). */
const DECLARED_RESTART_POLICY: Record<string, RestartPolicy> = { Always: "always", OnFailure: "on-failure", Never: "never" };

export function engineStatus(pod: V1Pod): V1ContainerStatus | undefined {
  return pod.status?.containerStatuses?.find((c) => c.name === ENGINE_CONTAINER);
}

/** The image the Pod asks for now (its spec; the status may still tell of the previous one). */
export function wantedImage(pod: V1Pod): string | undefined {
  return pod.spec?.containers.find((c) => c.name === ENGINE_CONTAINER)?.image;
}

/** Succeeded or Failed: the Pod never runs again. */
export function isFinished(pod: V1Pod): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

/** The digest a ref pins (`repo:tag@sha256:…`), or null. */
export function pinnedDigest(ref: string | undefined): string | null {
  const m = /@(sha256:[0-9a-f]{64})$/.exec(ref ?? "");
  return m ? m[1]! : null;
}

/**
 * The container an in-place patch replaced, from the annotation the patch
 * wrote (null: the Pod was never patched, so every container runs its spec).
 */
export function replacedContainer(pod: V1Pod): string | null {
  return pod.metadata?.annotations?.[POD_ANNOTATIONS.replacedContainer] || null;
}

/**
 * Whether `cs` is a running container of the image the Pod asks for now.
 * Never decided from `cs.image`: the kubelet copies what the runtime reports,
 * and containerd reports the image's first repo tag, registry-qualified, or
 * its id (ContainerStatus in containerd's CRI plugin), so an alias tag, a
 * digest-pinned ref or a short name never equals the spec. Instead, from what
 * an image change changes: the kubelet starts every container from the
 * current spec, so once the container an in-place patch replaced is gone, the
 * running one is the new image's. Where the ref pins a digest and the runtime
 * reports a repo digest (`repo@sha256:…`) as imageID, the two must agree.
 */
export function runsWantedImage(pod: V1Pod, cs: V1ContainerStatus | undefined): boolean {
  if (!cs?.state?.running) return false;
  const replaced = replacedContainer(pod);
  if (replaced && stripScheme(cs.containerID) === replaced) return false;
  const pinned = pinnedDigest(wantedImage(pod));
  const at = cs.imageID?.lastIndexOf("@") ?? -1;
  return !pinned || at < 0 || cs.imageID!.slice(at + 1) === pinned;
}

/**
 * Restarts the engine caused: the kubelet's restartCount (which never resets
 * within a Pod, and counts the restart an image change makes) less the swaps
 * rtmanager made, which each patch adds to the Pod's baseline annotation.
 */
export function engineRestarts(pod: V1Pod, cs: V1ContainerStatus | undefined): number {
  const baseline = parseGeneration(pod.metadata?.annotations?.[POD_ANNOTATIONS.restartBaseline]) ?? 0;
  return Math.max(0, (cs?.restartCount ?? 0) - baseline);
}

/** Whether the kubelet starts the container again after `exitCode` under the Pod's restartPolicy. */
function restarts(pod: V1Pod, exitCode: number): boolean {
  const policy = pod.spec?.restartPolicy ?? "Always";
  return policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
}

/**
 * The Pod's engine as the port's phase. A container the kubelet is about to
 * swap or start again counts as running (the kubelet restarts it, not the
 * controller); a Pod being deleted, or finished, as exited.
 */
export function podPhase(pod: V1Pod): EnginePhase {
  if (pod.metadata?.deletionTimestamp) return "exited";
  if (isFinished(pod)) return "exited";
  const cs = engineStatus(pod);
  if (!cs?.state) return "pending";
  // Still the container an in-place patch (or rollback) replaced: the kubelet is about to swap it.
  if (cs.state.running) return "running";
  if (cs.state.terminated) return restarts(pod, cs.state.terminated.exitCode) ? "running" : "exited";
  const reason = cs.state.waiting?.reason ?? "";
  // The kubelet killed the old container before the pull: nothing serves until the image exists (imageProblem says why).
  if (IMAGE_FAILURE_REASONS.has(reason)) return "pending";
  // A first start still being prepared; anything later (CrashLoopBackOff, a restart after an image change) is the kubelet restarting it.
  return (cs.restartCount ?? 0) === 0 && !cs.lastState?.terminated ? "pending" : "running";
}

/** The kubelet cannot pull the engine's image (ErrImagePull, ImagePullBackOff, …): the engine will not run until it can. */
function imageProblem(pod: V1Pod): EngineProblem | null {
  const waiting = engineStatus(pod)?.state?.waiting;
  if (pod.metadata?.deletionTimestamp || isFinished(pod) || !waiting || !IMAGE_FAILURE_REASONS.has(waiting.reason ?? "")) return null;
  return { kind: "pull_failed", reason: waiting.reason!, message: waiting.message ?? waiting.reason!, final: false };
}

/** Ready as the kubelet says, and on the image the Pod asks for (right after an image patch the old container may still look ready). */
function isReady(pod: V1Pod, cs: V1ContainerStatus | undefined): boolean {
  const podReady = pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  return podReady && !!cs?.ready && runsWantedImage(pod, cs);
}

/** `nodes`: which nodes are lost (the Node watch); without it a lost node is told from the Pod alone. */
export function observedFromPod(pod: V1Pod, instance: string, nodes?: NodeLookup): ObservedContainer | null {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  if (!ownedBy(labels, instance)) return null;
  const cs = engineStatus(pod);
  const lostPlacement = engineNodeLoss(pod, nodes);
  // Deleted on a lost node (the taint eviction controller after tolerationSeconds): no kubelet confirms it, so the
  // engine may still run there and the Pod reads as the kubelet last left it until the object is gone.
  const phase = lostPlacement && pod.metadata?.deletionTimestamp ? podPhase({ ...pod, metadata: { ...pod.metadata, deletionTimestamp: undefined } }) : podPhase(pod);
  const terminated = cs?.state?.terminated ?? null;
  const last = cs?.lastState?.terminated ?? null;
  const ended = phase === "exited" ? (terminated ?? last) : null;
  const id = stripScheme(cs?.containerID) ?? stripScheme(last?.containerID) ?? `pod:${pod.metadata?.uid ?? pod.metadata?.name}`;
  const podIP = pod.status?.podIP;
  const namespace = pod.metadata?.namespace ?? "";
  return {
    id,
    name: pod.metadata?.name ?? "",
    gameId: labels[POD_LABELS.gameId] as string,
    instance,
    generation: parseGeneration(labels[POD_LABELS.generation]),
    imageRef: annotations[POD_ANNOTATIONS.imageRef] || (wantedImage(pod) ?? ""),
    restartToken: annotations[POD_ANNOTATIONS.restartToken] || null,
    configHash: labels[POD_LABELS.configHash] || null,
    phase,
    restarting: phase === "running" && !runsWantedImage(pod, cs),
    exitCode: ended ? ended.exitCode : null,
    oomKilled: (terminated ?? last)?.reason === "OOMKilled",
    createdAt: toDate(pod.metadata?.creationTimestamp) ?? new Date(0),
    // The container's own start: the Pod's startTime is when the kubelet took the Pod, which an engine that never ran also has.
    startedAt: toDate(cs?.state?.running?.startedAt) ?? toDate(terminated?.startedAt) ?? toDate(last?.startedAt),
    finishedAt: toDate(terminated?.finishedAt) ?? toDate(last?.finishedAt),
    publishedPort: null,
    networkAddresses: podIP && phase === "running" && runsWantedImage(pod, cs) ? { [namespace]: podIP } : {},
    restartCount: engineRestarts(pod, cs),
    ready: isReady(pod, cs),
    restartPolicy: DECLARED_RESTART_POLICY[pod.spec?.restartPolicy ?? "Always"] ?? null,
    lostPlacement,
    problem: engineProblem(pod) ?? imageProblem(pod),
    // Deleted, and the kubelet (or a finalizer) has not let it go: the name stays taken until the watch says it is gone.
    terminating: !!pod.metadata?.deletionTimestamp,
  };
}

/** The engine a stop deleted, kept on the game's Service so the game reads as stopped rather than removed. */
export interface Tombstone {
  id: string;
  imageRef: string;
  generation: number | null;
  configHash: string | null;
  restartToken: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string;
}

export function tombstoneOf(engine: ObservedContainer, finishedAt: Date): Tombstone {
  return {
    id: engine.id,
    imageRef: engine.imageRef,
    generation: engine.generation,
    configHash: engine.configHash,
    restartToken: engine.restartToken,
    createdAt: engine.createdAt.toISOString(),
    startedAt: engine.startedAt?.toISOString() ?? null,
    finishedAt: finishedAt.toISOString(),
  };
}

export function observedFromTombstone(service: V1Service, instance: string): ObservedContainer | null {
  const labels = service.metadata?.labels ?? {};
  const raw = service.metadata?.annotations?.[POD_ANNOTATIONS.stoppedEngine];
  if (!raw || !ownedBy(labels, instance)) return null;
  let t: Tombstone;
  try {
    t = JSON.parse(raw) as Tombstone;
  } catch {
    return null;
  }
  if (typeof t.id !== "string" || typeof t.imageRef !== "string") return null;
  return {
    id: t.id,
    name: service.metadata?.name ?? "",
    gameId: labels[POD_LABELS.gameId] as string,
    instance,
    generation: t.generation ?? null,
    imageRef: t.imageRef,
    restartToken: t.restartToken ?? null,
    configHash: t.configHash ?? null,
    phase: "exited",
    restarting: false,
    exitCode: null,
    oomKilled: false,
    createdAt: new Date(t.createdAt),
    startedAt: toDate(t.startedAt),
    finishedAt: new Date(t.finishedAt),
    publishedPort: null,
    networkAddresses: {},
    restartCount: null,
    ready: false,
    restartPolicy: null,
    lostPlacement: null,
    problem: null,
  };
}
