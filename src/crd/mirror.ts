/**
 * Kubernetes mode wiring without touching the loop: a StateStore decorator
 * that, after the SQL store took a write, mirrors it onto the GameRuntime
 * object. Records (putRecord) become `.status`; runtime events (appendEvent)
 * become Kubernetes Events. Both are asynchronous: the SQL store stays the
 * source of truth for records, the operation log and the event stream, and a
 * slow or failing API server never slows the loop. A failed status write is
 * retried by the writer; and every record the loop reads (getRecord, once per
 * reconcile) is checked against the object's cached `.status`, so a status
 * left stale (an outage, a restart, another client's write) is repaired
 * without waiting for the record to change.
 */
import type { StateStore } from "../model/ports.js";
import type { NewRuntimeEvent, RuntimeRecord } from "../model/record.js";
import type { GameRuntimeEventRecorder } from "./events.js";
import type { GameRuntimeStatusWriter } from "./statusWriter.js";

export interface KubernetesMirror {
  status?: GameRuntimeStatusWriter;
  events?: GameRuntimeEventRecorder;
}

export function mirrorToKubernetes(state: StateStore, mirror: KubernetesMirror): StateStore {
  const putRecord = async (record: RuntimeRecord): Promise<void> => {
    await state.putRecord(record);
    void mirror.status?.enqueue(record);
  };
  const getRecord = async (gameId: string): Promise<RuntimeRecord | null> => {
    const record = await state.getRecord(gameId);
    if (record && mirror.status) {
      try {
        mirror.status.observe(record);
      } catch {
        // Best effort: the repair check never fails a read.
      }
    }
    return record;
  };
  const appendEvent: StateStore["appendEvent"] = async (event: NewRuntimeEvent) => {
    const stored = await state.appendEvent(event);
    mirror.events?.recordRuntimeEvent(event);
    return stored;
  };
  return new Proxy(state, {
    get(target, prop, receiver) {
      if (prop === "putRecord") return putRecord;
      if (prop === "getRecord") return getRecord;
      if (prop === "appendEvent") return appendEvent;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
