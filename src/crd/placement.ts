/**
 * Kubernetes-source mode: a game's Pod, Service and claim live in its
 * GameRuntime's namespace, and Pod and Service are owned by that object (the
 * garbage collector removes them with it; the claim, the game's state, is
 * never owned, so it survives).
 */
import type { Placement, PodPlacement } from "../kube/placement.js";
import { API_VERSION, KIND } from "./api.js";
import type { KubernetesDeclarationSource } from "./kubeSource.js";

export function gameRuntimePlacement(source: Pick<KubernetesDeclarationSource, "read" | "cached">, fallbackNamespace: string): PodPlacement {
  return {
    async placement(gameId: string): Promise<Placement> {
      const obj = await source.read(gameId);
      if (!obj?.metadata.uid) return { namespace: obj?.metadata.namespace ?? fallbackNamespace, owner: null };
      return {
        namespace: obj.metadata.namespace,
        owner: { apiVersion: API_VERSION, kind: KIND, name: obj.metadata.name, uid: obj.metadata.uid, controller: true },
      };
    },
    namespaceOf: (gameId: string) => source.cached(gameId)?.metadata.namespace ?? fallbackNamespace,
  };
}
