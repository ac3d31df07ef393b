/**
 * Who a game id belongs to (issue 21): the first claimer, recorded in the
 * store, for good. Records, events, the operation log and the state
 * directory are keyed by the id alone, so letting the id pass to another
 * claimer would hand it the first owner's data.
 *
 * - `kube`: a GameRuntime; its namespace is the tenant. A GameRuntime of the
 *   same name re-created in the same namespace is the same owner (its uid is
 *   updated), so a re-created game keeps its history.
 * - `rest`, `sql`: a row of the store's declarations table (REST writes in
 *   store mode, or plain SQL). One tenant: whoever may write that table.
 * - `legacy`: a game that had a record or declaration before owners were
 *   recorded (migration 6). A store declaration, or a GameRuntime that an
 *   older build had already adopted (it carries the finalizer), takes it over.
 */
export const OWNER_KINDS = ["kube", "rest", "sql", "legacy"] as const;
export type OwnerKind = (typeof OWNER_KINDS)[number];

export interface GameOwner {
  gameId: string;
  kind: OwnerKind;
  /** `kube` only. */
  namespace: string | null;
  /** `kube` only: the uid of the object that claimed (or last re-claimed) the id. */
  uid: string | null;
  claimedAt: Date;
}

export interface KubeClaim {
  namespace: string;
  uid: string;
  /** The object already carries rtmanager's finalizer: an older build adopted it, so it may take over a `legacy` owner. */
  adopted: boolean;
}

/** The store's record of owners. */
export interface GameOwners {
  /** Records this GameRuntime as the owner unless another owner is recorded; answers the owner recorded afterwards. */
  claimForKube(gameId: string, claim: KubeClaim): Promise<GameOwner>;
  get(gameId: string): Promise<GameOwner | null>;
}

/** Whether a GameRuntime in this namespace is (part of) the recorded owner. */
export function ownedByNamespace(owner: GameOwner, namespace: string): boolean {
  return owner.kind === "kube" && owner.namespace === namespace;
}

/** "namespace games-a" / "a REST declaration": for messages that name the owner. */
export function describeOwner(owner: Pick<GameOwner, "kind" | "namespace">): string {
  switch (owner.kind) {
    case "kube":
      return `a GameRuntime in namespace ${owner.namespace ?? "?"}`;
    case "rest":
      return "a declaration written through the REST API (store source)";
    case "sql":
      return "a declaration written by plain SQL (store source)";
    default:
      return "a game recorded before owners were (migration 6); only the GameRuntime rtmanager adopted then, or a store declaration, takes it over";
  }
}
