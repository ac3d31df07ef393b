/** The core/v1 calls of the Pod runtime: Pods, the game's Service (and its tombstone), the claim, logs. */
import { PassThrough } from "node:stream";
import { CoreV1Api, Log, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod, type V1Service } from "@kubernetes/client-node";
import type { EngineSpec, LogStreamOptions, ObservedContainer } from "../../model/ports.js";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import { asFailure, isStatus, KubeCalls } from "./calls.js";
import { claimManifest, podManifest, serviceManifest, type ClaimSettings, type Placement, type PodManifestSettings } from "./manifests.js";
import { ENGINE_CONTAINER, managedSelector, podName, POD_ANNOTATIONS, POD_LABELS, serviceName } from "./names.js";
import type { NodeLookup } from "./nodeHealth.js";
import { isEvicted, observedFromPod, observedFromTombstone, type Tombstone } from "./observed.js";

export interface GameRef {
  namespace: string;
  gameId: string;
}

export interface Found {
  engine: ObservedContainer;
  namespace: string;
  /** The Pod's uid; null for the tombstone of a stopped engine. */
  podUid: string | null;
}

const strategic = () => setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);
const mergePatch = () => setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export class PodApi {
  readonly calls: KubeCalls;
  private readonly core: CoreV1Api;
  private readonly log: Log;

  constructor(
    kubeConfig: KubeConfig,
    private readonly instance: string,
    /** null: all namespaces. */
    private readonly listNamespace: string | null,
    timeoutMs: number,
    /** Which nodes are lost (the Node watch), for the engines observe() reports. */
    private readonly nodes?: NodeLookup,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    // pods/log streams: the generated client reads a body whole, client-node's Log pipes it.
    this.log = new Log(kubeConfig);
    this.calls = new KubeCalls(timeoutMs);
  }

  async ping(namespace: string): Promise<void> {
    await this.calls.run("ping", `listing Pods in ${namespace}`, () => this.core.listNamespacedPod({ namespace, labelSelector: managedSelector(this.instance), limit: 1 }));
  }

  private listPods(labelSelector: string) {
    const ns = this.listNamespace;
    return ns === null ? this.core.listPodForAllNamespaces({ labelSelector }) : this.core.listNamespacedPod({ namespace: ns, labelSelector });
  }

  private listServices(labelSelector: string) {
    const ns = this.listNamespace;
    return ns === null ? this.core.listServiceForAllNamespaces({ labelSelector }) : this.core.listNamespacedService({ namespace: ns, labelSelector });
  }

  /** This installation's engines (of one game): every Pod, and the tombstone of each game whose Pod a stop deleted. */
  async observe(gameId?: string): Promise<Found[]> {
    const selector = managedSelector(this.instance, gameId);
    const [pods, services] = await this.calls.run("list", "listing engine Pods and Services", () => Promise.all([this.listPods(selector), this.listServices(selector)]));
    const found: Found[] = [];
    const withPod = new Set<string>();
    for (const pod of pods.items) {
      if (isEvicted(pod)) continue;
      const engine = observedFromPod(pod, this.instance, this.nodes);
      if (!engine) continue;
      const namespace = pod.metadata?.namespace ?? "";
      withPod.add(`${namespace}/${engine.gameId}`);
      found.push({ engine, namespace, podUid: pod.metadata?.uid ?? null });
    }
    for (const service of services.items) {
      const engine = observedFromTombstone(service, this.instance);
      const namespace = service.metadata?.namespace ?? "";
      if (engine && !withPod.has(`${namespace}/${engine.gameId}`)) found.push({ engine, namespace, podUid: null });
    }
    return found;
  }

  podLister() {
    const selector = managedSelector(this.instance);
    const ns = this.listNamespace;
    return {
      list: async () => {
        const list = await this.listPods(selector);
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? "" };
      },
      watchPath: ns === null ? "/api/v1/pods" : `/api/v1/namespaces/${ns}/pods`,
      watchQuery: { labelSelector: selector },
    };
  }

  /** Claim and Service first (kept across stops, so usually there), then the Pod. */
  async createGame(spec: EngineSpec, placement: Placement, pod: PodManifestSettings, claim: ClaimSettings): Promise<V1Pod> {
    const { namespace } = placement;
    const details = { gameId: spec.gameId, namespace };
    await this.calls
      .run("create", "creating the state claim", () => this.core.createNamespacedPersistentVolumeClaim({ namespace, body: claimManifest(spec.gameId, placement, this.instance, claim) }), details)
      .catch((err: unknown) => tolerateConflict(err));
    await this.ensureService({ namespace, gameId: spec.gameId }, placement);
    const create = () => this.calls.run("create", `creating Pod ${podName(spec.gameId)}`, () => this.core.createNamespacedPod({ namespace, body: podManifest(spec, placement, pod) }), details);
    try {
      return await create();
    } catch (err) {
      const evicted = err instanceof RuntimeFailure && err.kind === "conflict" ? await this.evictedPod({ namespace, gameId: spec.gameId }) : null;
      if (evicted) {
        // Never to run again: it only holds the name. Replace it.
        await this.deletePod({ namespace, gameId: spec.gameId }, evicted, 0);
        await this.waitPodGone({ namespace, gameId: spec.gameId }, evicted, this.calls.timeoutMs);
        return create();
      }
      if (err instanceof RuntimeFailure && err.kind === "conflict") {
        throw new RuntimeFailure("conflict", "create", `Pod ${podName(spec.gameId)} already exists in ${namespace}`, { ...details, containerName: podName(spec.gameId) }, { cause: err });
      }
      throw err;
    }
  }

  /** The uid of the game's Pod when the node evicted it, else null. */
  private async evictedPod(ref: GameRef): Promise<string | null> {
    const existing = await this.readPod(ref);
    return existing && isEvicted(existing) ? (existing.metadata?.uid ?? null) : null;
  }

  /** The game's Service, created when missing; a new engine supersedes any tombstone on it. */
  private async ensureService(ref: GameRef, placement: Placement): Promise<void> {
    try {
      await this.calls.run("create", "creating the engine Service", () => this.core.createNamespacedService({ namespace: ref.namespace, body: serviceManifest(ref.gameId, placement, this.instance) }));
    } catch (err) {
      tolerateConflict(err);
      await this.clearTombstone(ref, null);
    }
  }

  async readPod(ref: GameRef): Promise<V1Pod | null> {
    try {
      return await this.calls.run("inspect", `reading Pod ${podName(ref.gameId)}`, () => this.core.readNamespacedPod({ name: podName(ref.gameId), namespace: ref.namespace }));
    } catch (err) {
      if (isStatus(err, 404)) return null;
      throw err;
    }
  }

  /** A strategic merge patch by container name: the kubelet restarts just that container on the new image. */
  async patchImage(ref: GameRef, spec: EngineSpec): Promise<void> {
    const body = {
      metadata: {
        labels: { [POD_LABELS.generation]: String(spec.generation), [POD_LABELS.configHash]: spec.configHash },
        annotations: { [POD_ANNOTATIONS.imageRef]: spec.imageRef, [POD_ANNOTATIONS.restartToken]: spec.restartToken },
      },
      spec: { containers: [{ name: ENGINE_CONTAINER, image: spec.imageRef }] },
    };
    await this.calls.run("updateImage", `patching the image of Pod ${podName(ref.gameId)}`, () => this.core.patchNamespacedPod({ name: podName(ref.gameId), namespace: ref.namespace, body }, strategic()), {
      gameId: ref.gameId,
    });
  }

  async deletePod(ref: GameRef, uid: string, graceSeconds: number | undefined): Promise<void> {
    try {
      await this.calls.run("remove", `deleting Pod ${podName(ref.gameId)}`, () =>
        this.core.deleteNamespacedPod({ name: podName(ref.gameId), namespace: ref.namespace, gracePeriodSeconds: graceSeconds, body: { preconditions: { uid } } }),
      );
    } catch (err) {
      // Gone already, or a newer Pod of the same name (the uid precondition): either way not ours to delete.
      if (isStatus(err, 404) || isStatus(err, 409)) return;
      throw err;
    }
  }

  /** Waits until the Pod with `uid` is gone, so a new one of the same name can be created right after. */
  async waitPodGone(ref: GameRef, uid: string, boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    while (Date.now() < deadline) {
      const pod = await this.readPod(ref);
      if (!pod || pod.metadata?.uid !== uid) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new RuntimeFailure("failed", "remove", `Pod ${podName(ref.gameId)} is still terminating after ${Math.round(boundMs / 1000)}s`, { gameId: ref.gameId });
  }

  async setTombstone(ref: GameRef, tombstone: Tombstone, placement: Placement): Promise<void> {
    const body = { metadata: { annotations: { [POD_ANNOTATIONS.stoppedEngine]: JSON.stringify(tombstone) } } };
    const patch = () => this.core.patchNamespacedService({ name: serviceName(ref.gameId), namespace: ref.namespace, body }, mergePatch());
    try {
      await this.calls.run("stop", "recording the stopped engine on its Service", patch);
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
      await this.ensureService(ref, placement);
      await this.calls.run("stop", "recording the stopped engine on its Service", patch);
    }
  }

  /** Drops the tombstone (only if it is `id`'s, when `id` is given). */
  async clearTombstone(ref: GameRef, id: string | null): Promise<void> {
    let service: V1Service;
    try {
      service = await this.calls.run("remove", "reading the engine Service", () => this.core.readNamespacedService({ name: serviceName(ref.gameId), namespace: ref.namespace }));
    } catch (err) {
      if (isStatus(err, 404)) return;
      throw err;
    }
    const raw = service.metadata?.annotations?.[POD_ANNOTATIONS.stoppedEngine];
    if (!raw || (id !== null && !raw.includes(JSON.stringify(id)))) return;
    const body = { metadata: { annotations: { [POD_ANNOTATIONS.stoppedEngine]: null } } };
    await this.calls.run("remove", "clearing the stopped engine from its Service", () =>
      this.core.patchNamespacedService({ name: serviceName(ref.gameId), namespace: ref.namespace, body }, mergePatch()),
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
  throw err instanceof RuntimeFailure ? err : asFailure(err, "create", "creating");
}
