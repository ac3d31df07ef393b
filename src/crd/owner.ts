/**
 * One owner per game id when several namespaces name it (cluster-wide mode,
 * issue 21): the object rtmanager adopted (its finalizer), else the oldest.
 * A later claimer in another namespace is ignored, so reusing a name cannot
 * freeze or steer another namespace's game; it is never adopted, so its own
 * deletion does not wait on a finalizer. Only two adopted claimers (left by
 * an older version) cannot be told apart.
 */
import type { Logger } from "../log.js";
import { RtmError } from "../model/errors.js";
import type { GameRuntimeObject } from "./api.js";
import { hasFinalizer } from "./gameRuntimeMapping.js";

/** Oldest first; the namespace breaks a tie within the timestamps' one-second resolution, so every replica picks the same. */
function byAge(a: GameRuntimeObject, b: GameRuntimeObject): number {
  const at = (o: GameRuntimeObject) => Date.parse(String(o.metadata.creationTimestamp ?? "")) || 0;
  return at(a) - at(b) || String(a.metadata.namespace).localeCompare(String(b.metadata.namespace));
}

/** Told once per game and set of claimers about each ignored object (the source turns it into a Warning Event). */
export type OwnerConflictListener = (gameId: string, owner: GameRuntimeObject, ignored: GameRuntimeObject) => void;

export class OwnerPicker {
  /** Said once per game and set of claimers, not on every read. */
  private readonly warned = new Map<string, string>();
  onConflict: OwnerConflictListener | null = null;

  constructor(private readonly logger: Logger) {}

  pick(gameId: string, matching: readonly GameRuntimeObject[]): GameRuntimeObject | null {
    if (matching.length <= 1) {
      this.warned.delete(gameId);
      return matching[0] ?? null;
    }
    const adopted = matching.filter(hasFinalizer);
    if (adopted.length > 1) {
      const where = adopted.map((o) => o.metadata.namespace).join(", ");
      throw new RtmError("start_config_invalid", `game ${gameId} is claimed by adopted GameRuntime objects in several namespaces (${where}); delete all but one`, { gameId });
    }
    const owner = adopted[0] ?? [...matching].sort(byAge)[0]!;
    const ignored = matching.filter((o) => o !== owner).map((o) => o.metadata.namespace);
    const key = `${owner.metadata.namespace}:${ignored.join(",")}`;
    if (this.warned.get(gameId) !== key) {
      this.warned.set(gameId, key);
      this.logger.warn({ gameId, owner: owner.metadata.namespace, ignored }, "game id claimed by GameRuntime objects in other namespaces; they are ignored (one owner per game id)");
      for (const o of matching) if (o !== owner) this.onConflict?.(gameId, owner, o);
    }
    return owner;
  }
}
