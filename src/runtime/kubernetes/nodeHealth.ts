/**
 * Which nodes the control plane has lost contact with: a small watch of the
 * cluster's Node objects (read-only; a ClusterRole, Nodes being
 * cluster-scoped) and a lookup by node name.
 *
 * The node lifecycle controller (kubernetes pkg/controller/nodelifecycle)
 * sets a silent node's Ready condition (and its pressure conditions) to
 * Unknown, reason NodeStatusUnknown ("Kubelet stopped posting node status."),
 * taints it node.kubernetes.io/unreachable, and flips the Ready condition of
 * every Pod bound to it to False (MarkPodsNotReady, pkg/controller/util/node):
 * only Ready, keeping its reason; the Pod's phase and its ContainersReady
 * condition stay as the kubelet last posted them. A kubelet that posts Ready
 * False (KubeletNotReady) is a lost node too.
 *
 * Nodes that cannot be read (403: no ClusterRole) are logged once and the
 * watch stops; the Pod then speaks for itself (podNodeLoss).
 */
import type { KubeConfig, V1Node, V1Pod } from "@kubernetes/client-node";
import { CoreV1Api } from "@kubernetes/client-node";
import { httpStatusOf } from "../../kube/api.js";
import { Reflector, type ListerWatcher } from "../../kube/reflector.js";
import type { Logger } from "../../log.js";
import type { PlacementLoss as NodeLoss } from "../../model/ports.js";

type ReflectedNode = V1Node & { metadata: { name: string; resourceVersion?: string } };

const toDate = (v: Date | string | undefined | null): Date | null => (v ? new Date(v) : null);

/** The node's loss as its Ready condition says; null while Ready is True or not posted yet. Pure. */
export function nodeLoss(node: V1Node): NodeLoss | null {
  const ready = node.status?.conditions?.find((c) => c.type === "Ready");
  if (!ready || ready.status === "True") return null;
  return {
    node: node.metadata?.name ?? "",
    reason: ready.reason || (ready.status === "Unknown" ? "NodeStatusUnknown" : "NodeNotReady"),
    since: toDate(ready.lastTransitionTime) ?? new Date(0),
  };
}

/**
 * The Pod alone, when Nodes cannot be read: MarkPodsNotReady's signature is a
 * Pod whose Ready condition is False while ContainersReady and the engine's
 * container status still say ready (the kubelet, which would have flipped
 * them all, is the one that went silent). Rtmanager's Pods have no readiness
 * gates, so the kubelet never posts that combination itself. Pure.
 */
export function podNodeLoss(pod: V1Pod): NodeLoss | null {
  const node = pod.spec?.nodeName;
  const conditions = pod.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === "Ready");
  const containersReady = conditions.find((c) => c.type === "ContainersReady");
  const containersSayReady = (pod.status?.containerStatuses ?? []).length > 0 && (pod.status?.containerStatuses ?? []).every((c) => c.ready);
  if (!node || ready?.status !== "False" || containersReady?.status !== "True" || !containersSayReady) return null;
  return { node, reason: "NodeNotReady", since: toDate(ready.lastTransitionTime) ?? new Date(0) };
}

/** A Node as the lookup reads it: its Ready condition. (A Node's status also lists every image on it: kilobytes a node.) */
function trimNode(node: ReflectedNode): ReflectedNode {
  const { name, resourceVersion } = node.metadata;
  return { metadata: { name, resourceVersion }, status: { conditions: node.status?.conditions?.filter((c) => c.type === "Ready") } };
}

/** The engine's node loss: the Node's own word when it can be read, else the Pod's. */
export function engineNodeLoss(pod: V1Pod, lookup: NodeLookup | undefined): NodeLoss | null {
  const node = pod.spec?.nodeName;
  if (!node) return null;
  const known = lookup?.(node);
  return known === undefined ? podNodeLoss(pod) : known;
}

/** A node's loss by name: null when it is Ready, undefined when it is not known (not read, or not listed). */
export type NodeLookup = (nodeName: string) => NodeLoss | null | undefined;

export interface NodeHealthOptions {
  kubeConfig: KubeConfig;
  logger: Logger;
  silenceLimitMs: number;
}

export class NodeHealth {
  private readonly reflector: Reflector<ReflectedNode>;
  private readonly log: Logger;
  private forbidden = false;

  constructor(options: NodeHealthOptions) {
    this.log = options.logger;
    const core = options.kubeConfig.makeApiClient(CoreV1Api);
    const lister: ListerWatcher<ReflectedNode> = {
      list: async () => {
        try {
          const list = await core.listNode();
          return { items: list.items as ReflectedNode[], resourceVersion: list.metadata?.resourceVersion ?? "" };
        } catch (err) {
          this.onFailure(err);
          throw err;
        }
      },
      watchPath: "/api/v1/nodes",
      isObject: (v): v is ReflectedNode => typeof v === "object" && v !== null && typeof (v as V1Node).metadata?.name === "string",
    };
    this.reflector = new Reflector<ReflectedNode>({
      kind: "Node",
      kubeConfig: options.kubeConfig,
      lister,
      logger: options.logger,
      silenceLimitMs: options.silenceLimitMs,
      backoff: { baseMs: 500, maxMs: 30_000 },
      listener: { onEvent: () => {}, onReplace: () => {} },
      hooks: { onWatchError: (err) => this.onFailure(err) },
      transform: trimNode,
    });
  }

  /** Not allowed to read Nodes: say so once and stop asking; the Pods speak for their nodes. */
  private onFailure(err: unknown): void {
    if (httpStatusOf(err) !== 403 || this.forbidden) return;
    this.forbidden = true;
    this.log.warn({ err }, "cannot read Node objects (grant get/list/watch on nodes: a ClusterRole); a lost node is told from its Pods' Ready conditions alone");
    void this.reflector.stop();
  }

  start(): void {
    if (!this.forbidden) void this.reflector.start();
  }

  stop(): Promise<void> {
    return this.reflector.stop();
  }

  /** Whether the Node objects are being read (listed at least once and not forbidden). */
  get reading(): boolean {
    return !this.forbidden && this.reflector.hasSynced;
  }

  /** The node's loss; undefined when Nodes are not read (yet) or the node is not listed. */
  readonly lookup: NodeLookup = (nodeName) => {
    if (!this.reading) return undefined;
    const node = this.reflector.store.get(nodeName);
    return node ? nodeLoss(node) : undefined;
  };

}
