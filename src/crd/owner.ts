/**
 * One owner per game id (issue 21). Records, events, the operation log and
 * the state directory are keyed by the id alone, so an id belongs to its
 * first claimer for good: the owner recorded in the store (game_owners,
 * src/store/ownerSql.ts) when a GameRuntime is adopted. A GameRuntime in
 * another namespace is ignored, also after the owner's deletion (the old
 * records and state stay the old owner's; docs/kubernetes.md says how an
 * operator releases an id). Ignored objects are never adopted, so their own
 * deletion does not wait on a finalizer.
 *
 * Before an owner is recorded (first sight, or no store wired) the object
 * rtmanager adopted (its finalizer) is picked, else the oldest, and that one
 * is claimed. Only two adopted claimers (left by an older version) cannot be
 * told apart.
 */
import type { Logger } from "../log.js";
import { RtmError } from "../model/errors.js";
import { describeOwner, ownedByNamespace, type GameOwner, type GameOwners } from "../model/owner.js";
import type { GameRuntimeObject } from "./api.js";
import { hasFinalizer, isDeleting } from "./gameRuntimeMapping.js";

/** Who holds an id, as told to an ignored object. `present`: the owner's object exists now. */
export interface OwnerRef {
  kind: GameOwner["kind"];
  namespace: string | null;
  present: boolean;
}

/** What an ignored object is told (its Conflict condition and Warning Event): who holds the id, and that nothing of it changes. */
export function conflictMessage(gameId: string, owner: OwnerRef): string {
  const holder = owner.kind === "kube" ? `GameRuntime ${owner.namespace ?? "?"}/${gameId} (namespace ${owner.namespace ?? "?"})` : describeOwner(owner);
  const kept = owner.present ? "" : "; the id stays with that owner after its deletion, with its records, events and state";
  return `game id ${gameId} belongs to ${holder}${kept}. This object is ignored and changes nothing: pick another name`;
}

/** Oldest first; the namespace breaks a tie within the timestamps' one-second resolution, so every replica picks the same. */
function byAge(a: GameRuntimeObject, b: GameRuntimeObject): number {
  const at = (o: GameRuntimeObject) => Date.parse(String(o.metadata.creationTimestamp ?? "")) || 0;
  return at(a) - at(b) || String(a.metadata.namespace).localeCompare(String(b.metadata.namespace));
}

/** Told about each ignored object: `onConflict` once per game and set of claimers (a Warning Event), `onIgnored` on every pick (the status writer compares first). */
export type OwnerConflictListener = (gameId: string, owner: OwnerRef, ignored: GameRuntimeObject) => void;

export class OwnerPicker {
  private readonly warned = new Map<string, string>();
  /** Owners read from or written to the store. An owner never changes, so a hit needs no query. */
  private readonly recorded = new Map<string, GameOwner>();
  onConflict: OwnerConflictListener | null = null;
  onIgnored: OwnerConflictListener | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly registry: GameOwners | null = null,
  ) {}

  recordedOwner(gameId: string): GameOwner | undefined {
    return this.recorded.get(gameId);
  }

  /** Reads the recorded owner from the store unless known. */
  async load(gameId: string): Promise<void> {
    if (!this.registry || this.recorded.has(gameId)) return;
    const owner = await this.registry.get(gameId);
    if (owner) this.recorded.set(gameId, owner);
  }

  /**
   * Claims the id for the object that would own it, unless the recorded
   * owner is there already (same namespace and uid). A claim that loses
   * learns the owner, so the claimer is ignored from then on; it also runs
   * again on every reconcile of a conflicted id, so an id an operator
   * released is taken without a restart.
   */
  async claim(gameId: string, matching: readonly GameRuntimeObject[]): Promise<void> {
    if (!this.registry) return;
    const live = matching.filter((o) => !isDeleting(o));
    const recorded = this.recorded.get(gameId);
    if (recorded && live.some((o) => ownedByNamespace(recorded, o.metadata.namespace) && o.metadata.uid === recorded.uid)) return;
    const candidate = (recorded && recorded.kind === "kube" && live.find((o) => ownedByNamespace(recorded, o.metadata.namespace))) || this.unrecordedPick(gameId, live);
    if (!candidate?.metadata.uid) return;
    const owner = await this.registry.claimForKube(gameId, { namespace: candidate.metadata.namespace, uid: candidate.metadata.uid, adopted: hasFinalizer(candidate) });
    this.recorded.set(gameId, owner);
    if (!ownedByNamespace(owner, candidate.metadata.namespace)) {
      this.logger.warn({ gameId, namespace: candidate.metadata.namespace, owner: owner.kind, ownerNamespace: owner.namespace }, "game id claim refused: another owner is recorded");
    }
  }

  /** A new object for the id would go to `namespace`: refused when another owner holds it (a created object carries the finalizer, so a legacy id is its to take). */
  assertCreatable(gameId: string, namespace: string): void {
    const owner = this.recorded.get(gameId);
    if (!owner || owner.kind === "legacy" || ownedByNamespace(owner, namespace)) return;
    throw new RtmError(
      "conflict",
      `game id ${gameId} belongs to ${describeOwner(owner)}, which keeps its records and state; it cannot be created in namespace ${namespace} (one owner per game id)`,
      { gameId },
    );
  }

  pick(gameId: string, matching: readonly GameRuntimeObject[]): GameRuntimeObject | null {
    const recorded = this.recorded.get(gameId);
    let owner: GameRuntimeObject | null;
    if (recorded && recorded.kind !== "legacy") owner = matching.find((o) => ownedByNamespace(recorded, o.metadata.namespace)) ?? null;
    else owner = this.unrecordedPick(gameId, matching, recorded !== undefined);
    const ignored = matching.filter((o) => o !== owner);
    if (ignored.length === 0) {
      this.warned.delete(gameId);
      return owner;
    }
    const ref: OwnerRef = owner
      ? { kind: "kube", namespace: owner.metadata.namespace, present: true }
      : { kind: recorded?.kind ?? "legacy", namespace: recorded?.namespace ?? null, present: false };
    const key = `${ref.kind}:${ref.namespace}:${ignored.map((o) => o.metadata.namespace).join(",")}`;
    if (this.warned.get(gameId) !== key) {
      this.warned.set(gameId, key);
      this.logger.warn({ gameId, owner: ref, ignored: ignored.map((o) => o.metadata.namespace) }, "game id claimed by GameRuntime objects that do not own it; they are ignored (one owner per game id)");
      for (const o of ignored) this.onConflict?.(gameId, ref, o);
    }
    for (const o of ignored) this.onIgnored?.(gameId, ref, o);
    return owner;
  }

  /** No owner recorded: the adopted object, else the oldest. A legacy owner goes only to the object an older build adopted. */
  private unrecordedPick(gameId: string, matching: readonly GameRuntimeObject[], legacy = false): GameRuntimeObject | null {
    const adopted = matching.filter(hasFinalizer);
    if (adopted.length > 1) {
      const where = adopted.map((o) => o.metadata.namespace).join(", ");
      throw new RtmError("start_config_invalid", `game ${gameId} is claimed by adopted GameRuntime objects in several namespaces (${where}); delete all but one`, { gameId });
    }
    if (legacy) return adopted[0] ?? null;
    return adopted[0] ?? [...matching].sort(byAge)[0] ?? null;
  }
}
