/**
 * The state store as the leader's loop sees it: every write carries the epoch
 * this replica got when it started leading (src/model/fence.ts), so the store
 * refuses it once a newer leader has taken over. Reads pass through. A refused
 * write rejects with FencedWriteError after `onRefused` has seen it; the
 * caller's `await` never reaches what follows the write (the record observer,
 * waiters, the record cache, a Kubernetes status), so nothing of a former
 * leader's term is applied or announced.
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
    getRecord: (gameId) => state.getRecord(gameId),
    listRecords: () => state.listRecords(),
    putRecord: (record) => state.putRecord(record, fence()).catch(refused),
    startOperation: (op) => state.startOperation(op, fence()).catch(refused),
    finishOperation: (id, result) => state.finishOperation(id, result, fence()).catch(refused),
    listOperations: (gameId, limit) => state.listOperations(gameId, limit),
    markInterruptedOperations: () => state.markInterruptedOperations(fence()).catch(refused),
    appendEvent: (event) => state.appendEvent(event, fence()).catch(refused),
    eventsAfter: (seq, query) => state.eventsAfter(seq, query),
    eventBounds: () => state.eventBounds(),
    commitReconcile: (commit) => state.commitReconcile(commit, fence()).catch(refused),
  };
  return decorated;
}
