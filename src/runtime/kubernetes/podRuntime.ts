/**
 * The Kubernetes implementation of RuntimePort: one game = one Pod
 * (`galaxy-game-{id}`), a ClusterIP Service of the same name and a claim
 * `galaxy-game-{id}-state`. The kubelet pulls, starts, restarts exited
 * engines (restartPolicy) and swaps images in place; readiness comes from the
 * Pod's readiness probe. Parts: names.ts, manifests.ts (pure objects),
 * observed.ts (pure mapping), podApi.ts (the API calls), podEvents.ts (watch).
 *
 * A stop deletes the Pod (a Pod cannot be stopped) and leaves the engine's
 * last state on the Service (a "tombstone"), so the game reads as stopped,
 * not removed; remove() drops the tombstone. Claim and Service are kept.
 * stop() and remove() return once the API accepted the deletion: the engine
 * reads as `terminating` until the Pod watch sees it gone, and the loop waits
 * for that by requeueing, never in a call (a worker never waits on a Pod).
 * A call's `signal` (a reconcile's) aborts its API requests and its waits on
 * the Pod watch; the call rejects with the AbortedError.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { OnKubeCall } from "../../kube/calls.js";
import type { Logger } from "../../log.js";
import { raceAbort, throwIfAborted } from "../../model/abort.js";
import type {
  CallOptions,
  EngineEventHandlers,
  EngineSpec,
  ImagePullPolicy,
  ObservedContainer,
  RecordLocation,
  RemoveOptions,
  RuntimePort,
  LogStreamOptions,
} from "../../model/ports.js";
import { DECLARATIVE_VERBS } from "../../model/ports.js";
import { EngineStillTerminating, RuntimeFailure } from "../../model/runtimeFailure.js";
import { ENGINE_PORT } from "../../model/engine.js";
import type { BoundedKubeConfig } from "../../kube/client.js";
import type { PodPlacement } from "../../kube/placement.js";
import { assertPodNames, type ClaimSettings, type PodManifestSettings } from "./manifests.js";
import { claimName, ownedBy, POD_LABELS, type GameRef } from "./names.js";
import { IMAGE_FAILURE_REASONS, engineStatus, isFinished, observedFromPod, replacedContainer, stripScheme, tombstoneOf, wantedImage } from "./observed.js";
import { PodApi } from "./podApi.js";
import type { CachedService } from "./podCache.js";
import { NodeHealth } from "./nodeHealth.js";
import { watchPods } from "./podEvents.js";

export interface KubernetesRuntimeOptions {
  /** From kubeClient (src/kube/client.ts): every request is aborted at its timeout. */
  kubeConfig: BoundedKubeConfig;
  instance: string;
  /** Namespace of every game's objects, unless `placement` says otherwise. */
  namespace: string;
  /** Namespace listed and watched; null: all namespaces (Kubernetes source watching all of them). */
  listNamespace: string | null;
  placement?: PodPlacement;
  pod: Omit<PodManifestSettings, "instance">;
  claim: ClaimSettings;
  logger: Logger;
  /** How long after its Pod was created an engine that has not run yet fails its start (start_failed). Default 30 s. */
  startTimeoutMs?: number;
  silenceLimitMs?: number;
  /** Objects per page of a list (default 500, as client-go's pager). */
  listPageSize?: number;
  /** Every API call (not the watches), for the runtime API metrics. */
  onCall?: OnKubeCall;
}

/** Which Pod a container id belongs to: remembered from every listing, since the id is the kubelet's. */
interface Known extends GameRef {
  podUid: string | null;
}
const KNOWN_LIMIT = 10_000;


/** The kubelet pulls, starts, restarts, and swaps a container's image in place. */
export const POD_VERBS = DECLARATIVE_VERBS;

export class KubernetesPodRuntime implements RuntimePort {
  readonly name = "kubernetes";
  readonly verbs = POD_VERBS;
  private readonly api: PodApi;
  private readonly placement: PodPlacement;
  private readonly known = new Map<string, Known>();
  private readonly nodes: NodeHealth;

  constructor(private readonly options: KubernetesRuntimeOptions) {
    if (!options.instance) throw new Error("KubernetesPodRuntime needs a non-empty instance id");
    const silenceLimitMs = options.silenceLimitMs ?? 5 * 60_000;
    this.nodes = new NodeHealth({ kubeConfig: options.kubeConfig, logger: options.logger, silenceLimitMs });
    this.api = new PodApi(options.kubeConfig, options.instance, options.listNamespace, options.logger, silenceLimitMs, this.nodes.lookup, options.listPageSize, options.onCall);
    this.placement = options.placement ?? {
      placement: () => Promise.resolve({ namespace: options.namespace, owner: null }),
      namespaceOf: () => options.namespace,
    };
  }

  ping(): Promise<void> {
    return this.api.ping(this.options.listNamespace ?? this.options.namespace);
  }

  /** A namespace needs no creating by rtmanager: it exists when the API lists in it (ping, which rejects otherwise). */
  async setupProblem(): Promise<string | null> {
    await this.ping();
    return null;
  }

  async listManaged(options?: CallOptions): Promise<ObservedContainer[]> {
    return this.remembered(await raceAbort(this.api.observe(), options?.signal));
  }

  async listForGame(gameId: string, options?: CallOptions): Promise<ObservedContainer[]> {
    return this.remembered(await raceAbort(this.api.observe(gameId), options?.signal));
  }

  private remembered(found: { engine: ObservedContainer; namespace: string; podUid: string | null }[]): ObservedContainer[] {
    for (const { engine, namespace, podUid } of found) {
      this.known.delete(engine.id);
      this.known.set(engine.id, { namespace, gameId: engine.gameId, podUid });
      if (this.known.size > KNOWN_LIMIT) this.known.delete(this.known.keys().next().value as string);
    }
    return found.map((f) => f.engine);
  }

  private async locate(id: string): Promise<Known | null> {
    if (this.known.has(id)) return this.known.get(id)!;
    const cached = await this.api.findInCache(id);
    if (cached) this.remembered([cached]);
    return this.known.get(id) ?? null;
  }

  /** Stops the cache's and the Node watches. */
  async close(): Promise<void> {
    await Promise.all([this.api.cache.stop(), this.nodes.stop()]);
  }

  /** The kubelet pulls when it starts the container. */
  async ensureImage(_ref: string, _policy: ImagePullPolicy): Promise<void> {}


  async create(spec: EngineSpec, options?: CallOptions): Promise<string> {
    assertPodNames(spec.gameId);
    const signal = options?.signal;
    const placement = await raceAbort(this.placement.placement(spec.gameId), signal);
    const pod = await this.api.createGame(spec, placement, { ...this.options.pod, instance: this.options.instance }, this.options.claim, signal);
    const [engine] = this.remembered([{ engine: observedFromPod(pod, this.options.instance)!, namespace: placement.namespace, podUid: pod.metadata?.uid ?? null }]);
    return engine!.id;
  }

  /**
   * Patches the container image; the kubelet restarts just that container.
   * A finished Pod (Succeeded/Failed) never runs again, whatever its image:
   * it is recreated on the new image instead.
   */
  async updateImage(id: string, spec: EngineSpec, options?: CallOptions): Promise<void> {
    const signal = options?.signal;
    throwIfAborted(signal);
    const at = await this.locate(id);
    if (!at?.podUid) throw new RuntimeFailure("not_found", "updateImage", `no Pod runs engine ${id}`, { containerId: id });
    const pod = await this.api.currentPod(at);
    if (pod && pod.metadata?.uid === at.podUid && isFinished(pod)) return this.replaceFinished(at, at.podUid, spec, options);
    if (!pod || pod.metadata?.uid !== at.podUid) throw new RuntimeFailure("not_found", "updateImage", `the Pod of engine ${id} is gone`, { containerId: id });
    // Accepted is enough: the kubelet swaps the container, the Pod watch wakes the game, and the health gate
    // judges the new image (a failed pull or start is its to roll back: the old engine is already gone).
    await this.patchPlanned(at, spec, pod, options);
  }

  /**
   * A finished Pod goes, and a new one on the spec takes its name. Its
   * deletion is immediate (upstream pod.podStrategy CheckGracefulDelete: grace
   * 0 for a Succeeded or Failed Pod) unless someone's finalizer holds it; then
   * this stops with EngineStillTerminating rather than wait for the watch,
   * and the create is the next reconcile's, once the Pod is gone.
   */
  private async replaceFinished(at: Known, uid: string, spec: EngineSpec, options: CallOptions | undefined): Promise<void> {
    await this.api.deletePod(at, uid, undefined, options?.signal);
    if (this.api.holdsPod(at, uid)) {
      const pod = await this.api.currentPod(at);
      if (pod) await this.leaveTombstone(at, pod, options?.signal);
      throw new EngineStillTerminating("updateImage", `the finished Pod of ${at.gameId} is still being deleted (a finalizer holds it); its successor is created once it is gone`, { gameId: at.gameId });
    }
    await this.create(spec, options);
  }

  /**
   * The image patch, preconditioned on the Pod it was planned on. A 409 that
   * only the kubelet's status writes caused (same Pod, same spec) is retried
   * on the fresh Pod, as client-go's RetryOnConflict does; one caused by a
   * newer patch or rollback, or a new Pod, is the caller's conflict.
   */
  private async patchPlanned(at: Known, spec: EngineSpec, planned: V1Pod, options: CallOptions | undefined): Promise<void> {
    const signal = options?.signal;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.api.patchImage(at, spec, planned, signal);
      } catch (err) {
        if (!(err instanceof RuntimeFailure && err.kind === "conflict") || attempt >= 3) throw err;
        const fresh = await this.api.readPod(at, signal);
        const same = (a: V1Pod, b: V1Pod) => a.metadata?.uid === b.metadata?.uid && wantedImage(a) === wantedImage(b) && a.metadata?.labels?.[POD_LABELS.generation] === b.metadata?.labels?.[POD_LABELS.generation];
        if (!fresh || !same(fresh, planned)) throw err;
        // It finished while the patch was on its way (an exit under Never, an eviction): no kubelet swaps a finished Pod's image.
        if (isFinished(fresh)) return this.replaceFinished(at, fresh.metadata!.uid!, spec, options);
        planned = fresh;
      }
    }
  }

  /**
   * The Pod starts by itself: this returns once the API has it, and the Pod
   * watch wakes the game when the engine runs. It fails as a start fails on
   * Docker when the Pod already tells why (`pull_failed` for an image the
   * kubelet cannot pull, `start_failed` for a container that cannot start),
   * and with `start_failed` once the engine has not run within the start
   * bound of its Pod's creation (no node, a pull that never ends).
   */
  async start(id: string, options?: CallOptions): Promise<void> {
    throwIfAborted(options?.signal);
    const at = await this.locate(id);
    if (!at?.podUid) throw new RuntimeFailure("start_failed", "start", `no Pod to start for engine ${id}`, { containerId: id });
    const pod = await this.api.currentPod(at);
    if (!pod || pod.metadata?.uid !== at.podUid) throw new RuntimeFailure("start_failed", "start", `Pod of engine ${id} is gone`, { containerId: id });
    const failure = startFailure(pod, at.gameId);
    if (failure) throw failure;
    if (hasStarted(pod)) return;
    const boundMs = this.options.startTimeoutMs ?? 30_000;
    const created = new Date(pod.metadata?.creationTimestamp ?? Date.now()).getTime();
    if (Date.now() - created >= boundMs) {
      throw new RuntimeFailure("start_failed", "start", `the engine has not started within ${Math.round(boundMs / 1000)}s of its Pod's creation (${pod.status?.phase ?? "no phase"})`, { gameId: at.gameId });
    }
  }

  /** Deletes the Pod (grace = the stop timeout) after leaving the engine's last state on the Service; returns once the API accepted it. */
  async stop(id: string, timeoutSeconds: number, options?: CallOptions): Promise<void> {
    const signal = options?.signal;
    throwIfAborted(signal);
    const at = await this.locate(id);
    if (!at?.podUid) return;
    const pod = await this.api.currentPod(at);
    if (!pod || pod.metadata?.uid !== at.podUid) return;
    const engine = observedFromPod(pod, this.options.instance);
    if (engine) await this.api.setTombstone(at, tombstoneOf(engine, new Date()), await this.placement.placement(at.gameId), signal);
    if (!pod.metadata?.deletionTimestamp) await this.api.deletePod(at, at.podUid, timeoutSeconds, signal);
  }

  /**
   * Deletes the Pod if it still is the one `id` ran in (once: a Pod already
   * terminating is left to its grace), and forgets the stopped engine; returns
   * once the API accepted the deletion. Claim and Service stay. A replaced
   * engine (`succeeded`) is not forgotten: its tombstone stays (the create
   * that follows supersedes it) and its claim stays held.
   */
  async remove(id: string, options?: RemoveOptions): Promise<void> {
    const signal = options?.signal;
    throwIfAborted(signal);
    const at = await this.locate(id);
    if (!at) return;
    if (at.podUid) {
      const pod = await this.api.currentPod(at);
      if (pod && pod.metadata?.uid === at.podUid && !pod.metadata.deletionTimestamp) {
        await this.api.deletePod(at, at.podUid, undefined, signal);
        // Held (a finalizer): the create waits for a later reconcile, and the engine must read stopped until then.
        if (options?.succeeded && this.api.holdsPod(at, at.podUid)) await this.leaveTombstone(at, pod, signal);
      }
    }
    if (options?.succeeded) return;
    await this.api.clearTombstone(at, id, signal);
    if (this.options.claim.retentionMs) await this.api.claims.release(at, new Date());
  }

  /** The engine's last state on its Service, so the game reads stopped (not removed) once its Pod is gone. */
  private async leaveTombstone(at: Known, pod: V1Pod, signal: AbortSignal | undefined): Promise<void> {
    const engine = observedFromPod(pod, this.options.instance);
    if (engine) await this.api.setTombstone(at, tombstoneOf(engine, engine.finishedAt ?? new Date()), await this.placement.placement(at.gameId), signal);
  }

  /** RTMANAGER_POD_CLAIM_RETENTION: deletes claims released before `olderThan` whose game has no Pod. */
  async pruneReleasedState(olderThan: Date): Promise<string[]> {
    await this.listManaged();
    return this.api.claims.prune(olderThan, (ref) => this.api.cache.pod(ref) !== undefined);
  }

  watchEvents(handlers: EngineEventHandlers): () => void {
    this.nodes.start();
    // Only the leader watches events: it alone puts back a Service deleted by hand.
    const stopPods = watchPods(this.api.cache, this.options.instance, handlers, (service) => void this.restoreService(service));
    return () => {
      stopPods();
      void this.nodes.stop();
    };
  }

  /**
   * A game's Service deleted by hand while its engine runs: `engine_endpoint`
   * would no longer resolve, so it is created again (a new ClusterIP; clients
   * resolve the name). A game without a live Pod keeps no Service of its own
   * making: the next start creates it.
   */
  private async restoreService(service: CachedService): Promise<void> {
    const gameId = service.metadata.labels?.[POD_LABELS.gameId];
    const namespace = service.metadata.namespace ?? "";
    if (!gameId || !ownedBy(service.metadata.labels, this.options.instance)) return;
    const pod = this.api.cache.pod({ namespace, gameId });
    if (!pod || pod.metadata.deletionTimestamp) return;
    try {
      await this.api.ensureService({ namespace, gameId }, await this.placement.placement(gameId));
      this.options.logger.warn({ gameId, namespace }, "the engine's Service was deleted while it ran: created it again");
    } catch (err) {
      this.options.logger.warn({ err, gameId, namespace }, "could not create the deleted engine Service again; the next start will");
    }
  }

  async logStream(id: string, options: LogStreamOptions): Promise<AsyncIterable<Buffer>> {
    const at = await this.locate(id);
    if (!at?.podUid) throw new RuntimeFailure("not_found", "logs", `no Pod runs engine ${id} (a stopped game's Pod is deleted)`, { containerId: id });
    return this.api.logStream(at, options);
  }

  /** The Pod IP; the controller does not probe when the runtime reports readiness, so this is for tools only. */
  probeAddress(engine: ObservedContainer): string | null {
    const ip = Object.values(engine.networkAddresses)[0];
    return engine.phase === "running" && ip ? `${ip}:${ENGINE_PORT}` : null;
  }

  /** The record's `docker_network` is the namespace; `state_path` names the claim. */
  recordLocation(gameId: string): RecordLocation {
    const namespace = this.placement.namespaceOf(gameId);
    return { network: namespace, statePath: `pvc://${namespace}/${claimName(gameId)}` };
  }
}

/** The engine runs, or ran to completion: nothing left for start() to wait for. */
function hasStarted(pod: V1Pod): boolean {
  const cs = engineStatus(pod);
  return !!cs?.state?.running || cs?.state?.terminated?.reason === "Completed" || isFinished(pod);
}

/**
 * Why the engine cannot start (an image the kubelet cannot pull, a container
 * that cannot start), or null. Only about the image the Pod asks for now: right
 * after an image patch the status may still tell of the previous one.
 */
function startFailure(pod: V1Pod, gameId: string): RuntimeFailure | null {
  const cs = engineStatus(pod);
  // Rejected at the kubelet's admission (OutOfcpu, …): no container will ever run in this Pod.
  if (pod.status?.phase === "Failed" && !cs?.state?.terminated) {
    // The kubelet's reason first, as the record's problem messages read (planRunning.ts problemOf).
    return new RuntimeFailure("start_failed", "start", `${pod.status.reason ?? "Failed"}: ${pod.status.message ?? "the Pod failed before its engine ran"}`, { gameId });
  }
  const replaced = replacedContainer(pod);
  if (replaced && stripScheme(cs?.containerID) === replaced) return null;
  const waiting = cs?.state?.waiting;
  if (waiting && IMAGE_FAILURE_REASONS.has(waiting.reason ?? "")) {
    return new RuntimeFailure("pull_failed", "start", `the kubelet cannot pull ${cs?.image ?? "the image"}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ""}`, { gameId });
  }
  const startError = cs?.state?.terminated?.reason === "StartError" ? cs.state.terminated : cs?.lastState?.terminated?.reason === "StartError" ? cs.lastState.terminated : null;
  return startError ? new RuntimeFailure("start_failed", "start", `the engine container could not start: ${startError.message ?? startError.reason}`, { gameId }) : null;
}
