/**
 * Issue 20 part 3: Unschedulable on the Pod runtime end to end (test API
 * server, test scheduler, kubelet on containerd's CRI, declarations in PGlite).
 * With every node cordoned or tainted, the scheduler leaves the Pod Pending
 * with PodScheduled=False/Unschedulable and upstream's FitError message;
 * rtmanager puts that reason on the game's record (a transient code) and the
 * game starts on the same Pod once a node fits again. The same for a game
 * whose requests no node's allocatable can take (NodeResourcesFit's
 * `Insufficient cpu` / `Insufficient memory`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App } from "../../src/app.js";
import { RtmApiError, RtmClient } from "../../src/client/index.js";
import { TEST_IMAGES, uniqueGameId } from "../helpers/docker.js";
import { POD_NAMESPACE, startPodTestApp, type PodTestApp } from "../helpers/podApp.js";
import type { Obj } from "../k8s/fakeApiServer.js";
import { until } from "../k8s-infra/helpers.js";

let t: PodTestApp;
let app: App;
let client: RtmClient;

beforeAll(async () => {
  t = await startPodTestApp({ name: "podunsched", nodes: 2, mode: "cri", env: { RTMANAGER_OP_TIMEOUT: "40s" } });
  ({ app } = t);
  client = new RtmClient({ baseUrl: t.baseUrl, timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await t?.close();
}, 60_000);

type Status = { phase?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[]; containerStatuses?: { name: string; ready: boolean }[] };
const statusOf = (pod: Obj | undefined) => pod?.status as Status | undefined;

describe("Unschedulable on the Pod runtime", () => {
  it("no node fits (one cordoned, one tainted): the record carries the scheduler's reason; the same Pod starts once a node is uncordoned", async () => {
    const [n1, n2] = t.server.list("nodes").map((n) => n.metadata.name) as [string, string];
    t.server.update("nodes", "", n1, (n) => ((n.spec as Record<string, unknown>).unschedulable = true));
    t.server.update("nodes", "", n2, (n) => ((n.spec as Record<string, unknown>).taints = [{ key: "dedicated", value: "batch", effect: "NoSchedule" }]));
    const g = uniqueGameId("unsched");
    const podName = `galaxy-game-${g}`;
    const added: string[] = [];
    const unsubscribe = t.server.subscribe((c) => {
      if (c.resource === "pods" && c.type === "ADDED" && c.object.metadata.name === podName) added.push(c.object.metadata.uid!);
    });
    try {
      const refused = await client.start(g, TEST_IMAGES.v100).then(() => null, (e: unknown) => e);
      const pending = await until("the Pod is Unschedulable", () => {
        const pod = t.podOf(g);
        return statusOf(pod)?.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable") ? pod : undefined;
      }, 20_000);
      const message = "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: batch}, 1 node(s) were unschedulable.";
      // The REST start answers the contract's transient code with the scheduler's words.
      expect(refused).toBeInstanceOf(RtmApiError);
      expect(refused).toMatchObject({ status: 503, code: "service_unavailable", message: `Unschedulable: ${message}` });
      expect(statusOf(pending)?.conditions?.find((c) => c.type === "PodScheduled")).toMatchObject({ status: "False", reason: "Unschedulable", message });
      const waiting = await until("the record names the reason", async () => {
        const r = await app.store.getRecord(g);
        return r?.lastErrorMessage?.includes("Unschedulable") ? r : undefined;
      }, 30_000);
      expect(waiting.lastErrorCode).toBe("service_unavailable");
      expect(waiting.lastErrorMessage).toContain(`Unschedulable: ${message}`);

      t.server.update("nodes", "", n1, (n) => delete (n.spec as Record<string, unknown>).unschedulable);
      const running = await until("the Pod runs on the uncordoned node", () => {
        const pod = t.podOf(g);
        return statusOf(pod)?.containerStatuses?.find((c) => c.name === "engine")?.ready ? pod : undefined;
      }, 40_000);
      expect((running.spec as { nodeName?: string }).nodeName).toBe(n1);
      await until("the record is clear of the reason", async () => {
        const r = await app.store.getRecord(g);
        return r?.lastErrorCode === null ? r : undefined;
      }, 30_000);
      // The Pod waited for a node; rtmanager did not recreate it meanwhile.
      expect(added).toEqual([running.metadata.uid]);
      expect(t.server.list("pods", POD_NAMESPACE).filter((p) => p.metadata.name === podName)).toHaveLength(1);
    } finally {
      unsubscribe();
    }
  }, 150_000);

  it("requests bigger than what any node has left: Insufficient cpu on one, Insufficient memory on the other, on the record; the same Pod starts once a node has room", async () => {
    const [n1, n2] = t.server.list("nodes").map((n) => n.metadata.name) as [string, string];
    const allocatable = (node: string, room: Record<string, string>) =>
      t.server.setStatus("nodes", "", node, { ...(t.server.get("nodes", "", node)!.status as object), allocatable: { cpu: "64", memory: "256Gi", pods: "110", ...room } });
    t.server.update("nodes", "", n1, (n) => delete (n.spec as Record<string, unknown>).unschedulable);
    t.server.update("nodes", "", n2, (n) => delete (n.spec as Record<string, unknown>).taints);
    // The game asks for 500m CPU and 64Mi (RTMANAGER_DEFAULT_CPUS / _MEMORY of the test app).
    allocatable(n1, { cpu: "250m" });
    allocatable(n2, { memory: "32Mi" });
    const g = uniqueGameId("nofit");
    const podName = `galaxy-game-${g}`;
    const added: string[] = [];
    const unsubscribe = t.server.subscribe((c) => {
      if (c.resource === "pods" && c.type === "ADDED" && c.object.metadata.name === podName) added.push(c.object.metadata.uid!);
    });
    try {
      const refused = await client.start(g, TEST_IMAGES.v100).then(() => null, (e: unknown) => e);
      const message = "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.";
      const pending = await until("the Pod is Unschedulable", () => {
        const pod = t.podOf(g);
        return statusOf(pod)?.conditions?.some((c) => c.type === "PodScheduled" && c.reason === "Unschedulable") ? pod : undefined;
      }, 20_000);
      expect(statusOf(pending)?.conditions?.find((c) => c.type === "PodScheduled")).toMatchObject({ status: "False", reason: "Unschedulable", message });
      expect(refused).toMatchObject({ status: 503, code: "service_unavailable", message: `Unschedulable: ${message}` });
      const waiting = await until("the record names the reason", async () => {
        const r = await app.store.getRecord(g);
        return r?.lastErrorMessage?.includes("Insufficient") ? r : undefined;
      }, 30_000);
      expect(waiting.lastErrorCode).toBe("service_unavailable");
      expect(waiting.lastErrorMessage).toContain(`Unschedulable: ${message}`);

      allocatable(n2, {});
      const running = await until("the Pod runs on the node with room", () => {
        const pod = t.podOf(g);
        return statusOf(pod)?.containerStatuses?.find((c) => c.name === "engine")?.ready ? pod : undefined;
      }, 40_000);
      expect((running.spec as { nodeName?: string }).nodeName).toBe(n2);
      await until("the record is clear of the reason", async () => ((await app.store.getRecord(g))?.lastErrorCode === null ? true : undefined), 30_000);
      expect(added).toEqual([running.metadata.uid]);
    } finally {
      unsubscribe();
      allocatable(n1, {});
      allocatable(n2, {});
    }
  }, 150_000);
});
