/** The core/v1 calls of the Pod runtime: Pods, the game's Service (and its tombstone), the claim, logs. */
import { PassThrough } from "node:stream";
import { CoreV1Api, Log, PatchStrategy, setHeaderOptions, type ConfigurationOptions, type V1Pod, type V1Service } from "@kubernetes/client-node";
import { isAborted, throwIfAborted } from "../../model/abort.js";
import type { EngineSpec, LogStreamOptions, ObservedContainer } from "../../model/ports.js";
import { EngineStillTerminating, RuntimeFailure } from "../../model/runtimeFailure.js";
import { asFailure, isStatus, KubeCalls, type OnKubeCall } from "../../kube/calls.js";
import type { BoundedKubeConfig } from "../../kube/client.js";
import type { Placement } from "../../kube/placement.js";
import { aliasServiceManifest, claimManifest, podManifest, serviceManifest, type ClaimSettings, type PodManifestSettings } from "./manifests.js";
import { ENGINE_CONTAINER, managedSelector, podName, POD_ANNOTATIONS, POD_LABELS, serviceName, type GameRef } from "./names.js";
import type { NodeLookup } from "./nodeHealth.js";
import { engineStatus, isEvicted, observedFromPod, observedFromTombstone, stripScheme, type Tombstone } from "./observed.js";
import { PodCache } from "./podCache.js";
import { ClaimRetention } from "./claimRetention.js";
import type { Logger } from "../../log.js";

export interface Found {
  engine: ObservedContainer;
  namespace: string;
  /** The Pod's uid; null for the tombstone of a stopped engine. */
  podUid: string | null;
}

/** How long a read waits for the cache's first lists before it fails as `unavailable`. */
const CACHE_SYNC_WAIT_MS = 10_000;

/** Objects per list page (client-go's pager default). */
export const LIST_PAGE = 500;
type Page = { limit: number; _continue?: string };

const strategic = (o?: ConfigurationOptions) => setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch, o);
const mergePatch = (o?: ConfigurationOptions) => setHeaderOptions("Content-Type", PatchStrategy.MergePatch, o);

export class PodApi {
  readonly calls: KubeCalls;
  private readonly core: CoreV1Api;
  private readonly log: Log;

  /** Pods and Services as last listed, watched or written: what reads use once it has listed. */
  readonly cache: PodCache;
  /** Release marks on claims, and their deletion after RTMANAGER_POD_CLAIM_RETENTION. */
  readonly claims: ClaimRetention;

  constructor(
    kubeConfig: BoundedKubeConfig,
    private readonly instance: string,
    /** null: all namespaces. */
    private readonly listNamespace: string | null,
    private readonly logger: Logger,
    silenceLimitMs: number,
    /** Which nodes are lost (the Node watch), for the engines observe() reports. */
    private readonly nodes?: NodeLookup,
    /** Objects per list page. */
    private readonly pageSize = LIST_PAGE,
    onCall?: OnKubeCall,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    // pods/log streams: the generated client reads a body whole, client-node's Log pipes it.
    this.log = new Log(kubeConfig);
    this.calls = new KubeCalls(kubeConfig, onCall);
    this.cache = new PodCache({ kubeConfig, logger, silenceLimitMs, listers: this.listers() });
    this.claims = new ClaimRetention(this.core, this.calls, instance, listNamespace);
  }

  /**
   * Starts the cache on first use and waits a bounded time for its first
   * lists; every read comes from it, as a controller-runtime client's do.
   */
  private async cached(operation: string): Promise<PodCache> {
    if (await this.cache.ready(Math.min(this.calls.timeoutMs, CACHE_SYNC_WAIT_MS))) return this.cache;
    throw new RuntimeFailure("unavailable", operation, `Kubernetes API: the engine Pods and Services could not be listed within ${CACHE_SYNC_WAIT_MS / 1000}s (see the log for why)`);
  }

  async ping(namespace: string): Promise<void> {
    await this.calls.run("ping", `listing Pods in ${namespace}`, () => this.core.listNamespacedPod({ namespace, labelSelector: managedSelector(this.instance), limit: 1 }));
  }

  private listPods(labelSelector: string, page: Page) {
    const ns = this.listNamespace;
    return ns === null ? this.core.listPodForAllNamespaces({ labelSelector, ...page }) : this.core.listNamespacedPod({ namespace: ns, labelSelector, ...page });
  }

  private listServices(labelSelector: string, page: Page) {
    const ns = this.listNamespace;
    return ns === null ? this.core.listServiceForAllNamespaces({ labelSelector, ...page }) : this.core.listNamespacedService({ namespace: ns, labelSelector, ...page });
  }

  /** This installation's engines (of one game): every Pod, and the tombstone of each game whose Pod a stop deleted. */
  async observe(gameId?: string): Promise<Found[]> {
    const cache = await this.cached("list");
    const { pods, services } = gameId === undefined ? cache.all() : cache.forGame(gameId);
    return this.found(pods, services, gameId);
  }

  private found(pods: V1Pod[], services: V1Service[], gameId: string | undefined): Found[] {
    const found: Found[] = [];
    const withPod = new Set<string>();
    for (const pod of pods) {
      // An evicted Pod only holds the name (createGame replaces it); while someone's finalizer holds its deletion
      // it is shown, terminating, so the loop waits for it rather than reading the game as removed.
      if (isEvicted(pod) && !pod.metadata?.deletionTimestamp) continue;
      const engine = observedFromPod(pod, this.instance, this.nodes);
      if (!engine || (gameId !== undefined && engine.gameId !== gameId)) continue;
      const namespace = pod.metadata?.namespace ?? "";
      withPod.add(`${namespace}/${engine.gameId}`);
      found.push({ engine, namespace, podUid: pod.metadata?.uid ?? null });
    }
    for (const service of services) {
      const engine = observedFromTombstone(service, this.instance);
      const namespace = service.metadata?.namespace ?? "";
      if (engine && (gameId === undefined || engine.gameId === gameId) && !withPod.has(`${namespace}/${engine.gameId}`)) found.push({ engine, namespace, podUid: null });
    }
    return found;
  }

  /** The engine `id` (a kubelet container id, or `pod:<uid>`) among the cached Pods and tombstones, if the cache has listed. */
  async findInCache(id: string): Promise<Found | null> {
    const { pods, services } = (await this.cached("inspect")).all();
    return this.found(pods, services, undefined).find((f) => f.engine.id === id) ?? null;
  }

  /** The game's Pod as the cache holds it. */
  async currentPod(ref: GameRef): Promise<V1Pod | null> {
    return (await this.cached("inspect")).pod(ref) ?? null;
  }

  private listers() {
    const selector = managedSelector(this.instance);
    const ns = this.listNamespace;
    const lister = <T>(plural: string, list: (selector: string, page: Page) => Promise<{ items: T[]; metadata?: { resourceVersion?: string; _continue?: string } }>) => ({
      // Paged as client-go's pager (ListPager, 500 a page), so a relist of a large fleet is never one response.
      list: async () => {
        const items: T[] = [];
        let page: Page = { limit: this.pageSize };
        for (;;) {
          const listed = await this.calls.run("list", `listing ${plural}`, () => list(selector, page));
          items.push(...listed.items);
          const next = listed.metadata?._continue;
          if (!next) return { items, resourceVersion: listed.metadata?.resourceVersion ?? "" };
          page = { limit: this.pageSize, _continue: next };
        }
      },
      watchPath: ns === null ? `/api/v1/${plural}` : `/api/v1/namespaces/${ns}/${plural}`,
      watchQuery: { labelSelector: selector },
    });
    return { pods: lister("pods", (sel, page) => this.listPods(sel, page)), services: lister("services", (sel, page) => this.listServices(sel, page)) };
  }

  /** Claim and Service first (kept across stops, so usually there), then the Pod. */
  async createGame(spec: EngineSpec, placement: Placement, pod: PodManifestSettings, claim: ClaimSettings, signal?: AbortSignal): Promise<V1Pod> {
    throwIfAborted(signal);
    const { namespace } = placement;
    const details = { gameId: spec.gameId, namespace };
    const newClaim = await this.calls
      .run("create", "creating the state claim", (o) => this.core.createNamespacedPersistentVolumeClaim({ namespace, body: claimManifest(spec.gameId, placement, this.instance, claim) }, o), details, signal)
      .then(
        () => true,
        (err: unknown) => (tolerateConflict(err), false),
      );
    if (!newClaim && claim.retentionMs) await this.claims.hold({ namespace, gameId: spec.gameId });
    await this.ensureService({ namespace, gameId: spec.gameId }, placement, signal);
    await this.ensureAliases(spec.gameId, namespace, pod);
    const create = async () => {
      const created = await this.calls.run("create", `creating Pod ${podName(spec.gameId)}`, (o) => this.core.createNamespacedPod({ namespace, body: podManifest(spec, placement, pod) }, o), details, signal);
      this.cache.applyPod(created);
      return created;
    };
    try {
      return await create();
    } catch (err) {
      const evicted = err instanceof RuntimeFailure && err.kind === "conflict" ? await this.evictedPod({ namespace, gameId: spec.gameId }, signal) : null;
      if (evicted) {
        // Never to run again: it only holds the name. Replace it, unless someone's finalizer holds it (never waited for here).
        const ref = { namespace, gameId: spec.gameId };
        await this.deletePod(ref, evicted, 0, signal);
        if (this.holdsPod(ref, evicted)) {
          throw new EngineStillTerminating("create", `the evicted Pod ${podName(spec.gameId)} is still being deleted (a finalizer holds it); its replacement is created once it is gone`, details);
        }
        return create();
      }
      if (err instanceof RuntimeFailure && err.kind === "conflict") {
        throw new RuntimeFailure("conflict", "create", `Pod ${podName(spec.gameId)} already exists in ${namespace}`, { ...details, containerName: podName(spec.gameId) }, { cause: err });
      }
      throw err;
    }
  }

  /** The uid of the game's Pod when the node evicted it, else null. */
  private async evictedPod(ref: GameRef, signal?: AbortSignal): Promise<string | null> {
    const existing = await this.readPod(ref, signal);
    return existing && isEvicted(existing) ? (existing.metadata?.uid ?? null) : null;
  }

  /** The game's Service, created when missing; a new engine supersedes any tombstone on it. */
  async ensureService(ref: GameRef, placement: Placement, signal?: AbortSignal): Promise<void> {
    if ((await this.cached("create")).service(ref)) {
      await this.clearTombstone(ref, null, signal);
      return;
    }
    try {
      this.cache.applyService(
        await this.calls.run("create", "creating the engine Service", (o) => this.core.createNamespacedService({ namespace: ref.namespace, body: serviceManifest(ref.gameId, placement, this.instance) }, o), {}, signal),
      );
    } catch (err) {
      tolerateConflict(err);
      await this.clearTombstone(ref, null, signal);
    }
  }

  /** The game's ExternalName Service in each client namespace (RTMANAGER_POD_CLIENT_NAMESPACES); one that exists is kept. */
  private async ensureAliases(gameId: string, gamesNamespace: string, pod: PodManifestSettings): Promise<void> {
    const clients = pod.clients;
    if (!clients) return;
    for (const namespace of clients.namespaces.filter((ns) => ns !== gamesNamespace)) {
      const body = aliasServiceManifest(gameId, namespace, gamesNamespace, this.instance, clients.clusterDomain);
      try {
        await this.calls.run("create", `creating the engine's ExternalName Service in ${namespace}`, () => this.core.createNamespacedService({ namespace, body }), { gameId, namespace });
      } catch (err) {
        // The engine runs either way: a missing Role in the client namespace costs that client the short name, not the game.
        if (!(err instanceof RuntimeFailure && err.kind === "conflict")) this.logger.warn({ err, gameId, namespace }, "could not create the engine's ExternalName Service in a client namespace");
      }
    }
  }

  async readPod(ref: GameRef, signal?: AbortSignal): Promise<V1Pod | null> {
    try {
      return await this.calls.run("inspect", `reading Pod ${podName(ref.gameId)}`, (o) => this.core.readNamespacedPod({ name: podName(ref.gameId), namespace: ref.namespace }, o), {}, signal);
    } catch (err) {
      if (isStatus(err, 404)) return null;
      throw err;
    }
  }

  /**
   * A strategic merge patch by container name: the kubelet restarts just that
   * container on the new image. It carries the resourceVersion of the Pod it
   * was planned on (`planned`), so the API server refuses it with 409 when the
   * Pod changed since (a newer patch or rollback landed, the kubelet
   * restarted the container): a slow patch never lands over a newer one.
   * It records the container it replaces and one more swap in the restart
   * baseline (observed.ts reads both).
   */
  async patchImage(ref: GameRef, spec: EngineSpec, planned: V1Pod, signal?: AbortSignal): Promise<void> {
    const cs = engineStatus(planned);
    const replaced = stripScheme(cs?.containerID) ?? "";
    // The kubelet counts the swap's start as a restart once a container of that name ran (startContainer: RestartCount + 1).
    const swaps = (Number(planned.metadata?.annotations?.[POD_ANNOTATIONS.restartBaseline]) || 0) + (cs?.containerID || cs?.lastState?.terminated ? 1 : 0);
    const body = {
      metadata: {
        resourceVersion: planned.metadata?.resourceVersion,
        labels: { [POD_LABELS.generation]: String(spec.generation), [POD_LABELS.configHash]: spec.configHash },
        annotations: {
          [POD_ANNOTATIONS.imageRef]: spec.imageRef,
          [POD_ANNOTATIONS.restartToken]: spec.restartToken,
          [POD_ANNOTATIONS.replacedContainer]: replaced,
          [POD_ANNOTATIONS.restartBaseline]: String(swaps),
        },
      },
      spec: { containers: [{ name: ENGINE_CONTAINER, image: spec.imageRef }] },
    };
    const patched = await this.calls.run(
      "updateImage",
      `patching the image of Pod ${podName(ref.gameId)}`,
      (o) => this.core.patchNamespacedPod({ name: podName(ref.gameId), namespace: ref.namespace, body }, strategic(o)),
      { gameId: ref.gameId },
      signal,
    );
    this.cache.applyPod(patched);
  }

  /**
   * Returns once the API accepted the deletion (kubectl delete --wait=false):
   * the kubelet stops the engine within the grace, and the Pod watch tells
   * when it is gone. The cache takes the answer, so the next read shows the
   * Pod terminating (or gone).
   */
  async deletePod(ref: GameRef, uid: string, graceSeconds: number | undefined, signal?: AbortSignal): Promise<void> {
    try {
      const deleted = await this.calls.run(
        "remove",
        `deleting Pod ${podName(ref.gameId)}`,
        (o) => this.core.deleteNamespacedPod({ name: podName(ref.gameId), namespace: ref.namespace, gracePeriodSeconds: graceSeconds, body: { preconditions: { uid } } }, o),
        {},
        signal,
      );
      this.cache.applyDeletedPod(deleted);
    } catch (err) {
      // Gone already, or a newer Pod of the same name (the uid precondition): either way not ours to delete.
      if (isStatus(err, 404) || isStatus(err, 409)) return;
      throw err;
    }
  }

  /**
   * Whether the Pod with `uid` is still there, as the cache holds it right
   * after its deletion (deletePod applies the DELETE's answer): a finished or
   * evicted Pod is deleted at once (grace 0, upstream pod.podStrategy
   * CheckGracefulDelete), so one still there is held by a finalizer.
   */
  holdsPod(ref: GameRef, uid: string): boolean {
    return this.cache.pod(ref)?.metadata.uid === uid;
  }

  async setTombstone(ref: GameRef, tombstone: Tombstone, placement: Placement, signal?: AbortSignal): Promise<void> {
    const body = { metadata: { annotations: { [POD_ANNOTATIONS.stoppedEngine]: JSON.stringify(tombstone) } } };
    const patch = (o?: ConfigurationOptions) => this.core.patchNamespacedService({ name: serviceName(ref.gameId), namespace: ref.namespace, body }, mergePatch(o));
    try {
      this.cache.applyService(await this.calls.run("stop", "recording the stopped engine on its Service", patch, {}, signal));
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      await this.ensureService(ref, placement, signal);
      this.cache.applyService(await this.calls.run("stop", "recording the stopped engine on its Service", patch, {}, signal));
    }
  }

  /** Drops the tombstone (only if it is `id`'s, when `id` is given). */
  async clearTombstone(ref: GameRef, id: string | null, signal?: AbortSignal): Promise<void> {
    const service = (await this.cached("remove")).service(ref);
    if (!service) return;
    const raw = service.metadata?.annotations?.[POD_ANNOTATIONS.stoppedEngine];
    if (!raw || (id !== null && !raw.includes(JSON.stringify(id)))) return;
    const body = { metadata: { annotations: { [POD_ANNOTATIONS.stoppedEngine]: null } } };
    this.cache.applyService(
      await this.calls.run(
        "remove",
        "clearing the stopped engine from its Service",
        (o) => this.core.patchNamespacedService({ name: serviceName(ref.gameId), namespace: ref.namespace, body }, mergePatch(o)),
        {},
        signal,
      ),
    );
  }

  /**
   * The engine container's output as the kubelet serves it, chunk by chunk.
   * An error status rejects before the first byte; `signal` ends the stream
   * (and the connection).
   */
  async logStream(ref: GameRef, options: LogStreamOptions): Promise<AsyncIterable<Buffer>> {
    const out = new PassThrough();
    const request = await this.calls.run("logs", `reading logs of Pod ${podName(ref.gameId)}`, () =>
      this.log.log(ref.namespace, podName(ref.gameId), ENGINE_CONTAINER, out, { follow: options.follow, tailLines: options.tail }),
    );
    const stop = () => {
      request.abort();
      out.end();
    };
    if (options.signal.aborted) stop();
    else options.signal.addEventListener("abort", stop, { once: true });
    out.once("close", () => options.signal.removeEventListener("abort", stop));
    return out;
  }

}

function tolerateConflict(err: unknown): void {
  if (err instanceof RuntimeFailure && err.kind === "conflict") return;
  throw err instanceof RuntimeFailure || isAborted(err) ? err : asFailure(err, "create", "creating");
}
