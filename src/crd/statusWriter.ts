/**
 * Writes a GameRuntime's `.status` through the status subresource (JSON merge
 * patch) from the runtime record the loop just wrote. Conditions follow the
 * Kubernetes API conventions: Ready, Progressing and Degraded, each with
 * status, a CamelCase or error-code reason, a message, observedGeneration and
 * a lastTransitionTime that moves only when the status flips.
 *
 * observedGeneration is in the object's terms (metadata.generation): the
 * record's generation minus the object's generation base (see api.ts).
 */
import type { Logger } from "../log.js";
import { RuntimeSpecSchema } from "../model/declaration.js";
import type { ErrorCode, RtmError } from "../model/errors.js";
import type { RuntimeRecord } from "../model/record.js";
import { apiMessageOf, httpStatusOf, type Condition, type ConditionStatus, type ConditionType, type GameRuntimeObject, type GameRuntimeStatus, type Phase } from "./api.js";
import { generationBaseOf, isDeleting, type KubernetesDeclarationSource } from "./kubeSource.js";

const MAX_MESSAGE = 32_768;

function cond(type: ConditionType, status: ConditionStatus, reason: string, message: string): Omit<Condition, "lastTransitionTime" | "observedGeneration"> {
  return { type, status, reason, message: message.slice(0, MAX_MESSAGE) };
}

/**
 * The status an object should carry for this record. Pure: `now` stamps
 * conditions whose status flipped; the others keep their lastTransitionTime.
 */
export function computeStatus(obj: GameRuntimeObject, record: RuntimeRecord, error: RtmError | null, now: Date): GameRuntimeStatus {
  const generation = obj.metadata.generation ?? 1;
  const base = generationBaseOf(obj);
  const loopGeneration = generation + base;
  const observed = Math.min(generation, Math.max(0, record.observedGeneration - base));
  const deleting = isDeleting(obj);
  const parsed = RuntimeSpecSchema.safeParse(obj.spec);
  const desired = deleting ? "removed" : parsed.success ? parsed.data.desiredState : null;

  // A failure counts while it belongs to this generation (or to no generation: an unreadable declaration, Docker down).
  let failure: { code: ErrorCode; message: string } | null = null;
  if (error) failure = { code: error.code, message: error.message };
  else if (record.lastErrorCode && (record.lastErrorGeneration === null || record.lastErrorGeneration >= loopGeneration)) {
    failure = { code: record.lastErrorCode, message: record.lastErrorMessage ?? record.lastErrorCode };
  }
  const behind = observed < generation;
  const unhealthy = record.status === "running" && record.health === "unhealthy";

  let phase: Phase;
  if (failure || record.degraded) phase = "failed";
  else if (behind) phase = "pending";
  else phase = record.status;

  const conditions: Omit<Condition, "lastTransitionTime" | "observedGeneration">[] = [];

  // Ready: the runtime is what the declaration asks for.
  if (record.degraded) conditions.push(cond("Ready", "False", "RollbackFailed", record.lastErrorMessage ?? "a rollback failed; the runtime needs a human"));
  else if (failure) conditions.push(cond("Ready", "False", failure.code, failure.message));
  else if (deleting) conditions.push(cond("Ready", "False", "Deleting", "removing the container before the GameRuntime goes"));
  else if (behind) conditions.push(cond("Ready", "False", "Reconciling", `generation ${generation} is not reconciled yet (observed ${observed})`));
  else if (desired === "running" && record.status === "running" && !unhealthy) {
    const health = record.health === "healthy" ? "healthy" : "health not probed yet";
    conditions.push(cond("Ready", "True", "Converged", `engine running ${record.currentImageRef ?? "?"} (${health})`));
  } else if (desired === "running" && unhealthy) {
    conditions.push(cond("Ready", "False", "Unhealthy", `GET /healthz failed ${record.consecutiveProbeFailures} times in a row`));
  } else if (desired !== null && desired === record.status) {
    conditions.push(cond("Ready", "True", desired === "stopped" ? "Stopped" : "Removed", `runtime is ${record.status}, as declared`));
  } else conditions.push(cond("Ready", "False", "Reconciling", `declared ${desired ?? "?"}, runtime is ${record.status}`));

  // Progressing: the loop is working towards a new generation or a rollout.
  if (deleting) conditions.push(cond("Progressing", "True", "Deleting", "removing the container; the state directory is kept"));
  else if (failure) conditions.push(cond("Progressing", "False", failure.code, failure.message));
  else if (behind) conditions.push(cond("Progressing", "True", "Reconciling", `reconciling generation ${generation}`));
  else if (record.rolloutStartedAt) conditions.push(cond("Progressing", "True", "RollingOut", "waiting for the new engine to prove healthy"));
  else conditions.push(cond("Progressing", "False", "Converged", `generation ${generation} reconciled`));

  // Degraded: something is wrong that the loop reports rather than hides.
  if (record.degraded) conditions.push(cond("Degraded", "True", "RollbackFailed", record.lastErrorMessage ?? "a rollback failed; the runtime needs a human"));
  else if (failure) conditions.push(cond("Degraded", "True", failure.code, failure.message));
  else if (unhealthy) conditions.push(cond("Degraded", "True", "Unhealthy", `GET /healthz failed ${record.consecutiveProbeFailures} times in a row`));
  else conditions.push(cond("Degraded", "False", "AsExpected", "no failure recorded"));

  const previous = new Map((obj.status?.conditions ?? []).map((c) => [c.type, c]));
  const stamped: Condition[] = conditions.map((c) => {
    const before = previous.get(c.type);
    const lastTransitionTime = before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(now);
    return { ...c, lastTransitionTime, observedGeneration: generation };
  });

  return {
    phase,
    containerId: record.currentContainerId,
    imageRef: record.currentImageRef,
    engineEndpoint: record.engineEndpoint,
    health: record.health,
    observedGeneration: observed,
    restartCount: record.restartCount,
    conditions: stamped,
  };
}

/** metav1.Time: RFC 3339, second precision. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function canonicalStatus(s: GameRuntimeStatus | undefined): string {
  if (!s) return "{}";
  const conditions = [...(s.conditions ?? [])]
    .sort((a, b) => a.type.localeCompare(b.type))
    .map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration ?? null]);
  return JSON.stringify([
    s.phase ?? null,
    s.containerId ?? null,
    s.imageRef ?? null,
    s.engineEndpoint ?? null,
    s.health ?? null,
    s.observedGeneration ?? null,
    s.restartCount ?? null,
    conditions,
  ]);
}

export interface StatusWriterHooks {
  onWrite?(gameId: string): void;
  onError?(gameId: string, err: Error): void;
}

/**
 * Per game, writes are serialised and coalesced: while one is in flight only
 * the latest record waits. Failures are logged, never thrown at the loop.
 */
export class GameRuntimeStatusWriter {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly pending = new Map<string, { record: RuntimeRecord; error: RtmError | null }>();
  private readonly logger: Logger;

  constructor(
    private readonly source: KubernetesDeclarationSource,
    logger: Logger,
    private readonly hooks: StatusWriterHooks = {},
    private readonly clock: () => Date = () => new Date(),
  ) {
    this.logger = logger.child({ component: "kube-status" });
  }

  /** Queues a status write for this record's game; resolves when it (or a later one) is done. */
  enqueue(record: RuntimeRecord, error: RtmError | null = null): Promise<void> {
    const gameId = record.gameId;
    this.pending.set(gameId, { record, error });
    const running = this.inFlight.get(gameId);
    if (running) return running;
    const loop = (async () => {
      try {
        for (let next = this.pending.get(gameId); next; next = this.pending.get(gameId)) {
          this.pending.delete(gameId);
          await this.writeNow(next.record, next.error).catch((err: unknown) => {
            const e = err instanceof Error ? err : new Error(String(err));
            this.logger.warn({ gameId, err: apiMessageOf(err) }, "could not write GameRuntime status");
            this.hooks.onError?.(gameId, e);
          });
        }
      } finally {
        this.inFlight.delete(gameId);
      }
    })();
    this.inFlight.set(gameId, loop);
    return loop;
  }

  /** Resolves when every queued write is done. */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()]);
  }

  /** Reads the object and patches its status when it differs. Throws on API failures. */
  async writeNow(record: RuntimeRecord, error: RtmError | null = null): Promise<boolean> {
    const obj = await this.source.read(record.gameId);
    if (!obj) return false;
    const status = computeStatus(obj, record, error, this.clock());
    if (canonicalStatus(obj.status) === canonicalStatus(status)) return false;
    // Merge patch: null removes a field; conditions (a list) is replaced whole.
    const body = {
      status: {
        ...status,
        containerId: status.containerId ?? null,
        imageRef: status.imageRef ?? null,
        engineEndpoint: status.engineEndpoint ?? null,
      },
    };
    try {
      await this.source.api.patchStatus({ namespace: obj.metadata.namespace, name: obj.metadata.name }, body);
    } catch (err) {
      if (httpStatusOf(err) === 404) return false;
      throw err;
    }
    this.hooks.onWrite?.(record.gameId);
    return true;
  }
}
