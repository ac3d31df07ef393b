/**
 * One owner per game id (issue 21), cluster-wide Kubernetes mode as
 * production wires it: createApp watching every namespace of the test API
 * server, records in a real PostgreSQL, engines on real Docker.
 *
 * Namespace A's game is deleted, then namespace B creates an object of the
 * same name: B never gets A's record, events, operation log or state
 * directory (no engine starts for it), it is told why in a Conflict
 * condition and Event, and its deletion does not hang. A restarted app (the
 * owner read back from the database) holds to the same owner; A gets its id
 * back by re-creating it in its own namespace.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { FINALIZER } from "../../src/crd/api.js";
import { createLogger } from "../../src/log.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { FAST_APP_ENV } from "../helpers/app.js";
import { cleanupInstance, createTestNetwork, ensureTestImages, removeTestNetwork, TEST_IMAGES, testDocker, uniqueGameId, uniqueInstance, waitFor } from "../helpers/docker.js";
import { createAppWithKubeconfig } from "../helpers/kubeconfigApp.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { FakeApiServer, type Obj } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test-tenancy");
const instance = uniqueInstance("tenancy");
const network = `rtm-${instance}`;
const docker = testDocker();
let pg: PostgresServer;
let server: FakeApiServer;
let root: string;
let stateRoot: string;
let kubeconfigFile: string;
let dbUrl: string;
let app: App | null = null;
let port = 0;

async function startApp(): Promise<void> {
  const config = loadConfig({
    DATABASE_URL: dbUrl,
    RTMANAGER_SOURCE: "kubernetes",
    RTMANAGER_KUBE_NAMESPACE: "",
    RTMANAGER_KUBE_CREATE_NAMESPACE: "games-c",
    POD_NAMESPACE: "rtm",
    RTMANAGER_IMAGE_ALLOWLIST: "galaxy",
    RTMANAGER_INSTANCE_ID: instance,
    RTMANAGER_DOCKER_NETWORK: network,
    RTMANAGER_STATE_ROOT: stateRoot,
    RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
    ...FAST_APP_ENV,
    RTMANAGER_RESYNC_INTERVAL: "1s",
    RTMANAGER_OP_TIMEOUT: "60s",
    RTMANAGER_LEASE_DURATION: "3s",
    RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
    RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
    RTMANAGER_LOG_LEVEL: "silent",
  });
  app = await createAppWithKubeconfig(kubeconfigFile, config, logger);
  port = await app.start();
  await waitFor("leader", () => app!.manager.isLeader, 15_000);
}

async function stopApp(): Promise<void> {
  await app?.stop();
  app = null;
}

beforeAll(async () => {
  await ensureTestImages();
  pg = await startPostgres();
  dbUrl = await pg.createDatabase("tenancy");
  await createTestNetwork(network);
  root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-tenancy-"));
  stateRoot = path.join(root, "state");
  await fs.mkdir(stateRoot, { recursive: true });
  server = await FakeApiServer.start();
  kubeconfigFile = path.join(root, "kubeconfig");
  await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
  await startApp();
}, 300_000);

afterAll(async () => {
  await stopApp().catch(() => {});
  await server?.stop();
  await cleanupInstance(instance);
  await removeTestNetwork(network);
  await pg?.stop();
  if (root) await fs.rm(root, { recursive: true, force: true });
}, 120_000);

const containersOf = (gameId: string) => docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`, `${LABELS.gameId}=${gameId}`] } });

type Cond = { type: string; status: string; reason: string; message: string };
const conditionsOf = (o: Obj | undefined) => ((o?.status as { conditions?: Cond[] } | undefined)?.conditions ?? []);
const conflictOf = (ns: string, g: string) => conditionsOf(server.get("gameruntimes", ns, g)).find((c) => c.type === "Conflict" && c.status === "True");
const eventsOn = (ns: string, g: string) => server.list("events", ns).filter((e) => (e.involvedObject as { name: string }).name === g);

async function resyncs(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("rtmanager_resync_total"))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

/** Two more resync passes started: every game (this one too) has been reconciled again in between. */
async function loopLookedAgain(): Promise<void> {
  const from = await resyncs();
  await waitFor("two more resync passes", async () => (await resyncs()) >= from + 2, 30_000, 100);
}

/** What the store holds for a game: the record, its events and its operation-log rows. */
async function historyOf(g: string) {
  const store = app!.store;
  return { record: await store.getRecord(g), events: (await store.eventsAfter(0, { gameId: g })).map((e) => e.seq), ops: (await store.listOperations(g)).map((o) => o.opId) };
}

describe("one owner per game id, cluster-wide", () => {
  it("namespace B re-using a deleted game's name from namespace A gets nothing of A's, is told so, and its deletion does not hang; a restart holds to the owner", async () => {
    const g = uniqueGameId("own");
    // Namespace A runs the game; its engine's state directory gets a file.
    server.create("gameruntimes", "games-a", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100 } });
    await waitFor("A's engine running", async () => (await containersOf(g)).find((c) => c.State === "running"), 60_000);
    const secret = path.join(stateRoot, g, "a-secret");
    await fs.writeFile(secret, "namespace A's save game");
    const { rows } = await app!.store.sql.query<{ kind: string; namespace: string }>("SELECT kind, namespace FROM game_owners WHERE game_id = $1", [g]);
    expect(rows).toEqual([{ kind: "kube", namespace: "games-a" }]);

    // A deletes it: the finalizer lets the object go once the engine is gone; records and state stay.
    server.remove("gameruntimes", "games-a", g);
    await waitFor("A's object gone", () => server.get("gameruntimes", "games-a", g) === undefined, 60_000);
    expect(await containersOf(g)).toHaveLength(0);
    const before = await historyOf(g);
    expect(before.record?.status).toBe("removed");
    expect(before.events.length).toBeGreaterThan(0);

    // Namespace B creates the same name.
    server.create("gameruntimes", "games-b", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v101 } });
    const conflict = await waitFor("B's Conflict condition", () => conflictOf("games-b", g), 30_000);
    expect(conflict.reason).toBe("GameIdOwnedElsewhere");
    expect(conflict.message).toContain("namespace games-a");
    await loopLookedAgain();
    const onB = server.get("gameruntimes", "games-b", g)!;
    expect(onB.status).toMatchObject({ phase: "failed" });
    expect(onB.status).not.toHaveProperty("containerId");
    expect(onB.status).not.toHaveProperty("imageRef");
    expect(conditionsOf(onB).find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "Conflict" });
    expect(onB.metadata.finalizers ?? []).not.toContain(FINALIZER);
    // No engine started for B: nothing mounts A's state directory, which is still A's.
    expect(await containersOf(g)).toHaveLength(0);
    expect(await fs.readFile(secret, "utf8")).toBe("namespace A's save game");
    // The store's record, events and operation log are A's, untouched by B.
    expect(await historyOf(g)).toEqual(before);
    // B hears of it as a Warning Event naming the owner's namespace, and nothing else.
    const events = eventsOn("games-b", g);
    expect(events.map((e) => [e.type, e.reason])).toEqual([["Warning", "Conflict"]]);
    expect(String(events[0]!.message)).toContain("games-a");

    // The REST API cannot create the id in another namespace (games-c) either.
    const ctx = { opId: "rest-own", opSource: "gm_rest" as const, logger };
    await expect(app!.operations.start(g, TEST_IMAGES.v100, ctx)).rejects.toMatchObject({ code: "conflict", message: expect.stringContaining("games-a") });
    expect(server.get("gameruntimes", "games-c", g)).toBeUndefined();
    // The refusal itself is logged for the operator (a REST call's row), nothing else changed.
    const refused = await historyOf(g);
    expect(refused.ops).toEqual(["rest-own", ...before.ops]);
    expect((await app!.store.listOperations(g))[0]).toMatchObject({ opId: "rest-own", errorCode: "conflict" });
    expect({ ...refused, ops: before.ops }).toEqual(before);

    // A restart (or another replica) reads the owner back from the database.
    await stopApp();
    await startApp();
    await loopLookedAgain();
    expect(await containersOf(g)).toHaveLength(0);
    expect(server.get("gameruntimes", "games-b", g)?.metadata.finalizers ?? []).not.toContain(FINALIZER);
    expect(conflictOf("games-b", g)).toBeTruthy();
    expect(await historyOf(g)).toEqual(refused);

    // B's deletion does not wait on rtmanager.
    server.remove("gameruntimes", "games-b", g);
    expect(server.get("gameruntimes", "games-b", g)).toBeUndefined();

    // A re-creating the name in its own namespace is the same owner: its game, history and state come back.
    server.create("gameruntimes", "games-a", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100 } });
    await waitFor("A's engine running again", async () => (await containersOf(g)).find((c) => c.State === "running"), 60_000);
    // The record is written after the engine is seen running: wait for it, above the generations A's first object reached.
    await waitFor("A's record running again", async () => {
      const r = await app!.store.getRecord(g);
      return r?.status === "running" && r.observedGeneration > before.record!.observedGeneration;
    }, 30_000);
    const after = await historyOf(g);
    expect(after.events.slice(0, before.events.length)).toEqual(before.events);
    expect(await fs.readFile(secret, "utf8")).toBe("namespace A's save game");
    const owner = await app!.store.sql.query<{ namespace: string; uid: string }>("SELECT namespace, uid FROM game_owners WHERE game_id = $1", [g]);
    expect(owner.rows[0]).toEqual({ namespace: "games-a", uid: server.get("gameruntimes", "games-a", g)!.metadata.uid });

    server.remove("gameruntimes", "games-a", g);
    await waitFor("A's object gone again", () => server.get("gameruntimes", "games-a", g) === undefined, 60_000);
  }, 300_000);

  it("two namespaces live at once: the first claimer owns the id, the other gets the Conflict condition and changes nothing", async () => {
    const g = uniqueGameId("two");
    server.create("gameruntimes", "games-a", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100 } });
    await waitFor("A's engine running", async () => (await containersOf(g)).find((c) => c.State === "running"), 60_000);
    server.create("gameruntimes", "games-b", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v101, desiredState: "stopped" } });
    await waitFor("B's Conflict condition", () => conflictOf("games-b", g), 30_000);
    await loopLookedAgain();
    const running = await containersOf(g);
    expect(running.map((c) => [c.State, c.Image])).toEqual([["running", TEST_IMAGES.v100]]);
    expect(conflictOf("games-a", g)).toBeUndefined();
    expect(server.get("gameruntimes", "games-a", g)?.status).toMatchObject({ phase: "running", imageRef: TEST_IMAGES.v100 });
    server.remove("gameruntimes", "games-b", g);
    expect(server.get("gameruntimes", "games-b", g)).toBeUndefined();
    server.remove("gameruntimes", "games-a", g);
    await waitFor("A's object gone", () => server.get("gameruntimes", "games-a", g) === undefined, 60_000);
  }, 180_000);
});
