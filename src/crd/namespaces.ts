/**
 * Which namespaces Kubernetes mode uses, from the configuration:
 *
 * - watch: RTMANAGER_KUBE_NAMESPACE, or every namespace when it is empty;
 * - create (where the REST API creates new GameRuntime objects): the watched
 *   namespace; cluster-wide, RTMANAGER_KUBE_CREATE_NAMESPACE, else the pod's
 *   own namespace (POD_NAMESPACE), else "default";
 * - lease: the watched namespace; cluster-wide, the pod's own namespace, else
 *   "default". deploy/kustomize/base/rbac.yaml grants the Lease in rtmanager's namespace,
 *   which is why the Deployment sets POD_NAMESPACE through the downward API.
 */
import type { Config } from "../config.js";

export interface KubeNamespaces {
  /** undefined: every namespace. */
  watch: string | undefined;
  create: string;
  lease: string;
}

export function kubeNamespaces(config: Pick<Config, "kubeNamespace" | "kubeCreateNamespace" | "podNamespace">): KubeNamespaces {
  const watch = config.kubeNamespace || undefined;
  const own = config.podNamespace || "default";
  return {
    watch,
    create: watch ?? (config.kubeCreateNamespace || own),
    lease: watch ?? own,
  };
}
