/**
 * Where an engine runtime on Kubernetes puts one game's objects, as the
 * declaration side decides it: the Pod runtime asks, a declaration source
 * (GameRuntime objects, src/crd/placement.ts) answers, and app.ts connects
 * the two, so neither adapter reads the other's internals.
 */
import type { V1OwnerReference } from "@kubernetes/client-node";

/** Where one game's objects go: a namespace, and in Kubernetes-source mode the GameRuntime that owns them. */
export interface Placement {
  namespace: string;
  owner: V1OwnerReference | null;
}

/** Where each game's objects go; in Kubernetes-source mode, its GameRuntime's namespace and owner. */
export interface PodPlacement {
  placement(gameId: string): Promise<Placement>;
  /** From memory (no API call): the namespace a game's objects are in. */
  namespaceOf(gameId: string): string;
}
