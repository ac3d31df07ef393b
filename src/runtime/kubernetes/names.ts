/**
 * Names, labels and annotations of the Kubernetes objects of one game. Labels
 * carry what a selector needs (installation, game) and what the reconciler
 * compares (generation, config hash); free text that may not fit a label
 * value (image ref, restart token) goes into annotations.
 */
import { containerName } from "../../model/gameId.js";

export const KEY_PREFIX = "rtmanager.galaxy.io/";
export const POD_LABELS = {
  managed: `${KEY_PREFIX}managed`,
  instance: `${KEY_PREFIX}instance`,
  gameId: `${KEY_PREFIX}game-id`,
  generation: `${KEY_PREFIX}generation`,
  configHash: `${KEY_PREFIX}config-hash`,
} as const;
export const POD_ANNOTATIONS = {
  imageRef: `${KEY_PREFIX}image-ref`,
  restartToken: `${KEY_PREFIX}restart-token`,
  /** On the Service: the engine a stop deleted, so a stopped game still shows as stopped (see tombstone.ts). */
  stoppedEngine: `${KEY_PREFIX}stopped-engine`,
  /** On the claim: when its engine was removed (RTMANAGER_POD_CLAIM_RETENTION counts from it); cleared by a new engine. */
  releasedAt: `${KEY_PREFIX}released-at`,
  /**
   * Set by an in-place image patch: the container the patch replaces and the
   * kubelet's restartCount once the swap's own restart is counted. A
   * container status names the image as the runtime reports it (containerd:
   * the image's first repo tag, registry-qualified, or its id), so "is the
   * new image running" is read from these, never from the image string.
   */
  replacedContainer: `${KEY_PREFIX}replaced-container`,
  restartBaseline: `${KEY_PREFIX}restart-baseline`,
  /** Keeps the cluster autoscaler from evicting a game to scale a node down. */
  safeToEvict: "cluster-autoscaler.kubernetes.io/safe-to-evict",
} as const;

/** The one container of a game's Pod; patches address it by this name. */
export const ENGINE_CONTAINER = "engine";
export const STATE_VOLUME = "state";

/** A Service name is an RFC 1035 label: at most 63 characters. */
export const MAX_SERVICE_NAME = 63;

/** Pod and Service share the engine's stable name, so `engine_endpoint` (http://galaxy-game-{id}:8080) resolves to the Service. */
export function podName(gameId: string): string {
  return containerName(gameId);
}

export function serviceName(gameId: string): string {
  return containerName(gameId);
}

export function claimName(gameId: string): string {
  return `${containerName(gameId)}-state`;
}

/** The longest game id whose Service name still fits (51 with the `galaxy-game-` prefix). */
export const MAX_POD_GAME_ID = MAX_SERVICE_NAME - containerName("").length;

/** Why a game id cannot run as a Pod, or null when it can. */
export function podNameProblem(gameId: string): string | null {
  if (serviceName(gameId).length <= MAX_SERVICE_NAME) return null;
  return (
    `game id ${gameId} is ${gameId.length} characters: its Service ${serviceName(gameId)} would exceed the ${MAX_SERVICE_NAME}-character ` +
    `limit of a Service name (RFC 1035 label), so the Pod runtime accepts game ids of at most ${MAX_POD_GAME_ID} characters`
  );
}

/** Label selector of this installation's objects, optionally of one game. */
export function managedSelector(instance: string, gameId?: string): string {
  const parts = [`${POD_LABELS.managed}=true`, `${POD_LABELS.instance}=${instance}`];
  if (gameId !== undefined) parts.push(`${POD_LABELS.gameId}=${gameId}`);
  return parts.join(",");
}

export function ownedBy(labels: Record<string, string> | undefined, instance: string): boolean {
  return !!labels && labels[POD_LABELS.managed] === "true" && labels[POD_LABELS.instance] === instance && !!labels[POD_LABELS.gameId];
}

/** One game's objects: its namespace and id. */
export interface GameRef {
  namespace: string;
  gameId: string;
}
