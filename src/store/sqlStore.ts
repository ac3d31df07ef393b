import type { Declaration } from "../model/declaration.js";
import type { Fence, LeaderFencing } from "../model/fence.js";
import type { DeclarationMutator, DeclarationSource, DeclarationWatch, EventQuery, StateStore, WriteMeta } from "../model/ports.js";
import type { NewOperation, NewRuntimeEvent, OperationEntry, OperationResult, RuntimeEvent, RuntimeRecord } from "../model/record.js";
import * as declarations from "./declarationSql.js";
import { advanceEpoch, currentEpoch, fencedWrite } from "./fenceSql.js";
import * as history from "./historySql.js";
import { DECLARATIONS_CHANNEL, RECORDS_CHANNEL } from "./tables.js";
import * as records from "./recordSql.js";
import { silentLogger, type SqlClient, type SqlQueryable, type StoreLogger } from "./sqlClient.js";
import { SqlLease } from "./sqlLease.js";

export { DEFAULT_EVENT_LIMIT, INTERRUPTED_MESSAGE } from "./historySql.js";

export interface RecordWatch {
  onChange(gameId: string): void;
  onResync?(): void;
}

export interface SqlStoreOptions {
  logger?: StoreLogger;
}

/**
 * The SQL store over either backend: desired state (declarations), observed
 * state (records), the operation log, the event stream and leases. The SQL of
 * each table lives in its own module; this class is the ports' face of it.
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

  get(gameId: string): Promise<Declaration | null> {
    return declarations.getDeclaration(this.client, gameId);
  }

  listGameIds(): Promise<string[]> {
    return declarations.listGameIds(this.client);
  }

  listGenerations(): Promise<Map<string, number>> {
    return declarations.listGenerations(this.client);
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

  getRecord(gameId: string): Promise<RuntimeRecord | null> {
    return records.getRecord(this.client, gameId);
  }

  listRecords(): Promise<RuntimeRecord[]> {
    return records.listRecords(this.client);
  }

  putRecord(record: RuntimeRecord, fence?: Fence): Promise<void> {
    return this.write(fence, `record of ${record.gameId}`, (db) => records.putRecord(db, record));
  }

  /** Not part of StateStore: retention of records whose runtime is long gone. */
  deleteRecord(gameId: string): Promise<boolean> {
    return records.deleteRecord(this.client, gameId);
  }

  // ----------------------------------------------------------- operation log

  startOperation(op: NewOperation, fence?: Fence): Promise<number> {
    return this.write(fence, `operation ${op.kind} of ${op.gameId}`, (db) => history.startOperation(db, op));
  }

  finishOperation(id: number, result: OperationResult, fence?: Fence): Promise<void> {
    return this.write(fence, `end of operation ${id}`, (db) => history.finishOperation(db, id, result));
  }

  /** Newest first. */
  listOperations(gameId: string, limit?: number): Promise<OperationEntry[]> {
    return history.listOperations(this.client, gameId, limit);
  }

  /**
   * Call only where no other process can be running operations (the leader,
   * right after taking the lease): every `running` row is taken for dead.
   */
  markInterruptedOperations(fence?: Fence): Promise<OperationEntry[]> {
    return this.write(fence, "interrupted operations", (db) => history.markInterruptedOperations(db));
  }

  /** Not part of StateStore: retention, one batch of at most `limit` rows. Running operations are kept. */
  pruneOperations(olderThan: Date, limit?: number): Promise<number> {
    return history.pruneOperations(this.client, olderThan, limit);
  }

  // ------------------------------------------------------------------ events

  appendEvent(event: NewRuntimeEvent, fence?: Fence): Promise<RuntimeEvent> {
    if (!fence) return history.appendEvent(this.client, event);
    return fencedWrite(this.client, fence, `event ${event.type} of ${event.gameId}`, this.logger, (tx) => history.insertEvent(tx, event));
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

  /** A write with a fence runs in a transaction that checks it first; without one, as it is. */
  private write<T>(fence: Fence | undefined, what: string, write: (db: SqlQueryable) => Promise<T>): Promise<T> {
    return fence ? fencedWrite(this.client, fence, what, this.logger, write) : write(this.client);
  }
}
