/**
 * A game whose node is lost, through the production wiring (createApp with
 * RTMANAGER_RUNTIME=kubernetes, the test API server and the test cluster's
 * Docker kubelets): Kubernetes' rule is that a Pod is replaced only once the
 * API says its old incarnation is gone. While the node is only NotReady the
 * engine may still run there and hold its claim, so rtmanager reports it
 * (event, record, metric) and recreates nothing, although the engine fails
 * its health checks; once the node is tainted out-of-service (the pod GC
 * force-deletes the Pod) it is recreated on another node and the report
 * clears.
 *
 * Taint-based eviction (issue 20 part 3), on a second test cluster whose
 * control-plane clock runs 300 times faster: the Pod carries the
 * DefaultTolerationSeconds admission's 300 s tolerations (rtmanager sets
 * none); 300 s after the unreachable taint the taint eviction controller
 * deletes it, which on an unreachable node only leaves it Terminating, and
 * still no second engine runs until the pod GC removes the object.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App } from "../../src/app.js";
import { RtmClient } from "../../src/client/index.js";
import { TEST_IMAGES, testDocker, uniqueGameId } from "../helpers/docker.js";
import { FakeApiServer, type Obj } from "../k8s/fakeApiServer.js";
import { TestCluster } from "../k8s/kubelet/cluster.js";
import { RUN_LABEL } from "../k8s/kubelet/types.js";
import { startPodTestApp, type PodTestApp } from "../helpers/podApp.js";
import { until } from "../k8s-infra/helpers.js";
import { afterLoopLookedAgain } from "../helpers/loop.js";

let t: PodTestApp;
let server: FakeApiServer;
let cluster: TestCluster;
let app: App;
let client: RtmClient;
let baseUrl: string;

beforeAll(async () => {
  t = await startPodTestApp({ name: "nodelost", nodes: 2 });
  ({ server, cluster, app, baseUrl } = t);
  client = new RtmClient({ baseUrl, timeoutMs: 40_000 });
}, 120_000);

afterAll(async () => {
  await t?.close();
}, 60_000);

const podOf = (g: string): Obj | undefined => t.podOf(g);
const engineReady = (pod: Obj | undefined) =>
  (pod?.status as { containerStatuses?: { name: string; ready: boolean }[] } | undefined)?.containerStatuses?.find((c) => c.name === "engine")?.ready === true;
const nodeOf = (pod: Obj) => (pod.spec as { nodeName: string }).nodeName;

async function nodeLostGauge(): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("rtmanager_runtimes_node_lost "));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

const eventsOf = async (g: string, type: string) => (await app.store.eventsAfter(0, { gameId: g })).filter((e) => e.type === type);

describe("an engine on a lost node", () => {
  it("is reported (node_lost, record, metric) and not recreated while the node is NotReady; recreated elsewhere once the node is out of service", async () => {
    const g = uniqueGameId("lost");
    await client.start(g, TEST_IMAGES.v100);
    const pod = await until("Pod ready", () => (engineReady(podOf(g)) ? podOf(g) : undefined), 40_000);
    const node = nodeOf(pod);
    expect(await nodeLostGauge()).toBe(0);

    cluster.partition(node);
    const [lost] = await until("node_lost reported", async () => {
      const found = await eventsOf(g, "node_lost");
      return found.length > 0 ? found : undefined;
    }, 20_000);
    expect(lost!.data).toMatchObject({ node, reason: "NodeStatusUnknown" });
    await until("the metric says 1", async () => ((await nodeLostGauge()) === 1 ? true : undefined), 20_000);
    expect(await app.store.getRecord(g)).toMatchObject({ status: "running", lostNode: node });

    // Past the probe threshold and several resyncs: the engine fails its health checks, yet the Pod is
    // the same one, never deleted (it may still run on the node and hold its claim), and reported once.
    await until("probe_failed reported", async () => ((await eventsOf(g, "probe_failed")).length > 0 ? true : undefined), 20_000);
    await afterLoopLookedAgain(baseUrl, 2);
    expect(podOf(g)?.metadata.uid).toBe(pod.metadata.uid);
    expect(podOf(g)?.metadata.deletionTimestamp).toBeUndefined();
    expect(await eventsOf(g, "node_lost")).toHaveLength(1);
    expect(await eventsOf(g, "container_disappeared")).toHaveLength(0);
    expect((await app.store.listOperations(g)).filter((o) => o.kind === "self_heal")).toHaveLength(0);

    // Declared shut down for good: the pod GC force-deletes the Pod, and only then is it replaced.
    server.update("nodes", "", node, (o) => {
      const spec = (o.spec ?? {}) as { taints?: object[] };
      spec.taints = [...(spec.taints ?? []), { key: "node.kubernetes.io/out-of-service", value: "nodeshutdown", effect: "NoExecute" }];
      o.spec = spec;
    });
    const again = await until("a new Pod, ready, on the other node", () => {
      const p = podOf(g);
      return p && p.metadata.uid !== pod.metadata.uid && engineReady(p) ? p : undefined;
    }, 40_000);
    expect(nodeOf(again)).not.toBe(node);
    const [cleared] = await until("node_lost_cleared reported", async () => {
      const found = await eventsOf(g, "node_lost_cleared");
      return found.length > 0 ? found : undefined;
    }, 20_000);
    expect(cleared!.data).toMatchObject({ node, how: "engine_replaced" });
    await until("the metric back to 0", async () => ((await nodeLostGauge()) === 0 ? true : undefined), 20_000);
    expect(await app.store.getRecord(g)).toMatchObject({ status: "running", lostNode: null, lostNodeSince: null });
  }, 120_000);
});

describe("taint-based eviction of an engine on a lost node (control-plane clock 300x)", () => {
  let e: PodTestApp;
  let eServer: FakeApiServer;
  let eCluster: TestCluster;
  let eClient: RtmClient;

  beforeAll(async () => {
    eServer = await FakeApiServer.start();
    eCluster = await TestCluster.start(eServer, { nodes: 2, backoffBaseMs: 300, backoffCapMs: 2000, clockScale: 300 });
    e = await startPodTestApp({ name: "evict", nodes: 2, on: { server: eServer, cluster: eCluster } });
    eClient = new RtmClient({ baseUrl: e.baseUrl, timeoutMs: 40_000 });
  }, 120_000);

  afterAll(async () => {
    await e?.close();
    await eCluster?.stop();
    await eServer?.stop();
  }, 60_000);

  /** The game's engine containers running now, on any node of this cluster (Docker mode: one container per engine). */
  const runningEngines = async (g: string) =>
    (await testDocker().listContainers({ filters: { label: [`${RUN_LABEL}=${eCluster.runId}`, `io.kubernetes.pod.name=galaxy-game-${g}`, "io.kubernetes.container.name=engine"] } })).length;
  const eventsIn = async (g: string, type: string) => (await e.app.store.eventsAfter(0, { gameId: g })).filter((ev) => ev.type === type);

  it("the Pod is evicted 300 s (clock) after its node went unreachable, stays Terminating with no second engine, and exactly one new Pod runs once the node is out of service", async () => {
    const g = uniqueGameId("evict");
    const podName = `galaxy-game-${g}`;
    const added: string[] = [];
    let addedWhenEvicted = -1;
    const unsubscribe = eServer.subscribe((c) => {
      if (c.resource !== "pods" || c.object.metadata.name !== podName) return;
      if (c.type === "ADDED") added.push(c.object.metadata.uid!);
      if (c.object.metadata.deletionTimestamp && !c.previous?.metadata.deletionTimestamp) addedWhenEvicted = added.length;
    });
    try {
      await eClient.start(g, TEST_IMAGES.v100);
      const pod = await until("Pod ready", () => (engineReady(e.podOf(g)) ? e.podOf(g) : undefined), 40_000);
      const node = nodeOf(pod);
      // rtmanager sets no tolerations of its own: the admission's defaults decide (docs/kubernetes.md).
      expect((pod.spec as { tolerations?: object[] }).tolerations).toEqual([
        { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
        { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
      ]);

      const taintedAt = eCluster.clock.now();
      eCluster.partition(node);
      const evicted = await until("the taint eviction controller deleted the Pod", () => (e.podOf(g)?.metadata.deletionTimestamp ? e.podOf(g) : undefined), 30_000);
      const [eviction] = eCluster.taintEviction.evictions;
      expect(eviction?.pod).toBe(`games/${podName}`);
      expect(eviction!.evictedAt - taintedAt).toBeGreaterThanOrEqual(300_000);
      // Until the eviction rtmanager replaced nothing: the only Pod ever added was the first.
      expect(addedWhenEvicted).toBe(1);
      expect(evicted.metadata.uid).toBe(pod.metadata.uid);
      expect((evicted.status as { conditions?: object[] }).conditions).toContainEqual(expect.objectContaining({ type: "DisruptionTarget", reason: "DeletionByTaintManager" }));

      // Terminating on an unreachable node: no kubelet confirms, the object stays, the engine may still run there.
      // rtmanager must not force it away nor start a second engine; it reports the lost node.
      await until("node_lost reported", async () => ((await eventsIn(g, "node_lost")).length > 0 ? true : undefined), 20_000);
      await afterLoopLookedAgain(e.baseUrl, 2);
      expect(e.podOf(g)?.metadata.uid).toBe(pod.metadata.uid);
      expect(e.podOf(g)?.metadata.deletionTimestamp).toBeDefined();
      expect(added).toEqual([pod.metadata.uid]);
      expect(await runningEngines(g)).toBe(1);
      // Still running as far as anyone can tell (the engine may serve players there), and reported lost.
      expect(await e.app.store.getRecord(g)).toMatchObject({ status: "running", lostNode: node });

      // The operator declares the machine off: the pod GC force-deletes the Terminating Pod, then exactly one new Pod runs the game.
      eServer.update("nodes", "", node, (o) => {
        const spec = (o.spec ?? {}) as { taints?: object[] };
        spec.taints = [...(spec.taints ?? []), { key: "node.kubernetes.io/out-of-service", value: "nodeshutdown", effect: "NoExecute" }];
        o.spec = spec;
      });
      const again = await until("a new Pod, ready, on the other node", () => {
        const p = e.podOf(g);
        return p && p.metadata.uid !== pod.metadata.uid && engineReady(p) ? p : undefined;
      }, 40_000);
      expect(nodeOf(again)).not.toBe(node);
      const [cleared] = await until("node_lost_cleared reported", async () => {
        const found = await eventsIn(g, "node_lost_cleared");
        return found.length > 0 ? found : undefined;
      }, 20_000);
      expect(cleared!.data).toMatchObject({ node, how: "engine_replaced" });
      await afterLoopLookedAgain(e.baseUrl, 2);
      expect(added).toEqual([pod.metadata.uid, again.metadata.uid]);
      expect(await runningEngines(g)).toBe(1);
      expect(await e.app.store.getRecord(g)).toMatchObject({ status: "running", lostNode: null });
    } finally {
      unsubscribe();
    }
  }, 150_000);
});
