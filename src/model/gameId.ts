import { z } from "zod";
import { ENGINE_PORT } from "./engine.js";

/**
 * A game id becomes a container name (`galaxy-game-{id}`), a directory name
 * (`{state_root}/{id}`), a network alias and, in Kubernetes mode, an object
 * name. The narrowest of those is a DNS-1123 label, so that is the rule:
 * 1 to 63 characters, lowercase letters, digits and '-', starting and ending
 * with a letter or digit. No '/', '.', '..', whitespace or control characters
 * can pass, so the id can never escape the state root.
 */
export const GAME_ID_MAX_LENGTH = 63;
export const GAME_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const GameIdSchema = z
  .string()
  .min(1, "game_id must not be empty")
  .max(GAME_ID_MAX_LENGTH, `game_id must be at most ${GAME_ID_MAX_LENGTH} characters`)
  .regex(
    GAME_ID_PATTERN,
    "game_id must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit",
  );

export type GameId = z.infer<typeof GameIdSchema>;

export const CONTAINER_NAME_PREFIX = "galaxy-game-";

export function containerName(gameId: string): string {
  return `${CONTAINER_NAME_PREFIX}${gameId}`;
}

export function engineEndpoint(gameId: string): string {
  return `http://${containerName(gameId)}:${ENGINE_PORT}`;
}
