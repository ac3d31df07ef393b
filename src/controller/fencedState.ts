/**
 * The state store as the leader's loop sees it: every write carries the epoch
 * this replica got when it started leading (src/model/fence.ts), so the store
 * refuses it once a newer leader has taken over. Reads pass through. A refused
 * write rejects with FencedWriteError after `onRefused` has seen it; the
 * caller's `await` never reaches what follows the write (the record observer,
 * waiters, the record cache, a Kubernetes status), so nothing of a former
 * leader's term is applied or announced. A call's options (the reconcile's
 * signal) pass through to the store.
 */
import { isFencedWrite, type Fence, type FencedWriteError } from "../model/fence.js";
import type { EveryMember } from "../model/members.js";
import type { StateStore } from "../model/ports.js";

export function fencedState(state: StateStore, currentFence: () => Fence | null, onRefused: (err: FencedWriteError) => void): StateStore {
  const fence = () => currentFence() ?? undefined;
  const refused = (err: unknown): never => {
    if (isFencedWrite(err)) onRefused(err);
    throw err;
  };
  const decorated: EveryMember<StateStore> = {
    ping: () => state.ping(),
    close: () => state.close(),
    getRecord: (gameId, options) => state.getRecord(gameId, options),
    listRecords: () => state.listRecords(),
    putRecord: (record, _fence, options) => state.putRecord(record, fence(), options).catch(refused),
    startOperation: (op, _fence, options) => state.startOperation(op, fence(), options).catch(refused),
    finishOperation: (id, result, _fence, options) => state.finishOperation(id, result, fence(), options).catch(refused),
    listOperations: (gameId, limit) => state.listOperations(gameId, limit),
    // Keyed by the REST op id, written before any fenced row: no fence to carry.
    recordTrace: state.recordTrace?.bind(state),
    markInterruptedOperations: () => state.markInterruptedOperations(fence()).catch(refused),
    appendEvent: (event, _fence, options) => state.appendEvent(event, fence(), options).catch(refused),
    eventsAfter: (seq, query) => state.eventsAfter(seq, query),
    eventBounds: () => state.eventBounds(),
    commitReconcile: (commit, _fence, options) => state.commitReconcile(commit, fence(), options).catch(refused),
  };
  return decorated;
}
