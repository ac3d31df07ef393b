/**
 * Kubernetes mode mirrors what the loop does onto the GameRuntime objects,
 * asynchronously: the SQL store stays the source of truth for records, the
 * operation log and the event stream, and a slow or failing API server never
 * slows the loop.
 *
 * - Every record the loop writes becomes `.status` through the loop's own
 *   observer (`onRecord`, as the app's record cache and metrics see it).
 * - Every record the loop reads (getRecord, at the start of each reconcile)
 *   is checked against the object's `.status` in the source's store, so a
 *   status left stale (an outage, a restart, another client's write) is
 *   repaired without waiting for the record to change, and a new generation
 *   shows `Reconciling` as soon as the loop takes it up.
 * - Every runtime event the loop appends becomes a Kubernetes Event.
 * The last two wrap those two methods of the state store explicitly; every
 * other method is the store's own.
 */
import type { EveryMember } from "../model/members.js";
import type { StateStore } from "../model/ports.js";
import type { NewRuntimeEvent, RuntimeRecord } from "../model/record.js";
import type { GameRuntimeEventRecorder } from "./events.js";
import type { GameRuntimeStatusWriter } from "./statusWriter.js";

/** Whatever the loop tells of each record it writes (the controller's ReconcileObserver has this shape). */
export interface RecordObserver {
  onRecord?(record: RuntimeRecord): void;
}

/** `hooks`, plus a status write queued for every record the loop writes. */
export function withStatusMirror<H extends RecordObserver>(hooks: H, status: GameRuntimeStatusWriter): H {
  return {
    ...hooks,
    onRecord: (record: RuntimeRecord) => {
      hooks.onRecord?.(record);
      void status.enqueue(record);
    },
  };
}

export interface KubernetesMirror {
  status?: GameRuntimeStatusWriter;
  events?: GameRuntimeEventRecorder;
}

/** The state store, with records read checked against `.status` and appended events recorded as Kubernetes Events. */
export function withKubernetesMirror(state: StateStore, mirror: KubernetesMirror): StateStore {
  const decorated: EveryMember<StateStore> = {
    ping: () => state.ping(),
    close: () => state.close(),
    getRecord: async (gameId) => {
      const record = await state.getRecord(gameId);
      if (record && mirror.status) {
        try {
          mirror.status.observe(record);
        } catch {
          // Best effort: the repair check never fails a read.
        }
      }
      return record;
    },
    listRecords: () => state.listRecords(),
    putRecord: (record, fence) => state.putRecord(record, fence),
    startOperation: (op, fence) => state.startOperation(op, fence),
    finishOperation: (id, result, fence) => state.finishOperation(id, result, fence),
    listOperations: (gameId, limit) => state.listOperations(gameId, limit),
    recordTrace: state.recordTrace?.bind(state),
    markInterruptedOperations: (fence) => state.markInterruptedOperations(fence),
    appendEvent: async (event: NewRuntimeEvent, fence) => {
      // After the write: a refused (fenced) event must not become a Kubernetes Event either.
      const stored = await state.appendEvent(event, fence);
      mirror.events?.recordRuntimeEvent(event);
      return stored;
    },
    eventsAfter: (seq, query) => state.eventsAfter(seq, query),
    eventBounds: () => state.eventBounds(),
    commitReconcile: async (commit, fence) => {
      const stored = await state.commitReconcile(commit, fence);
      for (const event of commit.events) mirror.events?.recordRuntimeEvent(event);
      return stored;
    },
  };
  return decorated;
}
