import { raceAbort, throwIfAborted } from "../model/abort.js";
import type { Declaration } from "../model/declaration.js";
import type { Fence, LeaderFencing } from "../model/fence.js";
import { RtmError } from "../model/errors.js";
import type { CallOptions, DeclarationMutator, DeclarationSource, DeclarationWatch, EventQuery, ReconcileCommit, StateStore, WriteMeta } from "../model/ports.js";
import type { NewOperation, NewRuntimeEvent, OperationEntry, OperationResult, RuntimeEvent, RuntimeRecord } from "../model/record.js";
import * as declarations from "./declarationSql.js";
import { advanceEpoch, currentEpoch, refuseIfStale } from "./fenceSql.js";
import * as history from "./historySql.js";
import * as traces from "./traceSql.js";
import { DECLARATIONS_CHANNEL, RECORDS_CHANNEL } from "./tables.js";
import * as reconcile from "./reconcileSql.js";
import * as records from "./recordSql.js";
import { silentLogger, type SqlClient, type StoreLogger } from "./sqlClient.js";
import { SqlLease } from "./sqlLease.js";

export { DEFAULT_EVENT_LIMIT, INTERRUPTED_MESSAGE } from "./historySql.js";

export interface RecordWatch {
  onChange(gameId: string): void;
  onResync?(): void;
}

export interface SqlStoreOptions {
  logger?: StoreLogger;
}

/** `work`, unless `options.signal` has fired; it stops waiting for `work` when the signal fires (see SqlStore). */
function abortable<T>(options: CallOptions | undefined, work: () => Promise<T>): Promise<T> {
  const signal = options?.signal;
  if (!signal) return work();
  try {
    throwIfAborted(signal);
  } catch (err) {
    return Promise.reject(err);
  }
  return raceAbort(work(), signal);
}

/**
 * The SQL store over either backend: desired state (declarations), observed
 * state (records), the operation log, the event stream and leases. The SQL of
 * each table lives in its own module; this class is the ports' face of it.
 *
 * A call given a signal (a reconcile's: lost leadership, shutdown) sends
 * nothing once it has fired, and stops waiting when it fires: every write is
 * one statement, which neither node-postgres nor PGlite can call back once
 * sent, so its result is ignored. A fenced write that lands anyway is a
 * write the epoch allowed (this replica's term had not been taken over), and
 * the next leader's reconcile reads it like any other.
 */
export class SqlStore implements StateStore, DeclarationSource {
  private readonly logger: StoreLogger;
  private closed = false;

  constructor(
    private readonly client: SqlClient,
    options: SqlStoreOptions = {},
  ) {
    this.logger = options.logger ?? silentLogger;
  }

  /** The underlying client, for plain SQL (tests, admin tooling). */
  get sql(): SqlClient {
    return this.client;
  }

  get backend(): SqlClient["backend"] {
    return this.client.backend;
  }

  get description(): string {
    return this.client.description;
  }

  async ping(): Promise<void> {
    await this.client.query("SELECT 1");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
    this.logger.debug({ db: this.client.description }, "store closed");
  }

  // ------------------------------------------------------------ declarations

  get(gameId: string, options?: CallOptions): Promise<Declaration | null> {
    return abortable(options, () => declarations.getDeclaration(this.client, gameId));
  }

  listGameIds(): Promise<string[]> {
    return declarations.listGameIds(this.client);
  }

  listGenerations(): Promise<Map<string, number>> {
    return declarations.listGenerations(this.client);
  }

  listDeclarations(): Promise<Map<string, Declaration | RtmError>> {
    return declarations.listDeclarations(this.client);
  }

  /**
   * A stored row the schema refuses makes this throw start_config_invalid
   * before `mutate` is called: the mutator's contract has no way to say
   * "replace whatever is there", so the row must be fixed where it was
   * written (plain SQL).
   */
  mutate(gameId: string, mutate: DeclarationMutator, meta: WriteMeta): Promise<{ declaration: Declaration | null; changed: boolean }> {
    return declarations.mutateDeclaration(this.client, gameId, mutate, meta);
  }

  delete(gameId: string): Promise<boolean> {
    return declarations.deleteDeclaration(this.client, gameId);
  }

  /**
   * Subscribe before listing: a change between the list and the subscription
   * would otherwise be missed. `onResync` fires (pg only) after the listening
   * connection came back from a loss, once it is listening again.
   */
  watch(handler: DeclarationWatch): Promise<() => Promise<void>> {
    return this.listenForGames(DECLARATIONS_CHANNEL, handler);
  }

  /** Record writes by any replica, for REST waiters that did not do the write themselves. */
  watchRecords(handler: RecordWatch): Promise<() => Promise<void>> {
    return this.listenForGames(RECORDS_CHANNEL, handler);
  }

  /** Both channels carry a game id as their payload. */
  private listenForGames(channel: string, handler: RecordWatch): Promise<() => Promise<void>> {
    return this.client.listen(channel, {
      onNotify: (gameId) => handler.onChange(gameId),
      onResync: () => handler.onResync?.(),
    });
  }

  // ----------------------------------------------------------------- records

  getRecord(gameId: string, options?: CallOptions): Promise<RuntimeRecord | null> {
    return abortable(options, () => records.getRecord(this.client, gameId));
  }

  listRecords(): Promise<RuntimeRecord[]> {
    return records.listRecords(this.client);
  }

  putRecord(record: RuntimeRecord, fence?: Fence, options?: CallOptions): Promise<void> {
    return abortable(options, async () => {
      if (await records.putRecord(this.client, record, fence)) return;
      await this.refused(fence, `record of ${record.gameId}`);
    });
  }

  /** Not part of StateStore: retention of records whose runtime is long gone. */
  deleteRecord(gameId: string): Promise<boolean> {
    return records.deleteRecord(this.client, gameId);
  }

  // ----------------------------------------------------------- operation log

  startOperation(op: NewOperation, fence?: Fence, options?: CallOptions): Promise<number> {
    return abortable(options, async () => {
      const id = await history.startOperation(this.client, op, fence);
      return id ?? this.refused(fence, `operation ${op.kind} of ${op.gameId}`);
    });
  }

  finishOperation(id: number, result: OperationResult, fence?: Fence, options?: CallOptions): Promise<void> {
    return abortable(options, async () => {
      if (await history.finishOperation(this.client, id, result, fence)) return;
      await this.refusedOrMissing(fence, `end of operation ${id}`, id);
    });
  }

  /** Newest first. */
  recordTrace(opId: string, traceParent: string): Promise<void> {
    return traces.recordTrace(this.client, opId, traceParent);
  }

  listOperations(gameId: string, limit?: number): Promise<OperationEntry[]> {
    return history.listOperations(this.client, gameId, limit);
  }

  /**
   * Call only where no other process can be running operations (the leader,
   * right after taking the lease): every `running` row is taken for dead.
   */
  async markInterruptedOperations(fence?: Fence): Promise<OperationEntry[]> {
    const rows = await history.markInterruptedOperations(this.client, fence);
    if (rows.length === 0 && fence) await refuseIfStale(this.client, fence, "interrupted operations", this.logger);
    return rows;
  }

  /** Not part of StateStore: retention, one batch of at most `limit` rows. Running operations are kept. */
  pruneOperations(olderThan: Date, limit?: number): Promise<number> {
    return history.pruneOperations(this.client, olderThan, limit);
  }

  // ------------------------------------------------------------------ events

  appendEvent(event: NewRuntimeEvent, fence?: Fence, options?: CallOptions): Promise<RuntimeEvent> {
    return abortable(options, async () => {
      const stored = await history.appendEvent(this.client, event, fence);
      return stored ?? this.refused(fence, `event ${event.type} of ${event.gameId}`);
    });
  }

  eventsAfter(seq: number, query?: EventQuery): Promise<RuntimeEvent[]> {
    return history.eventsAfter(this.client, seq, query);
  }

  eventBounds(): Promise<{ oldest: number | null; latest: number | null }> {
    return history.eventBounds(this.client);
  }

  /** Not part of StateStore: retention, one batch of at most `limit` events (a prefix of the log; the newest is kept). */
  pruneEvents(olderThan: Date, limit?: number): Promise<number> {
    return history.pruneEvents(this.client, olderThan, limit);
  }

  // ------------------------------------------------------------------ leases

  /** The lease row `name` (one per installation), for leader election. */
  lease(name: string): SqlLease {
    return new SqlLease(this.client, name);
  }

  // ---------------------------------------------------------------- fencing

  /** The installation's epoch row `name` (src/store/fenceSql.ts), whichever lease elects the leader. */
  fencing(name: string): LeaderFencing & { current(): Promise<number | null> } {
    return {
      advance: (holder) => advanceEpoch(this.client, name, holder),
      current: () => currentEpoch(this.client, name),
    };
  }

  // -------------------------------------------------------------- reconcile

  commitReconcile(commit: ReconcileCommit, fence?: Fence, options?: CallOptions): Promise<RuntimeEvent[]> {
    return abortable(options, async () => {
      const { ok, events } = await reconcile.commitReconcile(this.client, commit, fence);
      if (ok) return events;
      const gameId = commit.record?.gameId ?? commit.events[0]?.gameId ?? "a game";
      return this.refusedOrMissing(fence, `reconcile outcome of ${gameId}`, commit.finishOperation?.id ?? null);
    });
  }

  /** A fenced write that wrote nothing: only a stale fence explains it (see fenceSql.ts). */
  private async refused(fence: Fence | undefined, what: string): Promise<never> {
    if (fence) await refuseIfStale(this.client, fence, what, this.logger);
    throw new RtmError("internal_error", `${what}: the store wrote nothing and gave no reason`);
  }

  /** A write of an operation-log row that wrote nothing: a stale fence, else the row is not there. */
  private async refusedOrMissing(fence: Fence | undefined, what: string, id: number | null): Promise<never> {
    if (fence) await refuseIfStale(this.client, fence, what, this.logger);
    if (id !== null) throw history.operationNotFound(id);
    throw new RtmError("internal_error", `${what}: the store wrote nothing and gave no reason`);
  }
}
