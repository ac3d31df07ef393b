/**
 * The Pod runtime's view of the cluster: one reflector over this
 * installation's Pods and one over its Services (list, then watch), as a
 * controller-runtime informer cache. Reads come from memory, so a reconcile
 * costs no API request to observe, and a full resync over 10,000 games is a
 * walk of two maps instead of 10,000 pairs of list calls (each of which the
 * API server answers by filtering every Pod: O(N^2) per pass).
 *
 * Read-your-writes: the response of each write this process makes goes into
 * the store (`applyPod`, `applyService`), so the next read sees it even
 * before the watch delivers it; a late watch event never overwrites a newer
 * write (resourceVersion order, src/kube/objectStore.ts).
 *
 * Objects are trimmed to what the runtime reads (`trimPod`): a real
 * cluster's Pods carry managedFields and a full spec, which 10,000 times
 * over is most of the controller's memory.
 */
import type { KubeConfig, V1Pod, V1Service } from "@kubernetes/client-node";
import { keyOf } from "../../kube/objectStore.js";
import { Reflector, type ListerWatcher, type WatchEventType } from "../../kube/reflector.js";
import type { Logger } from "../../log.js";
import { ENGINE_CONTAINER, podName, serviceName } from "./names.js";
import type { GameRef } from "./names.js";

export type CachedPod = V1Pod & { metadata: { name: string; namespace?: string; resourceVersion?: string } };
export type CachedService = V1Service & { metadata: { name: string; namespace?: string; resourceVersion?: string } };

export interface CacheListers {
  pods: Omit<ListerWatcher<V1Pod>, "isObject">;
  services: Omit<ListerWatcher<V1Service>, "isObject">;
}

export interface PodChangeListener {
  onPod(type: WatchEventType, pod: CachedPod): void;
  /** A list replaced the Pod store after a gap (not the first list): events may have been missed. */
  onRelist(): void;
  onWatchError(err: Error): void;
  /** A game's Service went away (deleted by hand: rtmanager never deletes one). */
  onServiceGone?(service: CachedService): void;
}

export interface PodCacheOptions {
  kubeConfig: KubeConfig;
  listers: CacheListers;
  logger: Logger;
  silenceLimitMs: number;
}

const hasName = (v: unknown): boolean => typeof v === "object" && v !== null && typeof (v as V1Pod).metadata?.name === "string";

/** What the runtime reads of a Pod: metadata without managedFields, the engine container's name and image, placement, status. */
export function trimPod(pod: CachedPod): CachedPod {
  const { metadata, spec, status } = pod;
  const engine = spec?.containers?.find((c) => c.name === ENGINE_CONTAINER);
  return {
    metadata: {
      name: metadata.name,
      namespace: metadata.namespace,
      uid: metadata.uid,
      resourceVersion: metadata.resourceVersion,
      labels: metadata.labels,
      annotations: metadata.annotations,
      creationTimestamp: metadata.creationTimestamp,
      deletionTimestamp: metadata.deletionTimestamp,
      deletionGracePeriodSeconds: metadata.deletionGracePeriodSeconds,
    },
    spec: spec && {
      containers: engine ? [{ name: engine.name, image: engine.image }] : [],
      restartPolicy: spec.restartPolicy,
      nodeName: spec.nodeName,
      terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds,
    },
    status: status && {
      phase: status.phase,
      reason: status.reason,
      message: status.message,
      podIP: status.podIP,
      startTime: status.startTime,
      // ContainersReady with Ready: a lost node's Pods show Ready False alone (nodeHealth.ts podNodeLoss).
      // PodScheduled too: an unschedulable Pod must say why (observed.ts, engineProblem).
      conditions: status.conditions?.filter((c) => c.type === "Ready" || c.type === "ContainersReady" || (c.type === "PodScheduled" && c.status === "False")),
      containerStatuses: status.containerStatuses?.filter((c) => c.name === ENGINE_CONTAINER),
    },
  };
}

/** A Service is read for its labels and the stopped engine's annotation only. */
export function trimService(service: CachedService): CachedService {
  const { name, namespace, uid, resourceVersion, labels, annotations } = service.metadata;
  return { metadata: { name, namespace, uid, resourceVersion, labels, annotations } };
}

type Waiter = { key: string; check: () => void };

/** The store's key of the game's Pod (objectStore.ts keyOf). */
const podKey = (ref: GameRef): string => keyOf({ metadata: { namespace: ref.namespace, name: podName(ref.gameId) } });

export class PodCache {
  private readonly pods: Reflector<CachedPod>;
  private readonly services: Reflector<CachedService>;
  private readonly listeners = new Set<PodChangeListener>();
  private readonly waiters = new Set<Waiter>();
  private started: Promise<void> | null = null;

  constructor(options: PodCacheOptions) {
    const common = { kubeConfig: options.kubeConfig, logger: options.logger, silenceLimitMs: options.silenceLimitMs, backoff: { baseMs: 250, maxMs: 30_000 } };
    this.pods = new Reflector<CachedPod>({
      ...common,
      kind: "Pod",
      lister: { ...(options.listers.pods as Omit<ListerWatcher<CachedPod>, "isObject">), isObject: (v): v is CachedPod => hasName(v) },
      transform: trimPod,
      listener: {
        onEvent: (type, pod) => {
          this.wake(keyOf(pod));
          for (const l of this.listeners) l.onPod(type, pod);
        },
        onReplace: (_why, changes, first) => {
          for (const c of changes) {
            const pod = c.after ?? c.before;
            if (pod) this.wake(keyOf(pod));
          }
          if (!first) for (const l of this.listeners) l.onRelist();
        },
      },
      hooks: { onWatchError: (err) => this.listeners.forEach((l) => l.onWatchError(err)) },
    });
    this.services = new Reflector<CachedService>({
      ...common,
      kind: "Service",
      lister: { ...(options.listers.services as Omit<ListerWatcher<CachedService>, "isObject">), isObject: (v): v is CachedService => hasName(v) },
      transform: trimService,
      listener: {
        onEvent: (type, service) => {
          if (type === "DELETED") for (const l of this.listeners) l.onServiceGone?.(service);
        },
        onReplace: (_why, changes) => {
          for (const c of changes) if (c.before && !c.after) for (const l of this.listeners) l.onServiceGone?.(c.before);
        },
      },
    });
  }

  /**
   * Starts both reflectors (once) and waits up to `timeoutMs` for their
   * first lists; false when either has not listed yet.
   */
  async ready(timeoutMs: number): Promise<boolean> {
    this.started ??= Promise.all([this.pods.start(), this.services.start()]).then(() => undefined);
    if (this.pods.hasSynced && this.services.hasSynced) return true;
    const [pods, services] = await Promise.all([this.pods.waitForSync(timeoutMs), this.services.waitForSync(timeoutMs)]);
    return pods && services;
  }

  async stop(): Promise<void> {
    this.started = null;
    await Promise.all([this.pods.stop(), this.services.stop()]);
  }

  subscribe(listener: PodChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  pod(ref: GameRef): CachedPod | undefined {
    return this.pods.store.get(podKey(ref));
  }

  service(ref: GameRef): CachedService | undefined {
    return this.services.store.get(keyOf({ metadata: { namespace: ref.namespace, name: serviceName(ref.gameId) } }));
  }

  /** The game's Pods and Services in every namespace the cache sees (one of each, normally). */
  forGame(gameId: string): { pods: CachedPod[]; services: CachedService[] } {
    return { pods: this.pods.store.byName(podName(gameId)), services: this.services.store.byName(serviceName(gameId)) };
  }

  all(): { pods: CachedPod[]; services: CachedService[] } {
    return { pods: this.pods.store.list(), services: this.services.store.list() };
  }

  applyPod(pod: V1Pod): void {
    if (!hasName(pod)) return;
    this.pods.apply(pod as CachedPod);
    this.wake(keyOf(pod as CachedPod));
  }

  /**
   * The response of a DELETE this process made: a Pod in its grace period (or
   * held by a finalizer) is stored as it is now, terminating; one the API
   * deleted outright is dropped, so a read right after the call never shows
   * it as it was before.
   */
  applyDeletedPod(pod: V1Pod): void {
    if (!hasName(pod)) return;
    if (pod.metadata?.deletionTimestamp) return this.applyPod(pod);
    this.pods.store.remove(pod as CachedPod);
    this.wake(keyOf(pod as CachedPod));
  }

  applyService(service: V1Service): void {
    if (hasName(service)) this.services.apply(service as CachedService);
  }

  /**
   * Resolves with the game's Pod once `done(pod)` holds (the Pod may be
   * undefined: gone), or with `null` after `timeoutMs`. Driven by the watch;
   * no API request.
   */
  waitForPod(ref: GameRef, done: (pod: CachedPod | undefined) => boolean, timeoutMs: number): Promise<CachedPod | undefined | null> {
    const key = podKey(ref);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        key,
        check: () => {
          const pod = this.pods.store.get(key);
          if (!done(pod)) return;
          finish(pod);
        },
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      const finish = (result: CachedPod | undefined | null) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(result);
      };
      this.waiters.add(waiter);
      waiter.check();
    });
  }

  private wake(key: string): void {
    for (const w of [...this.waiters]) if (w.key === key) w.check();
  }
}
