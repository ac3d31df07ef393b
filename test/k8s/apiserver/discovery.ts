/**
 * Discovery, as kubectl reads it to map `deploy/rtmanager`, `grt` or
 * `pods,svc,pvc` to resources: /version, and the legacy (unaggregated)
 * documents /api, /api/v1, /apis, /apis/{group} and /apis/{group}/{version}
 * (staging/src/k8s.io/apiserver/pkg/endpoints/discovery). kubectl asks for the
 * aggregated form first (Accept: ...;as=APIGroupDiscoveryList) and falls back
 * to these when the answer is plain application/json, as against a pre-1.26
 * server (client-go discovery.ServerGroupsAndResources).
 *
 * A custom resource appears only once a CustomResourceDefinition for it is
 * stored (apiextensions-apiserver's DiscoveryController adds it when the CRD
 * is Established, which rules.ts sets on create), with the CRD's short names.
 * Unlike upstream, its REST paths answer with or without the CRD (the
 * controller suites never create one).
 *
 * OpenAPI v3 is served only as far as kubectl reads it before a write: the
 * index /openapi/v3 and per group-version documents whose PATCH operations
 * carry `x-kubernetes-group-version-kind` and the `fieldValidation` query
 * parameter, which is how kubectl decides the server validates fields itself
 * (cli-runtime resource.queryParamVerifierV3 HasSupport /
 * supportsQueryParamV3) and sends `fieldValidation=Strict` instead of
 * validating client-side. No schemas: this server validates nothing against
 * them (nor does it prune), and kubectl then takes strategic-merge metadata
 * from its compiled-in types. /openapi/v2 is 404.
 */
import type http from "node:http";
import { RESOURCES, apiVersionOf } from "./resources.js";
import type { ObjectStore } from "./store.js";
import type { ResourceDef } from "./types.js";

const SHORT_NAMES: Record<string, string[]> = {
  pods: ["po"],
  services: ["svc"],
  persistentvolumeclaims: ["pvc"],
  namespaces: ["ns"],
  nodes: ["no"],
  events: ["ev"],
  configmaps: ["cm"],
  serviceaccounts: ["sa"],
  resourcequotas: ["quota"],
  deployments: ["deploy"],
  customresourcedefinitions: ["crd", "crds"],
};
const VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"];

interface CrdNames {
  plural?: string;
  shortNames?: string[];
  categories?: string[];
}

/** The served kinds, custom ones only with their CRD (and its short names). */
function served(store: ObjectStore): { def: ResourceDef; shortNames: string[]; categories?: string[] }[] {
  const crds = store.all(RESOURCES.customresourcedefinitions).map((o) => o.spec as { group?: string; names?: CrdNames });
  const out: { def: ResourceDef; shortNames: string[]; categories?: string[] }[] = [];
  for (const def of Object.values(RESOURCES) as ResourceDef[]) {
    if (!def.custom) {
      out.push({ def, shortNames: SHORT_NAMES[def.key] ?? [] });
      continue;
    }
    const crd = crds.find((c) => c.group === def.group && c.names?.plural === def.plural);
    if (crd) out.push({ def, shortNames: crd.names?.shortNames ?? [], categories: crd.names?.categories });
  }
  return out;
}

function resourceList(store: ObjectStore, groupVersion: string): Record<string, unknown> | null {
  const kinds = served(store).filter((s) => apiVersionOf(s.def) === groupVersion);
  if (kinds.length === 0) return null;
  const resources = kinds.flatMap(({ def, shortNames, categories }) => [
    { name: def.plural, singularName: def.kind.toLowerCase(), namespaced: def.namespaced, kind: def.kind, verbs: VERBS, ...(shortNames.length ? { shortNames } : {}), ...(categories ? { categories } : {}) },
    ...(def.statusSubresource ? [{ name: `${def.plural}/status`, singularName: "", namespaced: def.namespaced, kind: def.kind, verbs: ["get", "patch", "update"] }] : []),
    ...(def.key === "pods"
      ? [
          { name: "pods/log", singularName: "", namespaced: true, kind: "Pod", verbs: ["get"] },
          { name: "pods/exec", singularName: "", namespaced: true, kind: "PodExecOptions", verbs: ["create", "get"] },
          { name: "pods/binding", singularName: "", namespaced: true, kind: "Binding", verbs: ["create"] },
        ]
      : []),
  ]);
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion, resources };
}

function groups(store: ObjectStore): Record<string, unknown>[] {
  const byGroup = new Map<string, Set<string>>();
  for (const { def } of served(store)) if (def.group) byGroup.set(def.group, (byGroup.get(def.group) ?? new Set()).add(def.version));
  return [...byGroup].map(([name, versions]) => {
    const list = [...versions].map((version) => ({ groupVersion: `${name}/${version}`, version }));
    return { name, versions: list, preferredVersion: list[0] };
  });
}

function openapiIndex(store: ObjectStore): Record<string, unknown> {
  const gvs = new Set(served(store).map((s) => (s.def.group ? `apis/${apiVersionOf(s.def)}` : "api/v1")));
  return { paths: Object.fromEntries([...gvs].map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}?hash=rtmanager-test` }])) };
}

function openapiGroupVersion(store: ObjectStore, gv: string): Record<string, unknown> | null {
  const kinds = served(store).filter((s) => (s.def.group ? `apis/${apiVersionOf(s.def)}` : "api/v1") === gv);
  if (kinds.length === 0) return null;
  const fieldValidation = { name: "fieldValidation", in: "query", schema: { type: "string", uniqueItems: true } };
  const paths = Object.fromEntries(
    kinds.map(({ def }) => [
      `/${gv}/${def.namespaced ? "namespaces/{namespace}/" : ""}${def.plural}/{name}`,
      { patch: { "x-kubernetes-group-version-kind": { group: def.group, version: def.version, kind: def.kind }, parameters: [fieldValidation] } },
    ]),
  );
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.32.0-rtmanager-test" }, paths };
}

/** Answers a discovery or OpenAPI v3 path; false when `path` is not one. */
export function serveDiscovery(store: ObjectStore, path: string, res: http.ServerResponse, send: (res: http.ServerResponse, code: number, body: unknown) => void): boolean {
  const parts = path.split("/").filter(Boolean);
  if (path === "/version") {
    send(res, 200, { major: "1", minor: "32", gitVersion: "v1.32.0-rtmanager-test", platform: "linux/amd64" });
    return true;
  }
  if (parts[0] === "openapi" && parts[1] === "v3") {
    const doc = parts.length === 2 ? openapiIndex(store) : openapiGroupVersion(store, parts.slice(2).join("/"));
    if (!doc) return false;
    send(res, 200, doc);
    return true;
  }
  if (parts[0] === "api" && parts.length === 1) {
    send(res, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: "127.0.0.1" }] });
    return true;
  }
  if (parts[0] === "apis" && parts.length === 1) {
    send(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: groups(store) });
    return true;
  }
  if (parts[0] === "apis" && parts.length === 2) {
    const group = groups(store).find((g) => g.name === parts[1]);
    if (!group) return false;
    send(res, 200, { kind: "APIGroup", apiVersion: "v1", ...group });
    return true;
  }
  const gv = parts[0] === "api" && parts.length === 2 ? parts[1]! : parts[0] === "apis" && parts.length === 3 ? `${parts[1]}/${parts[2]}` : null;
  if (gv === null) return false;
  const list = resourceList(store, gv);
  if (!list) return false;
  send(res, 200, list);
  return true;
}
