/**
 * The core/v1 side of the test API server as a controller sees it through
 * CoreV1Api (selectors, watch transitions, conflicts, the three patch types,
 * pod immutability, grace periods, owner references), and the simulated
 * kubelet mode. No Docker here.
 */
import { CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { TestCluster } from "../k8s/kubelet/cluster.js";
import { enginePod, until } from "./helpers.js";

const patchAs = (type: string) => setHeaderOptions("Content-Type", type);
let server: FakeApiServer;
let core: CoreV1Api;

beforeAll(async () => {
  server = await FakeApiServer.start();
  core = fakeKubeConfig(server.url).makeApiClient(CoreV1Api);
});
afterAll(async () => server?.stop());

function pod(name: string, labels: Record<string, string>, nodeName?: string): V1Pod {
  const p = enginePod(name, "galaxy/test-engine:1.0.0", { labels });
  if (nodeName) p.spec!.nodeName = nodeName;
  return p;
}

describe("test API server: core/v1", () => {
  it("filters lists by label selector (=, !=, in, notin, exists, !exists) and by spec.nodeName; an unknown field is a 400", async () => {
    const ns = "sel";
    await core.createNamespacedPod({ namespace: ns, body: pod("a", { tier: "game", zone: "eu" }, "n1") });
    await core.createNamespacedPod({ namespace: ns, body: pod("b", { tier: "game", zone: "us" }, "n2") });
    await core.createNamespacedPod({ namespace: ns, body: pod("c", { tier: "web" }) });
    const names = async (q: { labelSelector?: string; fieldSelector?: string }) => (await core.listNamespacedPod({ namespace: ns, ...q })).items.map((p) => p.metadata!.name).sort();
    expect(await names({ labelSelector: "tier=game" })).toEqual(["a", "b"]);
    expect(await names({ labelSelector: "tier=game,zone!=eu" })).toEqual(["b"]);
    expect(await names({ labelSelector: "zone in (eu,us),app" })).toEqual(["a", "b"]);
    expect(await names({ labelSelector: "zone notin (eu)" })).toEqual(["b", "c"]);
    expect(await names({ labelSelector: "!zone" })).toEqual(["c"]);
    expect(await names({ fieldSelector: "spec.nodeName=n1" })).toEqual(["a"]);
    expect(await names({ fieldSelector: "spec.nodeName=" })).toEqual(["c"]);
    expect(await names({ fieldSelector: "status.phase=Pending,metadata.name!=a" })).toEqual(["b", "c"]);
    await expect(names({ fieldSelector: "spec.image=x" })).rejects.toMatchObject({ code: 400 });
  });

  it("a watch with a label selector sees an object leave (DELETED) and join (ADDED) when its labels change", async () => {
    const ns = "watch";
    await core.createNamespacedPod({ namespace: ns, body: pod("w", { role: "primary" }) });
    const events: string[] = [];
    const rv = (await core.listNamespacedPod({ namespace: ns })).metadata?.resourceVersion;
    const ac = await new Watch(fakeKubeConfig(server.url)).watch(`/api/v1/namespaces/${ns}/pods`, { labelSelector: "role=primary", resourceVersion: rv }, (t, o: V1Pod) => events.push(`${t} ${o.metadata?.labels?.role}`), () => undefined);
    const relabel = (role: string) => core.patchNamespacedPod({ name: "w", namespace: ns, body: { metadata: { labels: { role } } } }, patchAs(PatchStrategy.MergePatch));
    await relabel("standby");
    await relabel("primary");
    await core.patchNamespacedPod({ name: "w", namespace: ns, body: { metadata: { annotations: { x: "1" } } } }, patchAs(PatchStrategy.StrategicMergePatch));
    await until("three events", () => events.length >= 3);
    ac.abort();
    expect(events).toEqual(["DELETED standby", "ADDED primary", "MODIFIED primary"]);
  });

  it("refuses a stale resourceVersion (409) and a spec change other than images (422); patches an image by strategic merge, JSON patch or a whole-list merge patch", async () => {
    const ns = "patch";
    const created = await core.createNamespacedPod({ namespace: ns, body: pod("p", {}) });
    expect(created.spec?.containers[0]?.imagePullPolicy).toBe("IfNotPresent");
    expect(created.spec?.containers[0]?.readinessProbe?.timeoutSeconds).toBe(1);
    await core.patchNamespacedPod({ name: "p", namespace: ns, body: { metadata: { labels: { v: "2" } } } }, patchAs(PatchStrategy.MergePatch));
    await expect(core.replaceNamespacedPod({ name: "p", namespace: ns, body: created })).rejects.toMatchObject({ code: 409 });

    const image = async () => (await core.readNamespacedPod({ name: "p", namespace: ns })).spec?.containers[0]?.image;
    const sm = await core.patchNamespacedPod({ name: "p", namespace: ns, body: { spec: { containers: [{ name: "engine", image: "galaxy/test-engine:1.0.1" }] } } }, patchAs(PatchStrategy.StrategicMergePatch));
    expect(sm.spec?.containers[0]).toMatchObject({ image: "galaxy/test-engine:1.0.1", ports: [{ containerPort: 8080, name: "http", protocol: "TCP" }] });
    // A JSON merge patch replaces lists whole: the container would lose its ports and probe, which a pod update may not do.
    await expect(core.patchNamespacedPod({ name: "p", namespace: ns, body: { spec: { containers: [{ name: "engine", image: "galaxy/test-engine:1.0.2" }] } } }, patchAs(PatchStrategy.MergePatch))).rejects.toMatchObject({ code: 422 });
    const whole = structuredClone(sm.spec!.containers);
    whole[0]!.image = "galaxy/test-engine:1.0.2";
    await core.patchNamespacedPod({ name: "p", namespace: ns, body: { spec: { containers: whole } } }, patchAs(PatchStrategy.MergePatch));
    expect(await image()).toBe("galaxy/test-engine:1.0.2");
    await core.patchNamespacedPod({ name: "p", namespace: ns, body: [{ op: "replace", path: "/spec/containers/0/image", value: "galaxy/test-engine:2.0.0" }] }, patchAs(PatchStrategy.JsonPatch));
    expect(await image()).toBe("galaxy/test-engine:2.0.0");
    await expect(core.patchNamespacedPod({ name: "p", namespace: ns, body: { spec: { terminationGracePeriodSeconds: 1 } } }, patchAs(PatchStrategy.StrategicMergePatch))).rejects.toMatchObject({ code: 422 });
  });

  it("deletes a bound pod gracefully (deletionTimestamp, grace) until a grace-0 delete; an unbound pod at once", async () => {
    const ns = "del";
    await core.createNamespacedPod({ namespace: ns, body: pod("bound", {}, "nowhere") });
    await core.createNamespacedPod({ namespace: ns, body: pod("free", {}) });
    await core.deleteNamespacedPod({ name: "free", namespace: ns });
    expect(server.get("pods", ns, "free")).toBeUndefined();
    await core.deleteNamespacedPod({ name: "bound", namespace: ns, gracePeriodSeconds: 20 });
    const terminating = await core.readNamespacedPod({ name: "bound", namespace: ns });
    expect(terminating.metadata?.deletionGracePeriodSeconds).toBe(20);
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    await core.deleteNamespacedPod({ name: "bound", namespace: ns, gracePeriodSeconds: 0 });
    expect(server.get("pods", ns, "bound")).toBeUndefined();
  });

  it("garbage-collects dependents by ownerReferences: Background deletes them, Orphan keeps them without the reference, Foreground holds the owner", async () => {
    const ns = "gc";
    const mk = async (name: string, owner?: { name: string; uid: string }) =>
      core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name, ...(owner ? { ownerReferences: [{ apiVersion: "v1", kind: "Service", name: owner.name, uid: owner.uid, blockOwnerDeletion: true }] } : {}) }, spec: { ports: [{ port: 80 }] } },
      });
    const ref = (s: { metadata?: { name?: string; uid?: string } }) => ({ name: s.metadata!.name!, uid: s.metadata!.uid! });
    const bg = await mk("bg");
    await mk("bg-child", ref(bg));
    await core.deleteNamespacedService({ name: "bg", namespace: ns });
    expect(server.get("services", ns, "bg-child")).toBeUndefined();

    const or = await mk("or");
    await mk("or-child", ref(or));
    await core.deleteNamespacedService({ name: "or", namespace: ns, propagationPolicy: "Orphan" });
    expect(server.get("services", ns, "or-child")?.metadata.ownerReferences).toBeUndefined();

    const fg = await mk("fg");
    const child = ref(await mk("fg-child", ref(fg)));
    const podChild = enginePod("fg-pod", "galaxy/test-engine:1.0.0");
    podChild.metadata!.ownerReferences = [{ apiVersion: "v1", kind: "Service", name: "fg", uid: fg.metadata!.uid!, blockOwnerDeletion: true }];
    podChild.spec!.nodeName = "nowhere";
    await core.createNamespacedPod({ namespace: ns, body: podChild });
    await core.deleteNamespacedService({ name: "fg", namespace: ns, propagationPolicy: "Foreground" });
    expect(server.get("services", ns, child.name)).toBeUndefined();
    // The pod is still terminating (its grace period): the owner waits, with the foregroundDeletion finalizer.
    expect(server.get("services", ns, "fg")?.metadata.finalizers).toEqual(["foregroundDeletion"]);
    await core.deleteNamespacedPod({ name: "fg-pod", namespace: ns, gracePeriodSeconds: 0 });
    expect(server.get("services", ns, "fg")).toBeUndefined();
  });
});

describe("test kubelet, simulated mode", () => {
  let sim: FakeApiServer;
  let cluster: TestCluster;
  beforeAll(async () => {
    sim = await FakeApiServer.start();
    cluster = await TestCluster.start(sim, { mode: "simulated", nodes: 4 });
  });
  afterAll(async () => {
    await cluster?.stop();
    await sim?.stop();
  });

  it("reports 400 pods Running and Ready across the nodes without a container; an image change restarts, deletion completes", async () => {
    const c = fakeKubeConfig(sim.url).makeApiClient(CoreV1Api);
    for (let i = 0; i < 400; i++) await c.createNamespacedPod({ namespace: "scale", body: enginePod(`p-${i}`, "galaxy/test-engine:1.0.0") });
    const pods = await until("every pod Ready", async () => {
      const list = await c.listNamespacedPod({ namespace: "scale", fieldSelector: "status.phase=Running" });
      return list.items.length === 400 && list.items.every((p) => p.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True")) ? list.items : undefined;
    });
    const perNode = new Map<string, number>();
    for (const p of pods) perNode.set(p.spec!.nodeName!, (perNode.get(p.spec!.nodeName!) ?? 0) + 1);
    expect([...perNode.values()]).toEqual([100, 100, 100, 100]);
    expect(pods[0]?.status?.containerStatuses?.[0]?.containerID).toMatch(/^simulated:\/\//);

    const before = pods.find((p) => p.metadata?.name === "p-7")!;
    await c.patchNamespacedPod({ name: "p-7", namespace: "scale", body: { spec: { containers: [{ name: "engine", image: "galaxy/test-engine:1.0.1" }] } } }, patchAs(PatchStrategy.StrategicMergePatch));
    const after = await until("p-7 on the new image", async () => {
      const p = await c.readNamespacedPod({ name: "p-7", namespace: "scale" });
      return p.status?.containerStatuses?.[0]?.image === "docker.io/galaxy/test-engine:1.0.1" ? p : undefined; // simulated: the spec's ref, qualified
    });
    expect(after.status?.containerStatuses?.[0]?.restartCount).toBe(1);
    expect(after.status?.containerStatuses?.[0]?.containerID).not.toBe(before.status?.containerStatuses?.[0]?.containerID);
    await c.deleteNamespacedPod({ name: "p-7", namespace: "scale" });
    await until("p-7 gone", () => sim.get("pods", "scale", "p-7") === undefined);
  });
});
