import type { ErrorCode } from "./errors.js";
import type { EventType, OpKind, OpOutcome, OpSource, RuntimeStatus, StopReason } from "./status.js";

export const HEALTH_STATES = ["unknown", "healthy", "unhealthy"] as const;
export type HealthState = (typeof HEALTH_STATES)[number];

/**
 * What the controller knows about one game's runtime. The first block is the
 * contract's RuntimeRecord field for field; the rest is served only on the
 * extension endpoints.
 */
export interface RuntimeRecord {
  gameId: string;
  status: RuntimeStatus;
  currentContainerId: string | null;
  currentImageRef: string | null;
  engineEndpoint: string | null;
  statePath: string;
  dockerNetwork: string;
  startedAt: Date | null;
  stoppedAt: Date | null;
  removedAt: Date | null;
  lastOpAt: Date;
  createdAt: Date;

  /** The declaration generation this record reflects (Kubernetes' observedGeneration). */
  observedGeneration: number;
  /** Restarts by the restart policy since the last healthy period; drives the crash-loop backoff. */
  restartCount: number;
  lastExitCode: number | null;
  /** The latest failure and the generation it belongs to; null once a later reconcile succeeds. */
  lastErrorCode: ErrorCode | null;
  lastErrorMessage: string | null;
  lastErrorGeneration: number | null;
  health: HealthState;
  consecutiveProbeFailures: number;
  lastProbeAt: Date | null;
  /** The image a health-gated patch may roll back to. */
  previousImageRef: string | null;
  /** Set while a patch or restart waits for the engine to prove healthy. */
  rolloutStartedAt: Date | null;
  /** Set when a rollback itself failed: the runtime needs a human. */
  degraded: boolean;
  /**
   * A generation the loop will not act on again: its patch failed and was
   * rolled back. A new declaration (a new generation) lifts it.
   */
  heldGeneration: number | null;
  /**
   * The node the engine's Pod is bound to while the control plane has lost
   * contact with it (and since when): the engine is reported, not replaced.
   * Null on Docker and once the node is back or the Pod is gone.
   */
  lostNode: string | null;
  lostNodeSince: Date | null;
  updatedAt: Date;
}

/** The contract's RuntimeRecord, exactly: snake_case, RFC 3339 times, nothing more. */
export interface ContractRuntimeRecord {
  game_id: string;
  status: RuntimeStatus;
  current_container_id: string | null;
  current_image_ref: string | null;
  engine_endpoint: string | null;
  state_path: string;
  docker_network: string;
  started_at: string | null;
  stopped_at: string | null;
  removed_at: string | null;
  last_op_at: string;
  created_at: string;
}

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function toContractRecord(r: RuntimeRecord): ContractRuntimeRecord {
  return {
    game_id: r.gameId,
    status: r.status,
    current_container_id: r.currentContainerId,
    current_image_ref: r.currentImageRef,
    engine_endpoint: r.engineEndpoint,
    state_path: r.statePath,
    docker_network: r.dockerNetwork,
    started_at: iso(r.startedAt),
    stopped_at: iso(r.stoppedAt),
    removed_at: iso(r.removedAt),
    last_op_at: r.lastOpAt.toISOString(),
    created_at: r.createdAt.toISOString(),
  };
}

/** Operation-log rows one listing returns when the caller names no limit, and at most. */
export const OPERATION_LIST_DEFAULT_LIMIT = 100;
export const OPERATION_LIST_MAX_LIMIT = 1000;

export interface OperationEntry {
  /** Row id, assigned by the store. */
  id: number;
  opId: string;
  gameId: string;
  kind: OpKind;
  opSource: OpSource;
  imageRef: string | null;
  generation: number | null;
  outcome: OpOutcome;
  errorCode: ErrorCode | null;
  message: string | null;
  stopReason: StopReason | null;
  startedAt: Date;
  finishedAt: Date | null;
  /**
   * The W3C traceparent of the REST call behind the row (its op id), when it
   * sent a valid one; the store fills it in (src/store/traceSql.ts). Always
   * present on rows the store returns.
   */
  traceParent?: string | null;
}

export type NewOperation = Omit<OperationEntry, "id" | "finishedAt" | "outcome" | "traceParent"> & {
  outcome?: OpOutcome;
  finishedAt?: Date | null;
};

export interface OperationResult {
  outcome: Exclude<OpOutcome, "running">;
  errorCode: ErrorCode | null;
  message: string | null;
  imageRef?: string | null;
  finishedAt: Date;
}

export interface RuntimeEvent {
  /** One monotonically increasing sequence over all games. */
  seq: number;
  gameId: string;
  type: EventType;
  at: Date;
  opId: string | null;
  data: Record<string, unknown>;
}

export type NewRuntimeEvent = Omit<RuntimeEvent, "seq" | "at"> & { at?: Date };
