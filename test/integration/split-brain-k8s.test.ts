/**
 * Fencing in Kubernetes mode: the lease is a coordination.k8s.io Lease on the
 * test API server while records live in PostgreSQL. Two apps wired as in
 * production (createApp, Kubernetes mode, one database). The leader's Lease
 * renewals are made to hang, so the standby takes the Lease over and advances
 * the epoch in SQL; from then on the former leader's loop cannot write a
 * record, an event or an operation-log row, and each refusal is counted.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { FencedWriteError } from "../../src/model/fence.js";
import { FAST_APP_ENV } from "../helpers/app.js";
import { cleanupInstance, createTestNetwork, removeTestNetwork, uniqueInstance, waitFor } from "../helpers/docker.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { createAppWithKubeconfig } from "../helpers/kubeconfigApp.js";

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test-split-k8s");
const instance = uniqueInstance("splitk8s");
const network = `rtm-${instance}`;
let pg: PostgresServer;
let server: FakeApiServer;
let root: string;
const apps: App[] = [];

async function startApp(dbUrl: string, kubeconfigFile: string): Promise<{ app: App; port: number }> {
  const config = loadConfig({
    DATABASE_URL: dbUrl,
    RTMANAGER_SOURCE: "kubernetes",
    RTMANAGER_KUBE_NAMESPACE: "games",
    RTMANAGER_INSTANCE_ID: instance,
    RTMANAGER_DOCKER_NETWORK: network,
    RTMANAGER_STATE_ROOT: path.join(root, "state"),
    RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
    ...FAST_APP_ENV,
    RTMANAGER_LEASE_DURATION: "3s",
    RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
    RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
    RTMANAGER_LOG_LEVEL: "silent",
  });
  const app = await createAppWithKubeconfig(kubeconfigFile, config, logger);
  apps.push(app);
  return { app, port: await app.start() };
}

async function fencedWritesCounted(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("rtmanager_fenced_writes_total"));
  return Number(line?.split(" ")[1] ?? NaN);
}

beforeAll(async () => {
  pg = await startPostgres();
  await createTestNetwork(network);
  root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-split-k8s-"));
  await fs.mkdir(path.join(root, "state"), { recursive: true });
  server = await FakeApiServer.start();
}, 180_000);

afterAll(async () => {
  if (server) server.beforeHandle = null;
  for (const app of apps) await app.stop().catch(() => {});
  await server?.stop();
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await pg?.stop();
  if (root) await fs.rm(root, { recursive: true, force: true });
}, 120_000);

describe("fencing with a Kubernetes Lease", () => {
  it("a leader whose Lease was taken over cannot write records, events or operation rows once the new leader advanced the epoch", async () => {
    const dbUrl = await pg.createDatabase("split_k8s");
    const kubeconfigFile = path.join(root, "kubeconfig");
    await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
    const a = await startApp(dbUrl, kubeconfigFile);
    await waitFor("the first app leading", () => a.app.manager.isLeader, 15_000);
    const b = await startApp(dbUrl, kubeconfigFile);
    const leaseName = `${instance}-leader`;
    const holderOf = () => (server.get("leases", "games", leaseName)?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
    const formerHolder = holderOf();
    expect(formerHolder).toBeTruthy();

    // While it leads, its loop writes land.
    await a.app.manager.loopState.putRecord(runtimeRecord({ gameId: "fenced-1", observedGeneration: 1 }));
    expect((await a.app.store.getRecord("fenced-1"))?.observedGeneration).toBe(1);

    // The leader's renewals hang (a partitioned or frozen replica): the standby takes the Lease over.
    server.beforeHandle = async (req) => {
      const holder = (req.body as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity;
      if (req.method === "PUT" && req.path.endsWith(`/leases/${leaseName}`) && holder === formerHolder) await new Promise((r) => setTimeout(r, 10_000));
    };
    await waitFor("the standby leading", () => b.app.manager.isLeader, 20_000, 50);
    expect(holderOf()).not.toBe(formerHolder);
    const epoch = await a.app.store.fencing(`rtmanager/${instance}`).current();
    expect(epoch).toBe(2);

    // The former leader's loop: every write refused, nothing applied.
    const counted = await fencedWritesCounted(a.port);
    await expect(a.app.manager.loopState.putRecord(runtimeRecord({ gameId: "fenced-1", observedGeneration: 2, status: "stopped" }))).rejects.toBeInstanceOf(FencedWriteError);
    await expect(a.app.manager.loopState.appendEvent({ gameId: "fenced-1", type: "container_stopped", opId: null, data: {} })).rejects.toBeInstanceOf(FencedWriteError);
    const op = { opId: "op-x", gameId: "fenced-1", kind: "stop" as const, opSource: "reconcile" as const, imageRef: null, generation: 2, errorCode: null, message: null, stopReason: null, startedAt: new Date() };
    await expect(a.app.manager.loopState.startOperation(op)).rejects.toBeInstanceOf(FencedWriteError);
    // A reconcile's end (events and record in one statement) is refused whole.
    const outcome = { events: [{ gameId: "fenced-1", type: "container_stopped" as const, opId: null, data: {} }], record: runtimeRecord({ gameId: "fenced-1", observedGeneration: 2, status: "stopped" }) };
    await expect(a.app.manager.loopState.commitReconcile(outcome)).rejects.toBeInstanceOf(FencedWriteError);
    // (The new leader may reconcile this undeclared game itself; none of the former leader's values show.)
    const stored = await a.app.store.getRecord("fenced-1");
    expect(stored?.observedGeneration).toBe(1);
    expect(stored?.status).not.toBe("stopped");
    expect((await a.app.store.listOperations("fenced-1")).filter((o) => o.opId === "op-x")).toEqual([]);
    expect((await a.app.store.eventsAfter(0, { gameId: "fenced-1" })).filter((e) => e.type === "container_stopped")).toEqual([]);
    expect(await fencedWritesCounted(a.port)).toBe(counted + 4);

    // The new leader's writes land.
    await b.app.manager.loopState.putRecord(runtimeRecord({ gameId: "fenced-1", observedGeneration: 3 }));
    expect((await b.app.store.getRecord("fenced-1"))?.observedGeneration).toBe(3);
  }, 120_000);
});
