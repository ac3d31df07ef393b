/**
 * Kubernetes Events (core/v1) on GameRuntime objects: one per action the loop
 * took and one per failure, so `kubectl describe gameruntime X` tells the
 * story. Repeats of the same event within a window bump `count` with a merge
 * patch instead of piling up objects, as client-go's recorder does. Emitting
 * is best effort: failures are logged, never thrown.
 */
import { randomBytes } from "node:crypto";
import { CoreV1Api, PatchStrategy, setHeaderOptions, type CoreV1Event } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import type { NewRuntimeEvent } from "../model/record.js";
import type { EventType } from "../model/status.js";
import { NODE_LOST_RULE } from "../model/ports.js";
import { apiMessageOf, httpStatusOf } from "../kube/api.js";
import { API_VERSION, failureMessage, KIND, reasonOf, type GameRuntimeObject } from "./api.js";
import type { KubernetesDeclarationSource } from "./kubeSource.js";
import { conflictMessage, type OwnerRef } from "./owner.js";

export interface KubeEventSpec {
  type: "Normal" | "Warning";
  /** CamelCase (a failure's error code converted; the code leads the message). */
  reason: string;
  message: string;
  /** What the controller did (core/v1 Event.action). */
  action: string;
}

const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));
const short = (id: unknown): string => str(id).slice(0, 12);

type EventData = Record<string, unknown>;

/**
 * What each of the loop's runtime events becomes (null: not worth one). A
 * table, not a switch, so the compiler insists on a row for every EventType.
 */
const KUBE_EVENTS: Record<EventType, ((data: EventData) => KubeEventSpec) | null> = {
  declaration_changed: null,
  container_created: (data) => ({ type: "Normal", reason: "ContainerCreated", action: "Create", message: `created container ${short(data.containerId)} from ${str(data.imageRef)}` }),
  container_started: (data) => ({ type: "Normal", reason: "ContainerStarted", action: "Start", message: `started container ${short(data.containerId)}` }),
  container_stopped: (data) => ({
    type: "Normal",
    reason: "ContainerStopped",
    action: "Stop",
    message: `stopped container ${short(data.containerId)}${data.reason ? ` (${str(data.reason)})` : ""}`,
  }),
  container_removed: (data) => ({ type: "Normal", reason: "ContainerRemoved", action: "Remove", message: `removed container ${short(data.containerId)}; the state directory is kept` }),
  image_updated: (data) => ({ type: "Normal", reason: "ImageUpdated", action: "Update", message: `set the image of ${short(data.containerId)} to ${str(data.imageRef)} in place` }),
  container_adopted: (data) => ({ type: "Normal", reason: "ContainerAdopted", action: "Adopt", message: `adopted existing container ${short(data.containerId)}` }),
  orphan_removed: (data) => ({ type: "Normal", reason: "OrphanRemoved", action: "Remove", message: `removed orphan container ${short(data.containerId)}` }),
  orphan_reported: (data) => ({ type: "Warning", reason: "OrphanLeftInPlace", action: "Report", message: `orphan container ${short(data.containerId)} left in place (${String(data.why)})` }),
  probe_recovered: () => ({ type: "Normal", reason: "ProbeRecovered", action: "Probe", message: "GET /healthz answers again" }),
  container_exited: (data) => ({ type: "Warning", reason: "ContainerExited", action: "Observe", message: `container ${short(data.containerId)} exited with code ${str(data.exitCode)}` }),
  container_oom: (data) => ({ type: "Warning", reason: "ContainerOOMKilled", action: "Observe", message: `container ${short(data.containerId)} was killed: out of memory` }),
  container_disappeared: (data) => ({ type: "Warning", reason: "ContainerDisappeared", action: "Observe", message: `container ${short(data.containerId)} disappeared` }),
  probe_failed: (data) => ({ type: "Warning", reason: "ProbeFailed", action: "Probe", message: `GET /healthz failed: ${str(data.error ?? data.statusCode)}` }),
  crash_loop: (data) => ({ type: "Warning", reason: "CrashLoopBackOff", action: "Restart", message: `engine restarted ${str(data.restartCount)} times${data.cause ? ` (${str(data.cause)})` : ""}; restarts back off` }),
  patch_rolled_back: (data) => ({
    type: "Warning",
    reason: "PatchRolledBack",
    action: "Rollback",
    message: `patch to ${str(data.failedImageRef)} failed (${str(data.reason)}); rolled back to ${str(data.restoredImageRef)}`,
  }),
  rollback_failed: (data) => ({ type: "Warning", reason: "RollbackFailed", action: "Rollback", message: `rollback to ${str(data.targetImageRef)} failed: ${str(data.message)}` }),
  node_lost: (data) => ({
    type: "Warning",
    reason: "NodeLost",
    action: "Report",
    message: `node ${str(data.node)} is lost (${str(data.reason)}): ${NODE_LOST_RULE}`,
  }),
  node_lost_cleared: (data) => ({
    type: "Normal",
    reason: "NodeLostCleared",
    action: "Report",
    message: data.how === "node_ready" ? `node ${str(data.node)} is back; the engine kept running there` : `the engine no longer runs on lost node ${str(data.node)}`,
  }),
  image_quarantined: (data) => ({ type: "Warning", reason: "ImageQuarantined", action: "Quarantine", message: str(data.message) || `image ${str(data.imageRef)} is quarantined` }),
  image_quarantine_lifted: (data) => ({ type: "Normal", reason: "ImageQuarantineLifted", action: "Quarantine", message: `quarantine of image ${str(data.imageRef)} lifted by ${str(data.liftedBy)}` }),
  reconcile_failed: (data) =>
    data.code
      ? { type: "Warning", reason: reasonOf(str(data.code)), action: "Reconcile", message: failureMessage(str(data.code), str(data.message) || "reconcile failed") }
      : { type: "Warning", reason: "ReconcileFailed", action: "Reconcile", message: str(data.message) || "reconcile failed" },
};

/** The Kubernetes event for one of the loop's runtime events (null: not worth one). */
export function kubeEventFor(type: EventType, data: EventData): KubeEventSpec | null {
  return KUBE_EVENTS[type]?.(data) ?? null;
}

export interface EventRecorderOptions {
  source: KubernetesDeclarationSource;
  logger: Logger;
  /** reportingInstance / source.host: this replica's identity. */
  instance: string;
  component?: string;
  /** Same reason and message on the same object within this window: count++ instead of a new Event. */
  aggregateWindowMs?: number;
  clock?: () => Date;
}

interface Sent {
  namespace: string;
  name: string;
  count: number;
  firstAt: Date;
  lastAt: Date;
}

const mergePatch = () => setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export class GameRuntimeEventRecorder {
  private readonly core: CoreV1Api;
  private readonly component: string;
  private readonly windowMs: number;
  private readonly clock: () => Date;
  private readonly logger: Logger;
  private readonly sent = new Map<string, Sent>();
  private readonly tasks = new Set<Promise<void>>();

  constructor(private readonly options: EventRecorderOptions) {
    this.core = options.source.api.kubeConfig.makeApiClient(CoreV1Api);
    this.component = options.component ?? "rtmanager";
    this.windowMs = options.aggregateWindowMs ?? 10 * 60_000;
    this.clock = options.clock ?? (() => new Date());
    this.logger = options.logger.child({ component: "kube-events" });
  }

  /** Fire and forget: a Warning on a GameRuntime whose name another namespace's object owns (owner.ts). */
  recordOwnerConflict(gameId: string, owner: OwnerRef, ignored: GameRuntimeObject): void {
    const message = conflictMessage(gameId, owner);
    this.track(this.emit(gameId, { type: "Warning", reason: "Conflict", message, action: "Ignore" }, ignored));
  }

  /** Fire and forget: emits the Kubernetes event matching a runtime event, if any. */
  recordRuntimeEvent(event: NewRuntimeEvent): void {
    const spec = kubeEventFor(event.type, event.data ?? {});
    if (spec) this.track(this.emit(event.gameId, spec));
  }

  private track(task: Promise<void>): void {
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }

  /** Resolves when every event emitted so far is written (or given up), or after `timeoutMs`. */
  async flush(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((resolve) => (timer = setTimeout(() => resolve("expired"), timeoutMs)));
    try {
      while (this.tasks.size > 0) {
        if ((await Promise.race([Promise.all([...this.tasks]), expired])) === "expired") return;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Never throws. Games without a GameRuntime object get no event. */
  async emit(gameId: string, spec: KubeEventSpec, target?: GameRuntimeObject): Promise<void> {
    try {
      const obj = target ?? this.options.source.cached(gameId) ?? (await this.options.source.read(gameId));
      if (!obj) return;
      await this.write(obj, spec);
    } catch (err) {
      this.logger.warn({ gameId, reason: spec.reason, err, apiMessage: apiMessageOf(err) }, "could not emit a Kubernetes event");
    }
  }

  private async write(obj: GameRuntimeObject, spec: KubeEventSpec): Promise<void> {
    const now = this.clock();
    const { namespace, name, uid } = obj.metadata;
    const key = JSON.stringify([namespace, name, uid ?? "", spec.type, spec.reason, spec.message]);
    const prev = this.sent.get(key);
    if (prev && now.getTime() - prev.lastAt.getTime() < this.windowMs) {
      try {
        await this.core.patchNamespacedEvent(
          { namespace: prev.namespace, name: prev.name, body: { count: prev.count + 1, lastTimestamp: now.toISOString() } },
          mergePatch(),
        );
        prev.count += 1;
        prev.lastAt = now;
        return;
      } catch (err) {
        // The event expired (the API server keeps them an hour) or was deleted: write a new one.
        if (httpStatusOf(err) !== 404) throw err;
      }
    }
    const eventName = `${name}.${now.getTime().toString(16)}${randomBytes(3).toString("hex")}`;
    const body: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: eventName, namespace },
      involvedObject: {
        apiVersion: API_VERSION,
        kind: KIND,
        name,
        namespace,
        uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type: spec.type,
      reason: spec.reason,
      message: spec.message.slice(0, 1024),
      action: spec.action,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.component, host: this.options.instance },
      reportingComponent: `galaxy.io/${this.component}`,
      reportingInstance: this.options.instance,
    };
    await this.core.createNamespacedEvent({ namespace, body });
    this.sent.set(key, { namespace, name: eventName, count: 1, firstAt: now, lastAt: now });
    if (this.sent.size > 5000) this.prune(now);
  }

  private prune(now: Date): void {
    for (const [key, s] of this.sent) if (now.getTime() - s.lastAt.getTime() >= this.windowMs) this.sent.delete(key);
  }
}
