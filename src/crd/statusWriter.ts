/**
 * Writes a GameRuntime's `.status` through the status subresource (JSON merge
 * patch) from the runtime record the loop just wrote. Conditions follow the
 * Kubernetes API conventions: Ready, Progressing and Degraded, each with
 * status, a CamelCase reason (a failure's error code converted, the code
 * itself leading the message), a message, observedGeneration and
 * a lastTransitionTime that moves only when the status flips.
 *
 * observedGeneration is in the object's terms (metadata.generation): the
 * record's generation minus the object's generation base (see api.ts).
 */
import type { Logger } from "../log.js";
import { jitteredBackoff, type BackoffSettings } from "../model/backoff.js";
import { RuntimeSpecSchema, type RuntimeSpec } from "../model/declaration.js";
import type { ErrorCode, RtmError } from "../model/errors.js";
import type { RuntimeRecord } from "../model/record.js";
import { NODE_LOST_RULE } from "../model/ports.js";
import { apiMessageOf, httpStatusOf } from "../kube/api.js";
import {
  failureMessage,
  reasonOf,
  type Condition,
  type ConditionStatus,
  type ConditionType,
  type GameRuntimeObject,
  type GameRuntimeStatus,
  type ObjectRef,
  type Phase,
} from "./api.js";
import { generationBaseOf, isDeleting, writtenByRest } from "./gameRuntimeMapping.js";
import { specFromObject } from "./resources.js";

/** Where statuses go: the declaration source's store and its status subresource writes. */
export interface StatusTarget {
  /** The object as the store holds it (waits for the first list). */
  read(gameId: string): Promise<GameRuntimeObject | null>;
  /** The object as the store holds it now, without waiting. */
  cached(gameId: string): GameRuntimeObject | undefined;
  /** Merge patch of /status; the response goes into the store. False: the object is gone. */
  patchStatus(ref: ObjectRef, body: object): Promise<boolean>;
}

const MAX_MESSAGE = 32_768;

/**
 * A failure's condition reason: the runtime's own reason when the record's
 * message starts with one (a Pod's `CreateContainerConfigError: …`,
 * `Unschedulable: …`, `OutOfcpu: …`, see planRunning.ts problemOf), else the
 * error code in CamelCase.
 */
function failureReason(failure: { code: string; message: string }): string {
  return /^([A-Z][A-Za-z]+): /.exec(failure.message)?.[1] ?? reasonOf(failure.code);
}

type Unstamped = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

function cond(type: ConditionType, status: ConditionStatus, reason: string, message: string): Unstamped {
  return { type, status, reason, message: message.slice(0, MAX_MESSAGE) };
}

/** What the three conditions and the phase are judged from. */
interface StatusFacts {
  record: RuntimeRecord;
  /** metadata.generation. */
  generation: number;
  /** The record's observedGeneration in the object's terms. */
  observed: number;
  deleting: boolean;
  /** The declared state; null when the spec cannot be read. */
  desired: RuntimeSpec["desiredState"] | null;
  failure: { code: ErrorCode; message: string } | null;
  behind: boolean;
  unhealthy: boolean;
  /** The node-lost message, when the engine's node is lost. */
  nodeLost: string | null;
}

function statusFacts(obj: GameRuntimeObject, record: RuntimeRecord, error: RtmError | null): StatusFacts {
  const generation = obj.metadata.generation ?? 1;
  const base = generationBaseOf(obj);
  const loopGeneration = generation + base;
  const observed = Math.min(generation, Math.max(0, record.observedGeneration - base));
  const deleting = isDeleting(obj);
  const converted = specFromObject(obj.spec, writtenByRest(obj));
  const parsed = converted.ok ? RuntimeSpecSchema.safeParse(converted.value) : null;
  const desired = deleting ? "removed" : parsed?.success ? parsed.data.desiredState : null;

  // A failure counts while it belongs to this generation (or to no generation: an unreadable declaration, the runtime down).
  let failure: { code: ErrorCode; message: string } | null = null;
  if (error) failure = { code: error.code, message: error.message };
  else if (record.lastErrorCode && (record.lastErrorGeneration === null || record.lastErrorGeneration >= loopGeneration)) {
    failure = { code: record.lastErrorCode, message: record.lastErrorMessage ?? record.lastErrorCode };
  }
  return {
    record,
    generation,
    observed,
    deleting,
    desired,
    failure,
    behind: observed < generation,
    unhealthy: record.status === "running" && record.health === "unhealthy",
    nodeLost: record.lostNode ? nodeLostMessage(record.lostNode, record.lostNodeSince) : null,
  };
}

/** Ready: the runtime is what the declaration asks for. */
function readyCondition(f: StatusFacts): Unstamped {
  const { record, failure, desired } = f;
  if (record.degraded) return cond("Ready", "False", "RollbackFailed", record.lastErrorMessage ?? "a rollback failed; the runtime needs a human");
  if (failure) return cond("Ready", "False", failureReason(failure), failureMessage(failure.code, failure.message));
  if (f.deleting) return cond("Ready", "False", "Deleting", "removing the container before the GameRuntime goes");
  if (f.nodeLost) return cond("Ready", "False", "NodeLost", f.nodeLost);
  if (f.behind) return cond("Ready", "False", "Reconciling", `generation ${f.generation} is not reconciled yet (observed ${f.observed})`);
  if (desired === "running" && record.status === "running" && !f.unhealthy) {
    const health = record.health === "healthy" ? "healthy" : "health not probed yet";
    return cond("Ready", "True", "Converged", `engine running ${record.currentImageRef ?? "?"} (${health})`);
  }
  if (desired === "running" && f.unhealthy) {
    return cond("Ready", "False", "Unhealthy", `GET /healthz failed ${record.consecutiveProbeFailures} times in a row`);
  }
  if (desired !== null && desired === record.status) {
    return cond("Ready", "True", desired === "stopped" ? "Stopped" : "Removed", `runtime is ${record.status}, as declared`);
  }
  if (desired === "stopped" && record.status === "removed") {
    // Declared stopped before it ever ran (or after its container was cleaned up): nothing runs, as asked.
    return cond("Ready", "True", "Stopped", "no container runs, as declared");
  }
  return cond("Ready", "False", "Reconciling", `declared ${desired ?? "?"}, runtime is ${record.status}`);
}

/** Progressing: the loop is working towards a new generation or a rollout. */
function progressingCondition(f: StatusFacts): Unstamped {
  if (f.deleting) return cond("Progressing", "True", "Deleting", "removing the container; the state directory is kept");
  if (f.failure) return cond("Progressing", "False", failureReason(f.failure), failureMessage(f.failure.code, f.failure.message));
  if (f.behind) return cond("Progressing", "True", "Reconciling", `reconciling generation ${f.generation}`);
  if (f.record.rolloutStartedAt) return cond("Progressing", "True", "RollingOut", "waiting for the new engine to prove healthy");
  return cond("Progressing", "False", "Converged", `generation ${f.generation} reconciled`);
}

/** Degraded: something is wrong that the loop reports rather than hides. */
function degradedCondition(f: StatusFacts): Unstamped {
  const { record, failure } = f;
  if (record.degraded) return cond("Degraded", "True", "RollbackFailed", record.lastErrorMessage ?? "a rollback failed; the runtime needs a human");
  if (failure) return cond("Degraded", "True", failureReason(failure), failureMessage(failure.code, failure.message));
  if (f.nodeLost) return cond("Degraded", "True", "NodeLost", f.nodeLost);
  if (f.unhealthy) return cond("Degraded", "True", "Unhealthy", `GET /healthz failed ${record.consecutiveProbeFailures} times in a row`);
  return cond("Degraded", "False", "AsExpected", "no failure recorded");
}

/** lastTransitionTime moves only when a condition's status flips. */
function stamped(conditions: Unstamped[], obj: GameRuntimeObject, generation: number, now: Date): Condition[] {
  const previous = new Map((obj.status?.conditions ?? []).map((c) => [c.type, c]));
  return conditions.map((c) => {
    const before = previous.get(c.type);
    const lastTransitionTime = before && before.status === c.status && before.lastTransitionTime ? before.lastTransitionTime : rfc3339(now);
    return { ...c, lastTransitionTime, observedGeneration: generation };
  });
}

/**
 * The status an object should carry for this record. Pure: `now` stamps
 * conditions whose status flipped; the others keep their lastTransitionTime.
 */
export function computeStatus(obj: GameRuntimeObject, record: RuntimeRecord, error: RtmError | null, now: Date): GameRuntimeStatus {
  const f = statusFacts(obj, record, error);
  let phase: Phase;
  if (f.failure || record.degraded) phase = "failed";
  else if (f.behind) phase = "pending";
  else phase = record.status;
  const conditions = [readyCondition(f), progressingCondition(f), degradedCondition(f)];
  return {
    phase,
    containerId: record.currentContainerId,
    imageRef: record.currentImageRef,
    engineEndpoint: record.engineEndpoint,
    health: record.health,
    observedGeneration: f.observed,
    restartCount: record.restartCount,
    conditions: stamped(conditions, obj, f.generation, now),
  };
}

/** Kubernetes' rule, said where an operator looks (docs/kubernetes.md, "A lost node"). */
function nodeLostMessage(node: string, since: Date | null): string {
  return (
    `node ${node} stopped answering the control plane${since ? ` at ${rfc3339(since)}` : ""}; the engine may still run there and hold its state, ` +
    `so ${NODE_LOST_RULE}`
  );
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

export interface StatusWriterOptions {
  /** Retry of a failed write: doubles from baseMs up to maxMs, with jitter. Default 500 ms .. 30 s. */
  backoff?: BackoffSettings;
  /** How long `flush()` keeps retrying before it gives up on what is left. Default 10 s. */
  flushTimeoutMs?: number;
}

interface Pending {
  record: RuntimeRecord;
  error: RtmError | null;
}

/** 400/422: the API server refuses the body itself; retrying the same body cannot help. */
function retriable(err: unknown): boolean {
  const status = httpStatusOf(err);
  return status !== 400 && status !== 422;
}

/**
 * Per game, writes are serialised and coalesced: while one is in flight (or
 * waiting to be retried) only the latest record waits. A failed write is
 * retried with capped exponential backoff until it succeeds or a newer record
 * replaces it; failures are logged, never thrown at the loop.
 *
 * `observe` is the repair path: given a record the loop just read, it
 * compares the status that record calls for with the object's `.status` in
 * the source's watch cache and queues a write when they differ. So a status
 * left stale by an API-server outage or a restart is repaired on the next
 * reconcile (every resync reconciles every game) even when the record itself
 * never changes again.
 */
export class GameRuntimeStatusWriter {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly pending = new Map<string, Pending>();
  /** updatedAt (ms) of the newest record seen per game: an older one read late never wins. */
  private readonly newest = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly sleepers = new Map<string, () => void>();
  private readonly backoff: BackoffSettings;
  private readonly flushTimeoutMs: number;
  private flushDeadline: number | null = null;
  private flushing = 0;
  private readonly logger: Logger;

  constructor(
    private readonly source: StatusTarget,
    logger: Logger,
    private readonly hooks: StatusWriterHooks = {},
    private readonly clock: () => Date = () => new Date(),
    options: StatusWriterOptions = {},
  ) {
    this.logger = logger.child({ component: "kube-status" });
    this.backoff = options.backoff ?? { baseMs: 500, maxMs: 30_000 };
    this.flushTimeoutMs = options.flushTimeoutMs ?? 10_000;
  }

  private note(record: RuntimeRecord): void {
    const t = record.updatedAt.getTime();
    if (t > (this.newest.get(record.gameId) ?? -Infinity)) this.newest.set(record.gameId, t);
  }

  /** Queues a status write for this record's game; resolves when it (or a later one) is done or given up. */
  enqueue(record: RuntimeRecord, error: RtmError | null = null): Promise<void> {
    this.note(record);
    this.pending.set(record.gameId, { record, error });
    return this.run(record.gameId);
  }

  /**
   * A record the loop read (and did not change): queues a write when the
   * object's cached `.status` differs from what the record calls for. Cheap:
   * no API call unless they differ. True when a write was queued.
   */
  observe(record: RuntimeRecord): boolean {
    const gameId = record.gameId;
    const newest = this.newest.get(gameId);
    if (newest !== undefined && record.updatedAt.getTime() < newest) return false;
    // A write is on its way (or waiting for a retry) with a record at least this new.
    if (this.inFlight.has(gameId)) return false;
    const obj = this.source.cached(gameId);
    if (!obj) return false;
    const status = computeStatus(obj, record, null, this.clock());
    if (canonicalStatus(obj.status) === canonicalStatus(status)) return false;
    this.logger.debug({ gameId, phase: status.phase, was: obj.status?.phase ?? null }, "GameRuntime status differs from its record; repairing");
    void this.enqueue(record);
    return true;
  }

  private async sleep(gameId: string, ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.sleepers.set(gameId, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.sleepers.delete(gameId);
  }

  private run(gameId: string): Promise<void> {
    const running = this.inFlight.get(gameId);
    if (running) return running;
    const loop = (async () => {
      try {
        for (let next = this.pending.get(gameId); next; next = this.pending.get(gameId)) {
          this.pending.delete(gameId);
          try {
            await this.writeNow(next.record, next.error);
            this.failures.delete(gameId);
          } catch (err: unknown) {
            const e = err instanceof Error ? err : new Error(String(err));
            this.hooks.onError?.(gameId, e);
            const failures = (this.failures.get(gameId) ?? 0) + 1;
            this.failures.set(gameId, failures);
            // The latest record wins: retry this one only if nothing newer arrived meanwhile.
            if (!this.pending.has(gameId)) this.pending.set(gameId, next);
            const now = performance.now();
            if (!retriable(err) || (this.flushDeadline !== null && now >= this.flushDeadline)) {
              this.pending.delete(gameId);
              this.failures.delete(gameId);
              this.logger.warn({ gameId, err, apiMessage: apiMessageOf(err) }, "could not write GameRuntime status; giving up (the next reconcile repairs it)");
              break;
            }
            let delay = jitteredBackoff(failures, this.backoff);
            if (this.flushDeadline !== null) delay = Math.min(delay, Math.max(0, this.flushDeadline - now));
            this.logger.warn({ gameId, err, apiMessage: apiMessageOf(err), failures, retryInMs: Math.round(delay) }, "could not write GameRuntime status; retrying");
            await this.sleep(gameId, delay);
          }
        }
      } finally {
        this.inFlight.delete(gameId);
      }
    })();
    this.inFlight.set(gameId, loop);
    return loop;
  }

  /**
   * Writes everything queued now: writes waiting for a retry go at once, and
   * failures are retried until `timeoutMs` has passed, then given up (a later
   * leader repairs them from the records). For shutdown.
   */
  async flush(timeoutMs: number = this.flushTimeoutMs): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    this.flushDeadline = Math.min(this.flushDeadline ?? Infinity, deadline);
    this.flushing++;
    for (const wake of [...this.sleepers.values()]) wake();
    let timer: NodeJS.Timeout | undefined;
    // A hanging API call must not hold a shutdown past the deadline either.
    const expired = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs + 50)));
    try {
      while (this.inFlight.size > 0 && performance.now() < deadline + 50) {
        await Promise.race([Promise.all([...this.inFlight.values()]), expired]);
      }
    } finally {
      clearTimeout(timer);
      if (--this.flushing === 0) this.flushDeadline = null;
    }
  }

  /** Reads the object from the store and patches its status when it differs. Throws on API failures. */
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
    if (!(await this.source.patchStatus({ namespace: obj.metadata.namespace, name: obj.metadata.name }, body))) return false;
    this.hooks.onWrite?.(record.gameId);
    return true;
  }
}
