/**
 * The interfaces the controller depends on. Adapters (src/store, src/runtime,
 * src/crd) implement them; the controller never imports an adapter.
 */
import type { Declaration, RuntimeSpec } from "./declaration.js";
import type {
  NewOperation,
  NewRuntimeEvent,
  OperationEntry,
  OperationResult,
  RuntimeEvent,
  RuntimeRecord,
} from "./record.js";
import type { RtmError } from "./errors.js";
import type { Fence } from "./fence.js";
import type { OpSource, RestartPolicy } from "./status.js";
import type { RuntimeFailureKind } from "./runtimeFailure.js";

/**
 * Options of one runtime or store call. `signal` fires when the reconcile that
 * makes the call must stop (lost leadership, shutdown: src/model/abort.ts):
 * the call stops waiting and rejects with an AbortedError.
 */
export interface CallOptions {
  signal?: AbortSignal;
}

export type RemoveOptions = CallOptions & { /** A replace's remove: a new engine follows (RuntimePort.remove). */ succeeded?: boolean };
export interface WriteMeta {
  opId: string;
  opSource: OpSource;
}

/**
 * Decides the next spec from the current declaration (null when there is
 * none). Return null to leave things as they are (an idempotent replay), or
 * throw an RtmError to refuse; either way nothing is written.
 */
export type DeclarationMutator = (current: Declaration | null) => RuntimeSpec | null;

export interface DeclarationWatch {
  /** A declaration of this game was written or deleted. */
  onChange(gameId: string): void;
  /** The watch was (re)established after a gap: everything must be re-listed. */
  onResync(): void;
}

/** Where desired state lives: the declarations table, or GameRuntime objects. */
export interface DeclarationSource {
  /** Throws RtmError('start_config_invalid') for a stored row that fails the schema. */
  get(gameId: string, options?: CallOptions): Promise<Declaration | null>;
  listGameIds(): Promise<string[]>;
  /**
   * Every declaration's generation in one read. Optional: with it a periodic
   * resync skips games already converged (see resyncTriage); without it every
   * game is reconciled on every pass.
   */
  listGenerations?(): Promise<Map<string, number>>;
  /**
   * Every declaration in one read; a stored row the schema refuses maps to its
   * start_config_invalid error. Optional: with it the full periodic pass plans
   * every game on bulk lists instead of reconciling each (see resyncTriage).
   */
  listDeclarations?(): Promise<Map<string, Declaration | RtmError>>;
  /**
   * Runs `mutate` under a per-game lock and writes its result, bumping the
   * generation when the spec changed. Two writers on one game are serialised.
   * Returns the declaration after the call (unchanged on a replay).
   */
  mutate(gameId: string, mutate: DeclarationMutator, meta: WriteMeta): Promise<{ declaration: Declaration | null; changed: boolean }>;
  /** Removes the declaration; true when there was one. */
  delete(gameId: string): Promise<boolean>;
  watch(handler: DeclarationWatch): Promise<() => Promise<void>>;
}

/**
 * What one reconcile writes at its end (StateStore.commitReconcile): written
 * together or not at all, so a reader never sees the record of a reconcile
 * whose operation-log row or events are missing.
 */
export interface ReconcileCommit {
  /** Appended in this order. */
  events: NewRuntimeEvent[];
  /** The end of the operation-log row the reconcile opened, if it opened one. */
  finishOperation?: { id: number; result: OperationResult } | null;
  /** The record, when it changed. */
  record?: RuntimeRecord | null;
}

export interface EventQuery {
  gameId?: string;
  limit?: number;
}

/**
 * Records, operation log and events: always the configured SQL store. The
 * writes the loop makes carry its leader's `fence` (src/model/fence.ts) and
 * are refused with a FencedWriteError once a newer leader has advanced the
 * epoch; REST writes carry none (standbys accept writes).
 */
export interface StateStore {
  ping(): Promise<void>;
  close(): Promise<void>;

  getRecord(gameId: string, options?: CallOptions): Promise<RuntimeRecord | null>;
  listRecords(): Promise<RuntimeRecord[]>;
  putRecord(record: RuntimeRecord, fence?: Fence, options?: CallOptions): Promise<void>;

  startOperation(op: NewOperation, fence?: Fence, options?: CallOptions): Promise<number>;
  finishOperation(id: number, result: OperationResult, fence?: Fence, options?: CallOptions): Promise<void>;
  listOperations(gameId: string, limit?: number): Promise<OperationEntry[]>;
  /**
   * Keeps the W3C traceparent a REST call carried, by its op id: every
   * operation-log row of that op written from then on carries it. Optional:
   * a store without it records no traces.
   */
  recordTrace?(opId: string, traceParent: string): Promise<void>;
  /** Marks rows left `running` by a crashed process as `interrupted`; returns them. */
  markInterruptedOperations(fence?: Fence): Promise<OperationEntry[]>;

  appendEvent(event: NewRuntimeEvent, fence?: Fence, options?: CallOptions): Promise<RuntimeEvent>;
  eventsAfter(seq: number, query?: EventQuery): Promise<RuntimeEvent[]>;
  /** Lowest and highest sequence still stored (null when empty): a cursor below `oldest - 1` has expired. */
  eventBounds(): Promise<{ oldest: number | null; latest: number | null }>;

  /**
   * A reconcile's events, the end of its operation-log row and its record in
   * one transaction: all of them or none (a stale fence, or an operation-log
   * row that is not there: not_found). Notifications of the record go out at
   * commit. Returns the events as stored.
   */
  commitReconcile(commit: ReconcileCommit, fence?: Fence, options?: CallOptions): Promise<RuntimeEvent[]>;
}

/**
 * The lock behind leader election: one per installation, taken or renewed
 * atomically. Implemented over a SQL row (src/store/sqlLease.ts) and over a
 * coordination.k8s.io Lease (src/crd/lease.ts); the elector
 * (src/controller/leader.ts) bounds every call and aborts it through `signal`.
 */
export interface Lease {
  /** Takes or renews the lease for `holder` for `durationMs`; true when `holder` holds it after the call. */
  tryAcquire(holder: string, durationMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Gives the lease up when `holder` holds it, so a standby need not wait for it to expire. */
  release(holder: string, signal?: AbortSignal): Promise<void>;
}

// ---------------------------------------------------------------- engine runtime

/**
 * Where an engine is in its life, in no runtime's words: `pending` (the
 * runtime has it and has not run it yet: created and never started, or
 * accepted and being scheduled or pulled), `running` (including the moment a
 * runtime swaps or restarts it in place), `exited` (it ran and ended, or the
 * runtime gave it up), `absent` (the runtime still lists it, but nothing of
 * it is left to run: treated as no engine).
 */
export const ENGINE_PHASES = ["pending", "running", "exited", "absent"] as const;
export type EnginePhase = (typeof ENGINE_PHASES)[number];

/** One engine instance as the runtime reports it. */
export interface ObservedContainer {
  id: string;
  name: string;
  gameId: string;
  /** The rtmanager installation that created it (label). */
  instance: string;
  generation: number | null;
  imageRef: string;
  restartToken: string | null;
  /** configHash() of the declaration it was created from; null on engines from before the label existed. */
  configHash: string | null;
  phase: EnginePhase;
  /**
   * Running, and the runtime itself is restarting or swapping it right now
   * (after an exit, or for a new image applied in place): its failures are
   * the old engine's, so it is judged again once it runs. False when the
   * controller does every restart itself.
   */
  restarting: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Host port on 127.0.0.1 that 8080 is published on, when the runtime publishes it. */
  publishedPort: number | null;
  /** The engine's IPv4 address on each network it is attached to; empty when it does not run. */
  networkAddresses: Readonly<Record<string, string>>;
  /**
   * Times the runtime itself restarted this engine; null on a runtime that
   * never restarts one by itself (the controller counts those restarts).
   */
  restartCount: number | null;
  /** Whether the runtime reports the engine ready; null when it does not probe, and the controller probes it itself. */
  ready: boolean | null;
  /**
   * The restart policy the engine was created with, when the runtime fixes it
   * at creation: a change of the declared policy recreates it. Null where the
   * controller applies the policy itself, so a change there needs no recreate.
   */
  restartPolicy: RestartPolicy | null;
  /**
   * The place the engine runs lost contact with the runtime: the engine may
   * still run there and hold its state, so it is reported, never replaced,
   * until the runtime says it is gone. Null on a runtime with one place.
   */
  lostPlacement: PlacementLoss | null;
  /** Why the runtime cannot run the engine, in its own words, or null (a runtime that reports failures only as call errors). */
  problem: EngineProblem | null;
  /** Deletion accepted, engine not gone yet (a Pod in its grace): nothing can use it or its name until the watch says gone. */
  terminating?: boolean;
}

export interface EngineProblem {
  /** What it means for the contract (src/controller/runtimeErrors.ts maps it to a code). */
  kind: RuntimeFailureKind;
  /** The runtime's own reason, CamelCase. */
  reason: string;
  message: string;
  /** The runtime will never run this engine again: it must be replaced, or left as its policy says. */
  final: boolean;
}

/** The rule for an engine on a lost place (docs/kubernetes.md, "A lost node"), worded once for every place that reports it. */
export const NODE_LOST_RULE = "the engine is not replaced until the Node is deleted or tainted node.kubernetes.io/out-of-service, or its Pod is force-deleted";

/** A place (a node) the runtime lost contact with, as the engine's runtime reports it. */
export interface PlacementLoss {
  /** The place's name (the record's lost_node). */
  node: string;
  /** The runtime's reason for the loss. */
  reason: string;
  /** When the place stopped answering. */
  since: Date;
}

export interface ContainerResources {
  /** CPU cores, fractional. */
  cpus: number;
  memoryBytes: number;
  pidsLimit: number;
}

/**
 * What the controller asks a runtime to run for one game. Where the engine is
 * attached and published is the runtime's own configuration, not the spec's.
 */
export interface EngineSpec {
  gameId: string;
  name: string;
  imageRef: string;
  generation: number;
  restartToken: string | null;
  configHash: string;
  env: Record<string, string>;
  /** Where the game's state lives (a host directory the runtime mounts at the engine's state path). */
  statePath: string;
  resources: ContainerResources;
  /** The declaration's restart policy, for a runtime that applies it itself. */
  restartPolicy?: RestartPolicy;
}

/** Where a game's record says it lives: the runtime's own terms (a network, or a namespace; a host path, or a claim). */
export interface RecordLocation {
  network: string;
  statePath: string;
}

export type ImagePullPolicy = "always" | "if_not_present" | "never";

/** What happened to an engine, in no runtime's words: enough to wake its game's reconcile. */
export const ENGINE_CHANGES = ["created", "started", "exited", "removed"] as const;
export type EngineChange = (typeof ENGINE_CHANGES)[number];

export interface EngineEvent {
  gameId: string;
  engineId: string;
  change: EngineChange;
  exitCode: number | null;
}

export interface EngineEventHandlers {
  onEvent(event: EngineEvent): void;
  /** The stream was re-established after a break; events may have been missed. */
  onReconnect(): void;
  onDisconnect(err: Error): void;
}

/**
 * The actions a runtime offers, and so the vocabulary the planner picks
 * from. Imperative runtimes are told each step: pull, create, start, stop,
 * remove. Declarative ones take the engine wanted and make it so: `apply`
 * (also in place: a new image on the existing engine), after which the
 * runtime pulls, starts and restarts the engine itself; and `delete`.
 */
export const IMPERATIVE_VERBS = ["pull", "create", "start", "stop", "remove"] as const;
export const DECLARATIVE_VERBS = ["apply", "delete"] as const;
export type RuntimeVerb = (typeof IMPERATIVE_VERBS)[number] | (typeof DECLARATIVE_VERBS)[number];
export type RuntimeVerbs = typeof IMPERATIVE_VERBS | typeof DECLARATIVE_VERBS;

/** Whether `verbs` is the declarative vocabulary: the runtime starts, restarts and updates engines by itself. */
export function isDeclarative(verbs: readonly RuntimeVerb[]): verbs is typeof DECLARATIVE_VERBS {
  return verbs.includes("apply");
}

export interface LogStreamOptions {
  /** Lines from the end of the stored output. */
  tail: number;
  follow: boolean;
  /** Ends the stream and frees the runtime's connection. */
  signal: AbortSignal;
}

/**
 * The engine runtime: anything that runs one engine per game. Every method
 * rejects with a RuntimeFailure (src/model/runtimeFailure.ts): the runtime
 * says what went wrong; the controller decides what that means for the
 * contract (src/controller/runtimeErrors.ts). A call whose `options.signal`
 * fires rejects with an AbortedError instead.
 */
export interface RuntimePort {
  /** Short name for logs, messages and metric labels. */
  readonly name: string;
  /** The actions this runtime offers; the planner plans in this vocabulary only. */
  readonly verbs: RuntimeVerbs;
  /** Fails with `unavailable` when the runtime does not answer. */
  ping(): Promise<void>;
  /**
   * What in the runtime's own configuration keeps it from running engines (a
   * network or a namespace that does not exist), worded for the operator with
   * the setting to fix; null when nothing does. Rejects as ping() does.
   */
  setupProblem(): Promise<string | null>;
  /**
   * Engines carrying this installation's labels. `{ inspect: false }` is one
   * list call for the whole fleet (no per-engine inspect): enough for ids,
   * phases and published ports, but exit code may be approximate and OOM and
   * start/finish times unknown. The periodic passes use it.
   */
  listManaged(options?: { inspect?: boolean } & CallOptions): Promise<ObservedContainer[]>;
  listForGame(gameId: string, options?: CallOptions): Promise<ObservedContainer[]>;
  /** Makes `ref` available under `policy`; `image_not_found` / `pull_failed` when it cannot. */
  ensureImage(ref: string, policy: ImagePullPolicy, options?: CallOptions): Promise<void>;
  /**
   * What an image declares about itself (its com.galaxy.* resource labels),
   * read before an engine is made of it. Absent on a runtime that cannot read
   * an image before running it: resources come from the declaration.
   * `image_not_found` when the image is not present.
   */
  imageMetadata?(ref: string, options?: CallOptions): Promise<Record<string, string>>;
  /** Returns the engine's id. `config_refused`, `image_not_found`, `conflict`. */
  create(spec: EngineSpec, options?: CallOptions): Promise<string>;
  /**
   * Present exactly on a declarative runtime: applies the spec's image (and
   * labels) to the existing engine without remove + create.
   */
  updateImage?(id: string, spec: EngineSpec, options?: CallOptions): Promise<void>;
  /** Idempotent on a running engine. `start_failed`. */
  start(id: string, options?: CallOptions): Promise<void>;
  /** Idempotent: stopping a stopped engine succeeds. A Pod's returns once its deletion is accepted (`terminating`). */
  stop(id: string, timeoutSeconds: number, options?: CallOptions): Promise<void>;
  /** Idempotent; forces a running one; returns as stop() does. `succeeded`: a Pod's last state is kept for its successor. */
  remove(id: string, options?: RemoveOptions): Promise<void>;
  watchEvents(handlers: EngineEventHandlers): () => void;
  /** Ends what the runtime keeps open by itself (a cache's watches); absent when it keeps nothing. */
  close?(): Promise<void>;
  /**
   * Deletes the state of games whose engine was removed before `olderThan`
   * and not created again since; returns their ids. Absent where state is
   * kept for good.
   */
  pruneReleasedState?(olderThan: Date): Promise<string[]>;
  /**
   * The engine's output, stdout and stderr merged, as it arrives: the last
   * `tail` lines, then (with `follow`) new output until the engine stops or
   * `signal` aborts. Resolves once the runtime has answered, so `not_found`
   * and `unavailable` reject here and never in the middle of the stream.
   */
  logStream(id: string, options: LogStreamOptions): Promise<AsyncIterable<Buffer>>;
  /** "host:port" where the engine's HTTP port answers the controller, or null when it cannot be reached now. */
  probeAddress(engine: ObservedContainer): string | null;
  /**
   * The record's `docker_network` and `state_path` for a game. Optional: a
   * runtime without it gets the configured network and state root.
   */
  recordLocation?(gameId: string): RecordLocation;
}

export interface ProbeResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  latencyMs: number;
}

export interface HealthProber {
  probe(url: string, timeoutMs: number, options?: CallOptions): Promise<ProbeResult>;
}
