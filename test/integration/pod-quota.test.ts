/**
 * Issue 20 part 3: ResourceQuota on the Pod runtime end to end (test API
 * server with the ResourceQuota admission of apiserver/quota.ts, test kubelet
 * on containerd's CRI, declarations in PGlite). A game whose Pod create is refused with
 * upstream's 403 "exceeded quota" waits with that reason on its record (a
 * transient code, retried), and starts once a slot frees, with one Pod only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App } from "../../src/app.js";
import { RtmApiError, RtmClient } from "../../src/client/index.js";
import { TEST_IMAGES, uniqueGameId } from "../helpers/docker.js";
import { podUsesQuota } from "../k8s/apiserver/quota.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { POD_NAMESPACE, startPodTestApp, type PodTestApp } from "../helpers/podApp.js";
import type { Obj } from "../k8s/fakeApiServer.js";
import { until } from "../k8s-infra/helpers.js";

let t: PodTestApp;
let app: App;
let client: RtmClient;

beforeAll(async () => {
  t = await startPodTestApp({ name: "podquota", nodes: 1, mode: "cri", env: { RTMANAGER_OP_TIMEOUT: "40s" } });
  ({ app } = t);
  client = new RtmClient({ baseUrl: t.baseUrl, timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await t?.close();
}, 60_000);

type Status = { containerStatuses?: { name: string; ready: boolean }[] };

function readyPod(g: string): Promise<Obj> {
  return until(`${g} ready`, () => {
    const pod = t.podOf(g);
    const ready = (pod?.status as Status | undefined)?.containerStatuses?.find((c) => c.name === "engine")?.ready;
    return ready && !pod?.metadata.deletionTimestamp ? pod : undefined;
  }, 40_000);
}

describe("ResourceQuota count/pods on the Pod runtime", () => {
  it("a game over quota waits with the quota's reason and a transient code, then starts once a Pod goes, with exactly one Pod", async () => {
    t.server.create("resourcequotas", POD_NAMESPACE, { metadata: { name: "games" }, spec: { hard: { "count/pods": "1" } } });
    const first = uniqueGameId("quotaa");
    const second = uniqueGameId("quotab");
    const podName = `galaxy-game-${second}`;
    const added: string[] = [];
    const unsubscribe = t.server.subscribe((c) => {
      if (c.resource === "pods" && c.type === "ADDED" && c.object.metadata.name === podName) added.push(c.object.metadata.uid!);
    });
    try {
      await client.start(first, TEST_IMAGES.v100);
      await readyPod(first);
      const quota = await until("quota status counts the Pod", () => {
        const q = t.server.get("resourcequotas", POD_NAMESPACE, "games");
        return (q?.status as { used?: Record<string, string> } | undefined)?.used?.["count/pods"] === "1" ? q : undefined;
      }, 10_000);
      expect(quota.status).toEqual({ hard: { "count/pods": "1" }, used: { "count/pods": "1" } });

      const refused = await client.start(second, TEST_IMAGES.v100).then(() => null, (e: unknown) => e);
      // The REST start answers the contract's transient 503 service_unavailable with the quota's words,
      // never the permanent start_config_invalid: quota is not the config's fault.
      expect(refused).toBeInstanceOf(RtmApiError);
      expect(refused).toMatchObject({ status: 503, code: "service_unavailable" });
      expect((refused as RtmApiError).message).toMatch(/exceeded quota: games/);
      const waiting = await until("the record names the quota", async () => {
        const r = await app.store.getRecord(second);
        return r?.lastErrorMessage?.includes("exceeded quota") ? r : undefined;
      }, 30_000);
      expect(waiting.lastErrorCode).toBe("service_unavailable");
      expect(waiting.lastErrorMessage).toContain(`pods "${podName}" is forbidden: exceeded quota: games, requested: count/pods=1, used: count/pods=1, limited: count/pods=1`);
      expect(t.podOf(second)).toBeUndefined();
      // Retried with backoff: more than one create was refused while the quota was full.
      await until("a second refused create", () => (t.server.requests.filter((q) => q.method === "POST" && q.path === `/api/v1/namespaces/${POD_NAMESPACE}/pods`).length >= 3 ? true : undefined), 30_000);
      expect(t.podOf(second)).toBeUndefined();

      await client.stop(first, "admin_request");
      await readyPod(second);
      const record = await until("the record is running without the quota error", async () => {
        const r = await app.store.getRecord(second);
        return r?.lastErrorCode === null ? r : undefined;
      }, 30_000);
      expect(record.lastErrorMessage ?? "").not.toMatch(/exceeded quota/);
      expect(added).toHaveLength(1);
      expect(t.server.list("pods", POD_NAMESPACE).filter((p) => p.metadata.name === podName)).toHaveLength(1);
    } finally {
      unsubscribe();
    }
  }, 150_000);
});

describe("the test API server's ResourceQuota admission (no kubelet)", () => {
  it("refuses a create past `pods` with upstream's 403 and no object; a terminal Pod or one deleted past its grace frees its slot", async () => {
    const server = await FakeApiServer.start();
    try {
      const res = await fetch(`${server.url}/api/v1/namespaces/q/resourcequotas`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ metadata: { name: "small" }, spec: { hard: { pods: "2", "count/pods": "5" } } }),
      });
      expect(res.status).toBe(201);
      const pod = (name: string) => ({ metadata: { name }, spec: { containers: [{ name: "engine", image: "galaxy/test-engine:1.0.0" }] } });
      const post = (name: string) =>
        fetch(`${server.url}/api/v1/namespaces/q/pods`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(pod(name)) });
      expect((await post("a")).status).toBe(201);
      expect((await post("b")).status).toBe(201);
      const third = await post("c");
      expect(third.status).toBe(403);
      expect(await third.json()).toMatchObject({
        kind: "Status",
        code: 403,
        reason: "Forbidden",
        message: 'pods "c" is forbidden: exceeded quota: small, requested: pods=1, used: pods=2, limited: pods=2',
      });
      expect(server.get("pods", "q", "c")).toBeUndefined();
      // Only the exceeded resource is named; count/pods (5) still had room.
      server.setStatus("pods", "q", "a", { phase: "Failed", reason: "OutOfcpu" });
      expect((await post("c")).status).toBe(201);
      // Bound and running: deletion keeps it (grace) and it still counts until the grace is over.
      server.bindPod("q", "b", "n1");
      server.remove("pods", "q", "b", { gracePeriodSeconds: 30 });
      expect(server.get("pods", "q", "b")?.metadata.deletionTimestamp).toBeDefined();
      expect((await post("d")).status).toBe(403);
      const deleted = server.get("pods", "q", "b")!;
      const graceOver = Date.parse(deleted.metadata.deletionTimestamp!) + 30_000 + 1;
      expect(podUsesQuota(deleted, graceOver - 2)).toBe(true);
      expect(podUsesQuota(deleted, graceOver)).toBe(false);
      await until("quota status used", () => ((server.get("resourcequotas", "q", "small")?.status as { used?: Record<string, string> })?.used?.pods === "2" ? true : undefined), 5_000);
    } finally {
      await server.stop();
    }
  });
});
