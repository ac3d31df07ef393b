import { ENGINE_PORT as ENGINE_HTTP_PORT } from "../../model/engine.js";
import type { EngineSpec } from "../../model/ports.js";

/**
 * Container labels are the adapter's only memory: after a restart of the
 * controller (or of dockerd) everything it knows about a container is read
 * back from them, so they carry every field the reconciler compares.
 */
export const LABEL_PREFIX = "com.galaxy.rtmanager.";
export const LABELS = {
  managed: `${LABEL_PREFIX}managed`,
  instance: `${LABEL_PREFIX}instance`,
  gameId: `${LABEL_PREFIX}game-id`,
  generation: `${LABEL_PREFIX}generation`,
  imageRef: `${LABEL_PREFIX}image-ref`,
  restartToken: `${LABEL_PREFIX}restart-token`,
  configHash: `${LABEL_PREFIX}config-hash`,
  /** Digest of the engine hardening it was created with: shows which engines predate a settings change. */
  hardening: `${LABEL_PREFIX}hardening`,
} as const;

/** Mount point of the game's state directory inside the engine. */
export const GAME_STATE_PATH = "/var/lib/galaxy-game";
/** The engine port as Docker names it in port maps. */
export const ENGINE_PORT = `${ENGINE_HTTP_PORT}/tcp`;

export function specLabels(spec: EngineSpec, instance: string): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.managed]: "true",
    [LABELS.instance]: instance,
    [LABELS.gameId]: spec.gameId,
    [LABELS.generation]: String(spec.generation),
    [LABELS.imageRef]: spec.imageRef,
    [LABELS.configHash]: spec.configHash,
  };
  if (spec.restartToken !== null) labels[LABELS.restartToken] = spec.restartToken;
  return labels;
}

/** Docker label filters (ANDed) selecting this installation's containers, optionally of one game. */
export function labelFilters(instance: string, gameId?: string): string[] {
  const filters = [`${LABELS.managed}=true`, `${LABELS.instance}=${instance}`];
  if (gameId !== undefined) filters.push(`${LABELS.gameId}=${gameId}`);
  return filters;
}

/** True when the labels say this installation owns the container. */
export function ownedBy(labels: Record<string, string> | null | undefined, instance: string): boolean {
  return !!labels && labels[LABELS.managed] === "true" && labels[LABELS.instance] === instance && !!labels[LABELS.gameId];
}
