/** Kubernetes mode's namespaces from the configuration (RTMANAGER_KUBE_NAMESPACE, RTMANAGER_KUBE_CREATE_NAMESPACE, POD_NAMESPACE). */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { kubeNamespaces } from "../../src/crd/namespaces.js";

describe("Kubernetes namespaces", () => {
  it("namespaced: everything in the watched namespace", () => {
    expect(kubeNamespaces(loadConfig({ RTMANAGER_KUBE_NAMESPACE: "games", POD_NAMESPACE: "galaxy" }))).toEqual({ watch: "games", create: "games", lease: "games" });
    expect(kubeNamespaces(loadConfig({ RTMANAGER_KUBE_NAMESPACE: "games", RTMANAGER_KUBE_CREATE_NAMESPACE: "games" })).create).toBe("games");
  });

  it("cluster-wide: the Lease in the pod's namespace; creates in RTMANAGER_KUBE_CREATE_NAMESPACE, else the pod's namespace, else default", () => {
    expect(kubeNamespaces(loadConfig({ POD_NAMESPACE: "galaxy" }))).toEqual({ watch: undefined, create: "galaxy", lease: "galaxy" });
    expect(kubeNamespaces(loadConfig({ POD_NAMESPACE: "galaxy", RTMANAGER_KUBE_CREATE_NAMESPACE: "games" }))).toEqual({ watch: undefined, create: "games", lease: "galaxy" });
    expect(kubeNamespaces(loadConfig({}))).toEqual({ watch: undefined, create: "default", lease: "default" });
  });

  it.each([
    [{ RTMANAGER_KUBE_NAMESPACE: "games", RTMANAGER_KUBE_CREATE_NAMESPACE: "other" }, "RTMANAGER_KUBE_CREATE_NAMESPACE"],
    [{ RTMANAGER_KUBE_CREATE_NAMESPACE: "Not_A_Namespace" }, "RTMANAGER_KUBE_CREATE_NAMESPACE"],
    [{ POD_NAMESPACE: "bad/ns" }, "POD_NAMESPACE"],
    [{ RTMANAGER_KUBE_NAMESPACE: "UPPER" }, "RTMANAGER_KUBE_NAMESPACE"],
  ])("a bad namespace setting stops start-up naming it (%o)", (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});
