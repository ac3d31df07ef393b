/** The resources the test API server serves, and how a request path names one. */
import type { Obj, ResourceDef } from "./types.js";

const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));
const spec = (o: Obj): Record<string, unknown> => (o.spec ?? {}) as Record<string, unknown>;
const status = (o: Obj): Record<string, unknown> => (o.status ?? {}) as Record<string, unknown>;

function core(key: string, kind: string, extra: Partial<ResourceDef> = {}): ResourceDef {
  return { key, group: "", version: "v1", plural: key, kind, listKind: `${kind}List`, statusSubresource: false, custom: false, namespaced: true, fields: {}, ...extra };
}

/** apps/v1 workloads: generation tracks the spec (pkg/registry/apps/deployment/strategy.go PrepareForUpdate). */
function apps(key: string, kind: string): ResourceDef {
  return { ...core(key, kind, { statusSubresource: true, generation: true }), group: "apps" };
}

function rbac(key: string, kind: string, namespaced: boolean): ResourceDef {
  return { ...core(key, kind, { namespaced }), group: "rbac.authorization.k8s.io" };
}

export const RESOURCES = {
  gameruntimes: {
    key: "gameruntimes",
    group: "galaxy.io",
    version: "v1alpha1",
    plural: "gameruntimes",
    kind: "GameRuntime",
    listKind: "GameRuntimeList",
    statusSubresource: true,
    custom: true,
    namespaced: true,
    fields: {},
  },
  leases: {
    key: "leases",
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    kind: "Lease",
    listKind: "LeaseList",
    statusSubresource: false,
    custom: false,
    namespaced: true,
    fields: {},
  },
  events: core("events", "Event"),
  // The field selectors below are the ones pkg/registry/core/*/strategy.go registers.
  pods: core("pods", "Pod", {
    statusSubresource: true,
    fields: {
      "spec.nodeName": (o) => str(spec(o).nodeName),
      "spec.restartPolicy": (o) => str(spec(o).restartPolicy),
      "spec.schedulerName": (o) => str(spec(o).schedulerName),
      "spec.serviceAccountName": (o) => str(spec(o).serviceAccountName),
      "status.phase": (o) => str(status(o).phase),
      "status.podIP": (o) => str(status(o).podIP),
      "status.nominatedNodeName": (o) => str(status(o).nominatedNodeName),
    },
  }),
  services: core("services", "Service", { statusSubresource: true }),
  resourcequotas: core("resourcequotas", "ResourceQuota", { statusSubresource: true }),
  persistentvolumeclaims: core("persistentvolumeclaims", "PersistentVolumeClaim", { statusSubresource: true }),
  nodes: core("nodes", "Node", { statusSubresource: true, namespaced: false, fields: { "spec.unschedulable": (o) => str(spec(o).unschedulable ?? false) } }),
  // What `kubectl apply -k deploy/kustomize/overlays/pods` and the documented
  // install steps before it write (test/integration/install-pods.test.ts).
  // Stored and served as written, with the create defaults of rules.ts; no
  // controller acts on them (no RBAC enforcement, no Deployment controller).
  namespaces: core("namespaces", "Namespace", { statusSubresource: true, namespaced: false, fields: { "status.phase": (o) => str(status(o).phase) } }),
  secrets: core("secrets", "Secret", { fields: { type: (o) => str(o.type) } }),
  configmaps: core("configmaps", "ConfigMap"),
  serviceaccounts: core("serviceaccounts", "ServiceAccount"),
  deployments: apps("deployments", "Deployment"),
  roles: rbac("roles", "Role", true),
  rolebindings: rbac("rolebindings", "RoleBinding", true),
  clusterroles: rbac("clusterroles", "ClusterRole", false),
  clusterrolebindings: rbac("clusterrolebindings", "ClusterRoleBinding", false),
  customresourcedefinitions: {
    key: "customresourcedefinitions",
    group: "apiextensions.k8s.io",
    version: "v1",
    plural: "customresourcedefinitions",
    kind: "CustomResourceDefinition",
    listKind: "CustomResourceDefinitionList",
    statusSubresource: true,
    custom: false,
    generation: true,
    namespaced: false,
    fields: {},
  },
} satisfies Record<string, ResourceDef>;
export type ResourceName = keyof typeof RESOURCES;

export function defOf(resource: ResourceName): ResourceDef {
  return RESOURCES[resource];
}

export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

export interface ParsedPath {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  subresource?: string;
}

export function parsePath(path: string): ParsedPath | null {
  const parts = path.split("/").filter(Boolean);
  let rest: string[];
  let group: string;
  let version: string;
  if (parts[0] === "api") {
    group = "";
    version = parts[1] ?? "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis") {
    group = parts[1] ?? "";
    version = parts[2] ?? "";
    rest = parts.slice(3);
  } else return null;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const def = Object.values(RESOURCES as Record<string, ResourceDef>).find((r) => r.group === group && r.version === version && r.plural === rest[0]);
  if (!def || rest.length > 3) return null;
  if (!def.namespaced && namespace !== undefined) return null;
  return { def, namespace, name: rest[1], subresource: rest[2] };
}
