/**
 * The generic reflector (src/kube/reflector.ts) against the project's test API
 * server: list, watch, bookmarks, 410 Gone relist, and the store's
 * read-your-writes rules. The last block measures why the reflector is our
 * own rather than client-node's ListWatch (README, "Kubernetes source").
 */
import { ListWatch, Watch, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GameRuntimeApi, isGameRuntimeObject, type GameRuntimeObject } from "../../src/crd/api.js";
import { isNewerResourceVersion, ObjectStore } from "../../src/kube/objectStore.js";
import { Reflector, type WatchEventType } from "../../src/kube/reflector.js";
import { createLogger } from "../../src/log.js";
import { waitFor } from "../helpers/docker.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";

const logger = createLogger("silent", "test-reflector");
const NS = "default";

let server: FakeApiServer;
let api: GameRuntimeApi;
const running: { stop(): Promise<void> | void }[] = [];

beforeAll(async () => {
  server = await FakeApiServer.start();
  api = new GameRuntimeApi(fakeKubeConfig(server.url));
});
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
  server.clearFailures();
});

let seq = 0;
const name = (prefix: string) => `${prefix}-${process.pid}-${++seq}`;
const spec = (n: string, imageRef = "registry.example/e:1.0.0") => ({ metadata: { name: n }, spec: { gameId: n, imageRef } });
const lists = (since: number) => server.requests.slice(since).filter((q) => q.method === "GET" && q.query.watch !== "true" && q.path.endsWith("/gameruntimes"));

function reflector(over: { silenceLimitMs?: number } = {}) {
  const events: [WatchEventType, string][] = [];
  const relists: string[] = [];
  const messages: string[] = [];
  const replaced: { why: string; changed: string[]; first: boolean }[] = [];
  const r = new Reflector<GameRuntimeObject>({
    kind: "GameRuntime",
    kubeConfig: api.kubeConfig,
    lister: { list: () => api.list(NS), watchPath: api.watchPath(NS), isObject: isGameRuntimeObject },
    logger,
    silenceLimitMs: over.silenceLimitMs ?? 60_000,
    backoff: { baseMs: 20, maxMs: 200 },
    hooks: { onRelist: (why) => relists.push(why), onWatchMessage: (type) => messages.push(type) },
    listener: {
      onEvent: (type, obj) => events.push([type, obj.metadata.name]),
      onReplace: (why, changes, first) => replaced.push({ why, first, changed: changes.map((c) => (c.after ?? c.before)!.metadata.name).sort() }),
    },
  });
  running.push(r);
  return { r, events, relists, replaced, messages };
}

describe("reflector against the test API server", () => {
  it("lists into the store, then applies ADDED, MODIFIED and DELETED from the watch", async () => {
    const a = name("a");
    server.create("gameruntimes", NS, spec(a));
    const { r, events, replaced } = reflector();
    await r.start();
    expect(r.hasSynced).toBe(true);
    expect(r.store.get(`${NS}/${a}`)?.metadata.name).toBe(a);
    expect(replaced[0]).toMatchObject({ why: "start", first: true });
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);

    const b = name("b");
    server.create("gameruntimes", NS, spec(b));
    server.update("gameruntimes", NS, a, (o) => {
      (o.spec as { imageRef: string }).imageRef = "registry.example/e:1.0.1";
    });
    server.remove("gameruntimes", NS, b);
    await waitFor("three events", () => events.length >= 3);
    expect(events).toEqual([
      ["ADDED", b],
      ["MODIFIED", a],
      ["DELETED", b],
    ]);
    expect((r.store.get(`${NS}/${a}`)?.spec as { imageRef: string }).imageRef).toBe("registry.example/e:1.0.1");
    expect(r.store.get(`${NS}/${b}`)).toBeUndefined();
    expect(r.store.byName(a)).toHaveLength(1);
  });

  it("stop() then start() at once (a watchdog restarting a quiet watch): one loop afterwards, and the stop resolves", async () => {
    const a = name("restart");
    server.create("gameruntimes", NS, spec(a));
    const { r, events } = reflector();
    await r.start();
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
    const before = lists(0).length;
    for (let i = 0; i < 3; i++) {
      const stopped = r.stop();
      const started = r.start();
      await Promise.race([stopped, new Promise((_, reject) => setTimeout(() => reject(new Error("stop() never resolved")), 5000))]);
      await started;
    }
    expect(r.hasSynced).toBe(true);
    await waitFor("one watch open again", () => server.watchCount("gameruntimes") === 1);
    // Each restart is one list; a second loop would list and watch beside the first.
    expect(lists(0).length - before).toBe(3);
    const b = name("after");
    server.create("gameruntimes", NS, spec(b));
    await waitFor("the new object's event", () => events.some(([, n]) => n === b));
    expect(server.watchCount("gameruntimes")).toBe(1);
  });

  it("a bookmark advances the resourceVersion: a reconnect after compaction resumes without a list", async () => {
    const { r, relists } = reflector();
    await r.start();
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
    server.create("leases", NS, { metadata: { name: name("unrelated") }, spec: {} });
    server.compactHistory();
    server.sendBookmarks();
    const atBookmark = server.resourceVersion;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = server.requests.length;
    server.dropWatches({ graceful: true });
    await waitFor("watch re-established", () => server.requests.slice(before).some((q) => q.query.watch === "true"));
    const rewatch = server.requests.slice(before).find((q) => q.query.watch === "true");
    expect(rewatch?.query).toMatchObject({ resourceVersion: atBookmark, allowWatchBookmarks: "true" });
    expect(lists(before)).toHaveLength(0);
    expect(relists).toEqual(["start"]);
  });

  it("410 Gone relists and reports exactly what changed across the gap", async () => {
    const a = name("a");
    const b = name("b");
    server.create("gameruntimes", NS, spec(a));
    server.create("gameruntimes", NS, spec(b));
    const { r, relists, replaced } = reflector();
    await r.start();
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
    // The watch is down while a changes, b goes, c appears, and history is compacted.
    server.setFailNext({ watch: true, status: 503, count: 1_000_000 });
    server.dropWatches();
    await new Promise((resolve) => setTimeout(resolve, 50));
    server.update("gameruntimes", NS, a, (o) => {
      (o.spec as { imageRef: string }).imageRef = "registry.example/e:1.0.1";
    });
    server.remove("gameruntimes", NS, b);
    const c = name("c");
    server.create("gameruntimes", NS, spec(c));
    server.compactHistory();
    const before = server.requests.length;
    server.clearFailures();
    await waitFor("relisted", () => relists.includes("gone"), 5000);
    expect(lists(before)).toHaveLength(1);
    const gone = replaced.find((x) => x.why === "gone")!;
    expect(gone.first).toBe(false);
    // Everything else in the namespace (objects of other tests) did not change.
    expect(gone.changed).toEqual([a, b, c].sort());
    expect(r.store.get(`${NS}/${b}`)).toBeUndefined();
    expect(r.store.get(`${NS}/${c}`)).toBeDefined();
  });

  it("read-your-writes: a write's response is stored at once, and a late watch event of an older version does not replace it", async () => {
    const a = name("a");
    const { r, events, messages } = reflector();
    await r.start();
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
    // Hold the watch back: the event of the write arrives only after the write returned.
    server.setFailNext({ watch: true, status: 503, count: 1_000_000 });
    server.dropWatches();
    const created = await api.create({ apiVersion: "galaxy.io/v1alpha1", kind: "GameRuntime", metadata: { name: a, namespace: NS }, spec: spec(a).spec });
    const patched = await api.patch({ namespace: NS, name: a }, { spec: { imageRef: "registry.example/e:1.0.1" } });
    expect(r.apply(created)).toBe(created);
    expect(r.apply(patched)).toBe(patched);
    // An older response applied late loses to the newer one.
    expect(r.apply(created)).toBe(patched);
    expect(r.store.get(`${NS}/${a}`)?.metadata.resourceVersion).toBe(patched.metadata.resourceVersion);

    server.clearFailures();
    // The watch resumes from before the writes and delivers both of them.
    await waitFor("watch caught up", () => messages.filter((m) => m === "ADDED" || m === "MODIFIED").length >= 2, 5000);
    // ADDED is older than what is stored: not applied, not reported; MODIFIED is the same version: not reported either.
    expect(events.filter(([, n]) => n === a)).toEqual([]);
    expect(r.store.get(`${NS}/${a}`)?.metadata.resourceVersion).toBe(patched.metadata.resourceVersion);
  });
});

describe("object store rules", () => {
  const obj = (n: string, rv: string): GameRuntimeObject => ({ apiVersion: "v", kind: "K", metadata: { name: n, namespace: NS, resourceVersion: rv } });

  it("compares decimal resourceVersions as numbers, others only for difference", () => {
    expect(isNewerResourceVersion("10", "9")).toBe(true);
    expect(isNewerResourceVersion("9", "10")).toBe(false);
    expect(isNewerResourceVersion("10", "10")).toBe(false);
    expect(isNewerResourceVersion("b", "a")).toBe(true);
    expect(isNewerResourceVersion(undefined, "1")).toBe(false);
  });

  it("a deletion is remembered: a late write response does not bring the object back", () => {
    const store = new ObjectStore<GameRuntimeObject>();
    store.upsert(obj("x", "5"));
    store.remove(obj("x", "7"));
    expect(store.upsert(obj("x", "6")).applied).toBe(false);
    expect(store.get(`${NS}/x`)).toBeUndefined();
    expect(store.upsert(obj("x", "8")).applied).toBe(true); // re-created later
  });

  it("a relist keeps an object this process wrote after the list was taken", () => {
    const store = new ObjectStore<GameRuntimeObject>();
    store.upsert(obj("mine", "12"));
    store.upsert(obj("old", "3"));
    const changes = store.replace([obj("listed", "4")], "10");
    expect(store.get(`${NS}/mine`)?.metadata.resourceVersion).toBe("12");
    expect(store.get(`${NS}/old`)).toBeUndefined();
    expect(changes.map((c) => (c.after ?? c.before)!.metadata.name).sort()).toEqual(["listed", "old"]);
  });
});

describe("why not client-node's ListWatch (1.4): measured against the same server", () => {
  function listWatch() {
    const kc = api.kubeConfig;
    const listFn = async () => (await api.api.listNamespacedCustomObject({ group: "galaxy.io", version: "v1alpha1", namespace: NS, plural: "gameruntimes" })) as KubernetesListObject<KubernetesObject>;
    const informer = new ListWatch<KubernetesObject>(api.watchPath(NS), new Watch(kc), listFn, false);
    running.push(informer);
    return informer;
  }

  it("a quiet watch after compaction: ListWatch re-lists (it asks for no bookmarks), the reflector resumes", async () => {
    const measure = async (start: () => Promise<void>) => {
      await server.dropWatches();
      await start();
      await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
      server.sendBookmarks();
      // Writes elsewhere move the resourceVersion on; history is compacted; the connection drops.
      server.create("leases", NS, { metadata: { name: name("elsewhere") }, spec: {} });
      server.compactHistory();
      server.sendBookmarks();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const before = server.requests.length;
      server.dropWatches({ graceful: true });
      await waitFor("watching again", () => server.watchCount("gameruntimes") > 0 && server.requests.slice(before).some((q) => q.query.watch === "true"), 5000);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const watches = server.requests.slice(before).filter((q) => q.query.watch === "true");
      return { lists: lists(before).length, bookmarksAsked: watches.some((q) => q.query.allowWatchBookmarks === "true") };
    };
    const informer = listWatch();
    const theirs = await measure(() => informer.start());
    await informer.stop();
    const { r } = reflector();
    const ours = await measure(() => r.start());
    expect(theirs).toEqual({ lists: 1, bookmarksAsked: false });
    expect(ours).toEqual({ lists: 0, bookmarksAsked: true });
  });

  it("a watch error other than 410: ListWatch stops for good, the reflector reconnects", async () => {
    const informer = listWatch();
    const errors: unknown[] = [];
    informer.on("error", (err) => errors.push(err));
    await informer.start();
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
    server.setFailNext({ watch: true, status: 500, count: 1 });
    server.dropWatches();
    await waitFor("error reported", () => errors.length > 0, 5000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(server.watchCount("gameruntimes")).toBe(0);
    await informer.stop();

    const { r } = reflector();
    await r.start();
    await waitFor("watch open", () => server.watchCount("gameruntimes") > 0);
    server.setFailNext({ watch: true, status: 500, count: 1 });
    server.dropWatches();
    await waitFor("reconnected", () => server.watchCount("gameruntimes") > 0, 5000);
  });
});
