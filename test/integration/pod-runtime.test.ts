/**
 * The Pod runtime end to end, wired as production wires it: createApp with
 * RTMANAGER_RUNTIME=kubernetes, declarations in the store (PGlite), the
 * kubeconfig read from $KUBECONFIG pointing at the test API server, and the
 * test kubelet running each Pod as a real Docker container of the test
 * engine (test/k8s/README.md says what it models and what it does not).
 *
 * Only what Pods have and containers do not: the Kubernetes objects, in-place
 * patches, long ids, Pods deleted or evicted, orphans, node failure, the
 * GameRuntime source, RBAC. The contract's behaviour (start, replays, stop,
 * restart, patch and rollback, pull failures, a killed engine, cleanup) runs
 * on both runtimes in runtime-behaviour.test.ts, with PostgreSQL.
 *
 * Time budget: under a minute on a quiet 2-core machine (a few seconds of
 * Pod start-up per case).
 */
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { pino } from "pino";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { RtmApiError, RtmClient } from "../../src/client/index.js";
import { loadConfig } from "../../src/config.js";
import { rawRequest } from "../helpers/contract.js";
import { TEST_IMAGES, uniqueGameId, uniqueInstance } from "../helpers/docker.js";
import { FakeApiServer, type Obj } from "../k8s/fakeApiServer.js";
import { TestCluster } from "../k8s/kubelet/cluster.js";
import { startPodTestApp, type PodTestApp } from "../helpers/podApp.js";
import { until } from "../k8s-infra/helpers.js";
import { createAppWithKubeconfig } from "../helpers/kubeconfigApp.js";
import { afterLoopLookedAgain } from "../helpers/loop.js";

const NS = "games";
let t: PodTestApp;
let instance: string;
let server: FakeApiServer;
let cluster: TestCluster;
let app: App;
let client: RtmClient;
let baseUrl: string;
let root: string;

beforeAll(async () => {
  t = await startPodTestApp({
    name: "pods",
    nodes: 3,
    env: { RTMANAGER_PATCH_MIN_HEALTHY: "1s", RTMANAGER_PATCH_HEALTH_TIMEOUT: "6s", RTMANAGER_OP_TIMEOUT: "30s", RTMANAGER_ORPHAN_GRACE: "1s" },
  });
  ({ server, cluster, app, baseUrl, instance, root } = t);
  client = new RtmClient({ baseUrl, timeoutMs: 40_000 });
}, 120_000);

afterAll(async () => {
  await t?.close();
}, 60_000);

const podOf = (g: string): Obj | undefined => t.podOf(g);
const engineStatus = (pod: Obj | undefined) =>
  (pod?.status as { containerStatuses?: { name: string; containerID?: string; image: string; restartCount: number; ready: boolean }[] } | undefined)?.containerStatuses?.find(
    (c) => c.name === "engine",
  );
const stripScheme = (id: string | undefined) => id?.replace(/^[a-z]+:\/\//, "");

function version(pod: Obj): Promise<string> {
  const port = TestCluster.hostPort(pod);
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/version", agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve(body.trim()));
      })
      .on("error", reject);
  });
}

async function readyPod(g: string, image: string): Promise<Obj> {
  try {
    return await until(`${g} ready on ${image}`, () => {
      const pod = podOf(g);
      const cs = engineStatus(pod);
      // Not from the status's image: the test kubelet names it as containerd does (any of the image's tags, qualified).
      // The spec asks for it and the ready container is not the one an in-place patch replaced.
      const wanted = (pod?.spec as { containers: { image: string }[] } | undefined)?.containers[0]?.image === image;
      const replaced = pod?.metadata.annotations?.["rtmanager.galaxy.io/replaced-container"];
      return cs?.ready && wanted && cs.containerID?.replace(/^[a-z]+:\/\//, "") !== replaced && !pod?.metadata.deletionTimestamp ? pod : undefined;
    }, 30_000);
  } catch (err) {
    const pod = podOf(g);
    throw new Error(`${(err as Error).message}; Pod now: ${JSON.stringify({ spec: pod?.spec, status: pod?.status, annotations: pod?.metadata.annotations })}`);
  }
}

async function rejection(p: Promise<unknown>): Promise<RtmApiError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(RtmApiError);
  return err as RtmApiError;
}

describe("engines as Pods (RTMANAGER_RUNTIME=kubernetes, declarations in the store)", () => {
  // The contract's answers (record fields, replays, stop/start/restart/patch/rollback/cleanup, a killed
  // engine) run on both runtimes in runtime-behaviour.test.ts; this file keeps what only Pods have.
  it("start creates the Pod, its Service and its claim, labelled; the record names the kubelet's container", async () => {
    const g = uniqueGameId("start");
    const record = await client.start(g, TEST_IMAGES.v100);
    const pod = await readyPod(g, TEST_IMAGES.v100);
    expect(record.current_container_id).toBe(stripScheme(engineStatus(pod)?.containerID));
    expect(pod.metadata.labels).toMatchObject({ "rtmanager.galaxy.io/instance": instance, "rtmanager.galaxy.io/game-id": g });
    expect((pod.spec as { restartPolicy: string }).restartPolicy).toBe("OnFailure");
    expect(server.get("services", NS, `galaxy-game-${g}`)).toBeDefined();
    expect(server.get("persistentvolumeclaims", NS, `galaxy-game-${g}-state`)).toBeDefined();
    expect(await version(pod)).toBe("1.0.0");
    // The engine reads its id and state path from the env the Pod sets.
    expect(await client.logs(g, 20)).toContain("engine 1.0.0 starting");
  }, 60_000);

  it("a game id whose Service name would pass 63 characters is refused with start_config_invalid, and nothing is created", async () => {
    const g = `long-${"a".repeat(47)}`;
    expect(g).toHaveLength(52);
    const err = await rejection(client.start(g, TEST_IMAGES.v100));
    expect(err.code).toBe("start_config_invalid");
    expect(err.message).toMatch(/at most 51 characters/);
    expect(podOf(g)).toBeUndefined();
  }, 60_000);

  it("patch swaps the image of the same Pod in place, restart is a new Pod; Game Master's exact requests (patch, stop) answer as the Go client expects; stop and cleanup keep Service and claim", async () => {
    const g = uniqueGameId("patch");
    await client.start(g, TEST_IMAGES.v100);
    const before = await readyPod(g, TEST_IMAGES.v100);
    const req = (op: string, body: object) =>
      rawRequest(baseUrl, {
        method: "POST",
        path: `/api/v1/internal/runtimes/${encodeURIComponent(g)}/${op}`,
        headers: { accept: "application/json", "content-type": "application/json", "user-agent": "Go-http-client/1.1" },
        body: JSON.stringify(body),
      });
    const patch = await req("patch", { image_ref: TEST_IMAGES.v101 });
    expect(patch.status, patch.text).toBe(200);
    expect(JSON.parse(patch.text)).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101 });
    const after = await readyPod(g, TEST_IMAGES.v101);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(await version(after)).toBe("1.0.1");
    expect((await client.restart(g)).status).toBe("running");
    const restarted = await readyPod(g, TEST_IMAGES.v101);
    expect(restarted.metadata.uid).not.toBe(before.metadata.uid);
    const stop = await req("stop", { reason: "admin_request" });
    expect(stop.status, stop.text).toBe(200);
    await until("Pod gone", () => !podOf(g), 20_000);
    expect(server.get("services", NS, `galaxy-game-${g}`)).toBeDefined();
    expect(server.get("persistentvolumeclaims", NS, `galaxy-game-${g}-state`)).toBeDefined();
    expect((await client.cleanup(g)).status).toBe("removed");
    expect(server.get("persistentvolumeclaims", NS, `galaxy-game-${g}-state`)).toBeDefined();
  }, 90_000);

  it("an evicted Pod is recreated (the evicted one only holds the name, so it is replaced)", async () => {
    const g = uniqueGameId("evicted");
    await client.start(g, TEST_IMAGES.v100);
    const pod = await readyPod(g, TEST_IMAGES.v100);
    // What the kubelet writes when it evicts a Pod under node pressure.
    server.setStatus("pods", NS, `galaxy-game-${g}`, { ...(pod.status as object), phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." });
    const again = await until("a new Pod, ready", () => {
      const p = podOf(g);
      return p && p.metadata.uid !== pod.metadata.uid && engineStatus(p)?.ready ? p : undefined;
    }, 40_000);
    await until("the recreation recorded", async () => (await app.store.eventsAfter(0, { gameId: g })).some((e) => e.type === "container_disappeared"), 20_000);
    expect(again.metadata.name).toBe(`galaxy-game-${g}`);
  }, 60_000);

  it("a Pod with this installation's labels and no declaration is an orphan: removed after the grace (orphan_removed), claim kept", async () => {
    const g = uniqueGameId("orphan");
    await client.start(g, TEST_IMAGES.v100);
    await readyPod(g, TEST_IMAGES.v100);
    expect(await app.source.delete(g)).toBe(true);
    await until("orphan Pod removed", () => !podOf(g), 30_000);
    await until("orphan_removed recorded", async () => (await app.store.eventsAfter(0, { gameId: g })).some((e) => e.type === "orphan_removed"), 20_000);
    expect(server.get("persistentvolumeclaims", NS, `galaxy-game-${g}-state`)).toBeDefined();
  }, 60_000);

  it("a Service deleted by hand while its engine runs is created again; the Pod is left alone", async () => {
    const g = uniqueGameId("svc");
    await client.start(g, TEST_IMAGES.v100);
    const pod = await readyPod(g, TEST_IMAGES.v100);
    const before = server.get("services", NS, `galaxy-game-${g}`)!;
    server.remove("services", NS, `galaxy-game-${g}`);
    const again = await until("the Service back", () => {
      const svc = server.get("services", NS, `galaxy-game-${g}`);
      return svc && svc.metadata.uid !== before.metadata.uid ? svc : undefined;
    }, 20_000);
    expect(again.metadata.labels).toEqual(before.metadata.labels);
    expect(podOf(g)!.metadata.uid).toBe(pod.metadata.uid);
    expect((await client.get(g)).status).toBe("running");
  }, 60_000);

  it("RTMANAGER_POD_CLAIM_RETENTION: a removed game's claim is deleted after the retention, a restarted game's is kept", async () => {
    const other = await startPodTestApp({ name: "claims", nodes: 0, on: { server, cluster }, env: { RTMANAGER_POD_CLAIM_RETENTION: "2s" } });
    try {
      const retained = new RtmClient({ baseUrl: other.baseUrl, timeoutMs: 40_000 });
      const [gone, kept] = [uniqueGameId("claimgone"), uniqueGameId("claimkept")];
      const claim = (g: string) => server.get("persistentvolumeclaims", NS, `galaxy-game-${g}-state`);
      for (const g of [gone, kept]) {
        await retained.start(g, TEST_IMAGES.v100);
        await retained.stop(g, "finished");
        await retained.cleanup(g);
        expect(claim(g)?.metadata.annotations?.["rtmanager.galaxy.io/released-at"], g).toBeDefined();
      }
      // Started again before the retention ran out: the new engine holds its claim.
      await retained.start(kept, TEST_IMAGES.v100);
      expect(claim(kept)?.metadata.annotations?.["rtmanager.galaxy.io/released-at"]).toBeUndefined();
      await until("the released claim deleted", () => !claim(gone) || undefined, 20_000);
      await new Promise((r) => setTimeout(r, 3_000));
      expect(claim(kept), "a claim whose game runs again is never deleted").toBeDefined();
      await retained.stop(kept, "finished");
    } finally {
      await other.close();
    }
  }, 90_000);

  it("a Pod the kubelet rejects at admission (Failed, OutOfcpu) answers 500 with the reason, is replaced, and runs once the node has room", async () => {
    const g = uniqueGameId("outofcpu");
    const kubelets = [...cluster.kubelets.values()];
    for (const k of kubelets) k.setAllocatableCpu(100);
    let restored = false;
    try {
      const err = await rejection(client.start(g, TEST_IMAGES.v100));
      expect(err.code).toBe("container_start_failed");
      expect(err.message).toMatch(/OutOfcpu/);
      // Replaced, not left dead: each rejected Pod is removed and a new one tried while no node has room; every
      // rejection is reported with the kubelet's reason.
      const events = await until("two rejected Pods replaced", async () => {
        const all = await app.store.eventsAfter(0, { gameId: g });
        return all.filter((e) => e.type === "container_removed").length >= 2 ? all : undefined;
      }, 30_000);
      const failures = events.filter((e) => e.type === "reconcile_failed").map((e) => e.data as { code: string; message: string });
      // Each rejected Pod is reported, with the kubelet's reason, though every rejection reads the same (failureReports.ts).
      expect(failures.length).toBeGreaterThanOrEqual(2);
      for (const f of failures) expect(f).toMatchObject({ code: "container_start_failed", message: expect.stringMatching(/^OutOfcpu: Pod was rejected: Node didn't have enough resource: cpu/) });
      expect((await app.store.getRecord(g))?.lastErrorMessage).toMatch(/^OutOfcpu: /);
      for (const k of kubelets) k.setAllocatableCpu(Infinity);
      restored = true;
      await readyPod(g, TEST_IMAGES.v100);
      const record = await until("record running, the error cleared", async () => {
        const r = await app.store.getRecord(g);
        return r?.status === "running" && r.lastErrorCode === null ? r : undefined;
      }, 30_000);
      expect(record.currentImageRef).toBe(TEST_IMAGES.v100);
    } finally {
      if (!restored) for (const k of kubelets) k.setAllocatableCpu(Infinity);
    }
  }, 90_000);

  it("a Pod deleted by hand is recreated", async () => {
    const g = uniqueGameId("gone");
    await client.start(g, TEST_IMAGES.v100);
    const pod = await readyPod(g, TEST_IMAGES.v100);
    server.remove("pods", NS, `galaxy-game-${g}`);
    const again = await until("a new Pod, ready", () => {
      const p = podOf(g);
      return p && p.metadata.uid !== pod.metadata.uid && engineStatus(p)?.ready ? p : undefined;
    }, 40_000);
    const record = await until("record on the new Pod", async () => {
      const r = await client.get(g);
      return r.status === "running" && r.current_container_id === stripScheme(engineStatus(again)?.containerID) ? r : undefined;
    }, 20_000);
    expect(record.current_image_ref).toBe(TEST_IMAGES.v100);
  }, 60_000);
});

describe("engines as Pods with GameRuntime objects as the source", () => {
  const TEAM = "team-a";
  const kubeInstance = uniqueInstance("podsk");
  let kubeApp: App;

  beforeAll(async () => {
    const kubeconfigFile = path.join(root, "kubeconfig");
    const config = loadConfig({
      RTMANAGER_SOURCE: "kubernetes",
      RTMANAGER_KUBE_NAMESPACE: TEAM,
      RTMANAGER_RUNTIME: "kubernetes",
      RTMANAGER_INSTANCE_ID: kubeInstance,
      RTMANAGER_DATA_DIR: path.join(root, "data-kube"),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      RTMANAGER_CONTAINER_STOP_TIMEOUT: "2s",
      RTMANAGER_PROBE_INTERVAL: "1s",
      RTMANAGER_RESYNC_INTERVAL: "2s",
      RTMANAGER_RETRY_BACKOFF_BASE: "200ms",
      RTMANAGER_DEFAULT_MEMORY: "64m",
      RTMANAGER_LEASE_DURATION: "3s",
      RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
      RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
      RTMANAGER_LOG_LEVEL: "silent",
    });
    kubeApp = await createAppWithKubeconfig(kubeconfigFile, config, pino({ level: "silent" }));
    await kubeApp.start();
    await until("leader", () => kubeApp.manager.isLeader, 15_000);
  }, 60_000);

  afterAll(async () => {
    await kubeApp?.stop();
  }, 30_000);

  it("a GameRuntime's Pod and Service live in its namespace, owned by it; deleting the object removes the Pod and keeps the claim", async () => {
    const g = uniqueGameId("owned");
    const obj = server.create("gameruntimes", TEAM, { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100 } });
    const pod = await until("Pod ready in the object's namespace", () => {
      const p = server.get("pods", TEAM, `galaxy-game-${g}`);
      return engineStatus(p)?.ready ? p : undefined;
    }, 40_000);
    const owner = { apiVersion: "galaxy.io/v1alpha1", kind: "GameRuntime", name: g, uid: obj.metadata.uid, controller: true };
    expect(pod.metadata.ownerReferences).toEqual([owner]);
    expect(server.get("services", TEAM, `galaxy-game-${g}`)?.metadata.ownerReferences).toEqual([owner]);
    expect(server.get("persistentvolumeclaims", TEAM, `galaxy-game-${g}-state`)?.metadata.ownerReferences).toBeUndefined();
    const record = await until("record", async () => {
      const r = await kubeApp.store.getRecord(g);
      return r?.status === "running" ? r : undefined;
    }, 20_000);
    expect(record).toMatchObject({ dockerNetwork: TEAM, statePath: `pvc://${TEAM}/galaxy-game-${g}-state` });

    server.remove("gameruntimes", TEAM, g);
    await until("object gone (finalizer released after cleanup)", () => server.get("gameruntimes", TEAM, g) === undefined, 40_000);
    await until("Pod gone", () => server.get("pods", TEAM, `galaxy-game-${g}`) === undefined, 20_000);
    expect(server.get("persistentvolumeclaims", TEAM, `galaxy-game-${g}-state`)).toBeDefined();
  }, 90_000);

  it("one edit of imageRef and env together recreates the Pod with both (an in-place swap would keep the old env)", async () => {
    const g = uniqueGameId("imgenv");
    server.create("gameruntimes", TEAM, { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100, env: { MODE: "casual" } } });
    const envOf = (p: Obj | undefined) =>
      Object.fromEntries(((p?.spec as { containers: { name: string; env?: { name: string; value?: string }[] }[] } | undefined)?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));
    const first = await until("Pod ready", () => {
      const p = server.get("pods", TEAM, `galaxy-game-${g}`);
      return engineStatus(p)?.ready ? p : undefined;
    }, 40_000);
    expect(envOf(first).MODE).toBe("casual");
    server.update("gameruntimes", TEAM, g, (o) => {
      o.spec = { ...(o.spec as object), imageRef: TEST_IMAGES.v101, env: { MODE: "ranked" } };
    });
    const after = await until("the Pod runs 1.0.1 with the new env", () => {
      const p = server.get("pods", TEAM, `galaxy-game-${g}`);
      const spec = p?.spec as { containers: { image: string }[] } | undefined;
      return p && spec?.containers[0]?.image === TEST_IMAGES.v101 && engineStatus(p)?.ready ? p : undefined;
    }, 40_000);
    expect(envOf(after).MODE).toBe("ranked");
    expect(after.metadata.uid).not.toBe(first.metadata.uid);
    const record = await until("record converged", async () => {
      const r = await kubeApp.store.getRecord(g);
      return r?.status === "running" && r.currentImageRef === TEST_IMAGES.v101 && !r.rolloutStartedAt ? r : undefined;
    }, 20_000);
    expect(record.lastErrorCode).toBeNull();
    server.remove("gameruntimes", TEAM, g);
  }, 90_000);
});

// Runs last: it cuts a node off and then takes it out of service.
describe("node failure", () => {
  it("a Pod on an unreachable node is reported, not recreated; once the node is declared out of service it is recreated on another node", async () => {
    const g = uniqueGameId("node");
    await client.start(g, TEST_IMAGES.v100);
    const pod = await readyPod(g, TEST_IMAGES.v100);
    const node = (pod.spec as { nodeName: string }).nodeName;
    cluster.partition(node);

    await until("probe_failed reported", async () => (await app.store.eventsAfter(0, { gameId: g })).some((e) => e.type === "probe_failed"), 20_000);
    // Two resyncs later the Pod is still the same one, not deleted: the node may come back.
    await afterLoopLookedAgain(baseUrl, 2);
    expect(podOf(g)?.metadata.uid).toBe(pod.metadata.uid);
    expect(podOf(g)?.metadata.deletionTimestamp).toBeUndefined();
    expect(await app.store.getRecord(g)).toMatchObject({ status: "running", health: "unhealthy" });

    server.update("nodes", "", node, (o) => {
      const spec = (o.spec ?? {}) as { taints?: object[] };
      spec.taints = [...(spec.taints ?? []), { key: "node.kubernetes.io/out-of-service", value: "nodeshutdown", effect: "NoExecute" }];
      o.spec = spec;
    });
    const again = await until("a new Pod, ready, on another node", () => {
      const p = podOf(g);
      return p && p.metadata.uid !== pod.metadata.uid && engineStatus(p)?.ready ? p : undefined;
    }, 40_000);
    expect((again.spec as { nodeName: string }).nodeName).not.toBe(node);
    await until("the recreation recorded", async () => (await app.store.eventsAfter(0, { gameId: g })).some((e) => e.type === "container_disappeared"), 20_000);
    await until("record on the new Pod", async () => (await client.get(g)).current_container_id === stripScheme(engineStatus(podOf(g))?.containerID), 20_000);
  }, 90_000);
});

// Runs last: the request log then holds everything both apps did above.
describe("RBAC", () => {
  it("deploy/kustomize/components/pod-runtime grants exactly the verbs the Pod runtime used (derived from the test API server's request log)", async () => {
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
    const rulesOf = async (file: string, kind: string) => {
      const docs = parseAllDocuments(await fs.readFile(path.join(process.cwd(), "deploy/kustomize/components/pod-runtime", file), "utf8"));
      const role = docs.map((d) => d.toJS() as { kind: string; rules?: Rule[] }).find((d) => d.kind === kind)!;
      return new Set(role.rules!.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`)))));
    };
    const usedOn = (resources: string[]) =>
      new Set(server.verbsUsed().filter((u) => u.group === "" && resources.includes(u.resource)).map((u) => `${u.group}/${u.resource} ${u.verb}`));
    // Namespaced: a Role. Nodes are cluster-scoped: a ClusterRole, read-only.
    expect([...(await rulesOf("rbac-pods.yaml", "Role"))].sort()).toEqual([...usedOn(["pods", "pods/log", "services", "persistentvolumeclaims"])].sort());
    expect([...(await rulesOf("rbac-nodes.yaml", "ClusterRole"))].sort()).toEqual([...usedOn(["nodes"])].sort());
  });
});
