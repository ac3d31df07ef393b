/**
 * The status of a GameRuntime that is ignored because another owner holds
 * its game id (owner.ts): a `Conflict` condition naming the owner, Ready
 * False, phase failed, and none of the owner's runtime fields. Written when
 * it differs from what the object shows; the picker reports ignored objects
 * on every read of the id, so a failed write is repaired by the next
 * reconcile of that id (every resync reconciles every id).
 */
import type { Logger } from "../log.js";
import { apiMessageOf } from "../kube/api.js";
import type { Condition, GameRuntimeObject, GameRuntimeStatus } from "./api.js";
import { conflictMessage, type OwnerRef } from "./owner.js";
import type { StatusTarget } from "./statusWriter.js";

export const CONFLICT_REASON = "GameIdOwnedElsewhere";

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Pure: the status an ignored object should carry; lastTransitionTime kept while a condition's status holds. */
export function conflictStatus(obj: GameRuntimeObject, owner: OwnerRef, now: Date): GameRuntimeStatus {
  const generation = obj.metadata.generation ?? 1;
  const message = conflictMessage(obj.metadata.name, owner);
  const previous = new Map((obj.status?.conditions ?? []).map((c) => [c.type, c]));
  const stamp = (c: Omit<Condition, "lastTransitionTime" | "observedGeneration">): Condition => {
    const before = previous.get(c.type);
    const lastTransitionTime = before?.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(now);
    return { ...c, lastTransitionTime, observedGeneration: generation };
  };
  return {
    phase: "failed",
    conditions: [stamp({ type: "Conflict", status: "True", reason: CONFLICT_REASON, message }), stamp({ type: "Ready", status: "False", reason: "Conflict", message })],
  };
}

function shows(obj: GameRuntimeObject, wanted: GameRuntimeStatus): boolean {
  const st = obj.status;
  if (!st || st.phase !== wanted.phase || st.containerId || st.imageRef || st.engineEndpoint) return false;
  const have = st.conditions ?? [];
  if (have.length !== wanted.conditions!.length) return false;
  return wanted.conditions!.every((w) => have.some((h) => h.type === w.type && h.status === w.status && h.reason === w.reason && h.message === w.message && h.observedGeneration === w.observedGeneration));
}

export class ConflictStatusWriter {
  private readonly inFlight = new Set<string>();
  private readonly logger: Logger;

  constructor(
    private readonly target: Pick<StatusTarget, "patchStatus">,
    logger: Logger,
    private readonly clock: () => Date = () => new Date(),
    private readonly hooks: { onWrite?(ref: string): void } = {},
  ) {
    this.logger = logger.child({ component: "kube-conflict-status" });
  }

  /** Fire and forget: no API call when the object already shows the conflict. */
  mark(owner: OwnerRef, ignored: GameRuntimeObject): void {
    const status = conflictStatus(ignored, owner, this.clock());
    const key = `${ignored.metadata.namespace}/${ignored.metadata.name}`;
    if (shows(ignored, status) || this.inFlight.has(key)) return;
    this.inFlight.add(key);
    const body = { status: { ...status, containerId: null, imageRef: null, engineEndpoint: null, health: null, restartCount: null, observedGeneration: null } };
    void this.target
      .patchStatus({ namespace: ignored.metadata.namespace, name: ignored.metadata.name }, body)
      .then((written) => {
        if (written) this.hooks.onWrite?.(key);
      })
      .catch((err: unknown) => this.logger.warn({ object: key, err, apiMessage: apiMessageOf(err) }, "could not write the Conflict status; the next reconcile of the id retries"))
      .finally(() => this.inFlight.delete(key));
  }
}
