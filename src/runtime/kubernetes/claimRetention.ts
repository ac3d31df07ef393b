/**
 * RTMANAGER_POD_CLAIM_RETENTION: a game's state claim outlives its engine
 * (cleanup keeps it, as Docker keeps state directories) and, when the setting
 * is on, is deleted once it has been released that long.
 *
 * The release time rides on the claim itself (an annotation), so it survives
 * restarts and failovers with no table of its own: set when the engine is
 * removed, cleared when an engine is created for the game again. A claim is
 * only deleted while no Pod of its game exists, and with a resourceVersion
 * precondition, so a start that cleared the annotation in the meantime wins.
 */
import type { CoreV1Api, V1PersistentVolumeClaim } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { isStatus, type KubeCalls } from "../../kube/calls.js";
import { claimName, managedSelector, ownedBy, POD_ANNOTATIONS, POD_LABELS } from "./names.js";

export interface ClaimRef {
  namespace: string;
  gameId: string;
}

const mergePatch = () => setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** When the claim was released, or null while an engine holds it (or never was released). Pure. */
export function releasedAt(claim: V1PersistentVolumeClaim): Date | null {
  const raw = claim.metadata?.annotations?.[POD_ANNOTATIONS.releasedAt];
  const at = raw ? new Date(raw) : null;
  return at && !Number.isNaN(at.getTime()) ? at : null;
}

export class ClaimRetention {
  constructor(
    private readonly core: CoreV1Api,
    private readonly calls: KubeCalls,
    private readonly instance: string,
    /** null: all namespaces. */
    private readonly listNamespace: string | null,
  ) {}

  /** Marks the game's claim released now; a claim already gone is fine. */
  release(ref: ClaimRef, at: Date): Promise<void> {
    return this.annotate(ref, at.toISOString(), "remove");
  }

  /** A new engine holds the claim again. */
  hold(ref: ClaimRef): Promise<void> {
    return this.annotate(ref, null, "start");
  }

  /**
   * Deletes the claims of this installation released before `olderThan`
   * whose game has no Pod (`hasPod`); returns the games whose claim went.
   */
  async prune(olderThan: Date, hasPod: (ref: ClaimRef) => boolean): Promise<string[]> {
    const labelSelector = managedSelector(this.instance);
    const ns = this.listNamespace;
    const list = await this.calls.run("list", "listing state claims", () =>
      ns === null ? this.core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }) : this.core.listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector }),
    );
    const deleted: string[] = [];
    for (const claim of list.items) {
      const gameId = claim.metadata?.labels?.[POD_LABELS.gameId];
      const namespace = claim.metadata?.namespace ?? "";
      const at = releasedAt(claim);
      if (!gameId || !ownedBy(claim.metadata?.labels, this.instance) || !at || at >= olderThan || hasPod({ namespace, gameId })) continue;
      try {
        await this.calls.run("remove", `deleting state claim ${claimName(gameId)}`, () =>
          this.core.deleteNamespacedPersistentVolumeClaim({ name: claimName(gameId), namespace, body: { preconditions: { resourceVersion: claim.metadata?.resourceVersion } } }),
        );
        deleted.push(gameId);
      } catch (err) {
        // Gone already, or changed since the list (a start held it again): not ours to delete now.
        if (!isStatus(err, 404) && !isStatus(err, 409)) throw err;
      }
    }
    return deleted;
  }

  private async annotate(ref: ClaimRef, value: string | null, operation: string): Promise<void> {
    const body = { metadata: { annotations: { [POD_ANNOTATIONS.releasedAt]: value } } };
    try {
      await this.calls.run(operation, `marking state claim ${claimName(ref.gameId)}`, () =>
        this.core.patchNamespacedPersistentVolumeClaim({ name: claimName(ref.gameId), namespace: ref.namespace, body }, mergePatch()),
      );
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
  }
}
