/**
 * Kubernetes mode: the GameRuntime declaration source, the status writer, the
 * event recorder, the finalizer and the Lease.
 *
 * CI has no Kubernetes API server: the suite runs against the test API server
 * in test/k8s/fakeApiServer.ts, which honours what the controller relies on
 * (list/watch with resourceVersion, bookmarks, 410 Gone, optimistic
 * concurrency, merge patch on the object and on /status, finalizers and
 * deletion timestamps, Leases). That, not a real cluster, is what CI checks.
 *
 * The same suite runs against a real cluster when KUBECONFIG is set
 * (registered below only then), in $RTMANAGER_TEST_NAMESPACE (default "default"),
 * after `kubectl apply -f deploy/crd/gameruntime.yaml`:
 *
 *   KUBECONFIG=~/.kube/config npx vitest run test/integration/k8s.test.ts
 *
 * Tests that need the fake server's controls (dropping watches, compacting
 * history, injected failures, invalid objects a real server would refuse)
 * run against the fake server only.
 *
 * The last block runs the whole app as production wires it (createApp in
 * Kubernetes mode: the loop over PGlite and real Docker, the source as
 * finalizer, the status mirror, Events and the Lease), with $KUBECONFIG
 * pointing at the fake server, end to end.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import type { App } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { RuntimeOperations } from "../../src/controller/operations.js";
import type { ReconcileObserver } from "../../src/controller/reconciler.js";
import { ANNOTATION_GENERATION_BASE, ANNOTATION_OP_ID, ANNOTATION_OP_SOURCE, FINALIZER, GameRuntimeApi, type GameRuntimeObject } from "../../src/crd/api.js";
import { GameRuntimeEventRecorder } from "../../src/crd/events.js";
import { KubernetesDeclarationSource, type KubernetesSourceOptions } from "../../src/crd/kubeSource.js";
import { KubernetesLease } from "../../src/crd/lease.js";
import { withKubernetesMirror, withStatusMirror } from "../../src/crd/mirror.js";
import { GameRuntimeStatusWriter } from "../../src/crd/statusWriter.js";
import { LABELS } from "../../src/runtime/docker/labels.js";
import { createLogger } from "../../src/log.js";
import { RtmError } from "../../src/model/errors.js";
import type { Declaration, RuntimeSpec } from "../../src/model/declaration.js";
import type { DeclarationWatch, StateStore } from "../../src/model/ports.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import type { SqlStore } from "../../src/store/index.js";
import {
  cleanupInstance,
  createTestNetwork,
  ensureTestImages,
  removeTestNetwork,
  TEST_IMAGES,
  testDocker,
  uniqueGameId,
  uniqueInstance,
  waitFor,
} from "../helpers/docker.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig, realKubeConfig } from "../k8s/kubeconfig.js";
import { FAST_APP_ENV } from "../helpers/app.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { createAppWithKubeconfig } from "../helpers/kubeconfigApp.js";
import { slack } from "../helpers/slack.js";

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent", "test-k8s");
const IMAGE_A = "registry.example/galaxy/engine:1.0.0";
const IMAGE_B = "registry.example/galaxy/engine:1.0.1";
const meta = { opId: "op-1", opSource: "gm_rest" as const };

interface Target {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Present against the fake server only. */
  fake: FakeApiServer | null;
}

interface Recorded extends DeclarationWatch {
  changes: string[];
  resyncs: number;
}

/** The spec part of a declaration, for mutators that change one field. */
function specOf(d: Declaration | null): RuntimeSpec {
  if (!d) throw new Error("no declaration");
  const { generation: _g, opId: _o, opSource: _s, createdAt: _c, updatedAt: _u, ...spec } = d;
  return spec;
}

function recorder(): Recorded {
  const r: Recorded = {
    changes: [],
    resyncs: 0,
    onChange: (id) => r.changes.push(id),
    onResync: () => {
      r.resyncs++;
    },
  };
  return r;
}

function record(gameId: string, over: Partial<RuntimeRecord> = {}): RuntimeRecord {
  return runtimeRecord({ gameId, currentContainerId: "c0ffee0123456789", currentImageRef: IMAGE_A, statePath: `/var/lib/galaxy/${gameId}`, ...over });
}

/**
 * The suite, shared by the fake server and a real cluster. `fake` is known
 * when the suite is declared, so fake-only tests can be skipped up front.
 */
function suite(fake: boolean, target: () => Target) {
  const sources: KubernetesDeclarationSource[] = [];
  const stops: (() => Promise<void>)[] = [];
  const created: { namespace: string; name: string }[] = [];
  let other: GameRuntimeApi;

  const t = () => target();
  const ns = () => t().namespace;
  const server = () => {
    const s = t().fake;
    if (!s) throw new Error("fake-only test ran against a real cluster");
    return s;
  };

  function newSource(over: Partial<KubernetesSourceOptions> = {}): KubernetesDeclarationSource {
    const s = new KubernetesDeclarationSource({
      kubeConfig: t().kubeConfig,
      namespace: ns(),
      logger,
      backoff: { baseMs: 20, maxMs: 200 },
      ...over,
    });
    sources.push(s);
    return s;
  }

  async function watch(source: KubernetesDeclarationSource, handler: DeclarationWatch = recorder()): Promise<void> {
    stops.push(await source.watch(handler));
  }

  function gid(prefix = "k"): string {
    const id = uniqueGameId(prefix);
    created.push({ namespace: ns(), name: id });
    return id;
  }

  /** Another client (kubectl apply). */
  async function apply(name: string, spec: Record<string, unknown> = {}): Promise<GameRuntimeObject> {
    return other.create({
      apiVersion: "galaxy.io/v1alpha1",
      kind: "GameRuntime",
      metadata: { name, namespace: ns() },
      spec: { gameId: name, imageRef: IMAGE_A, ...spec },
    });
  }

  async function read(name: string): Promise<GameRuntimeObject | null> {
    return other.get({ namespace: ns(), name });
  }

  beforeAll(() => {
    other = new GameRuntimeApi(t().kubeConfig);
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    for (const source of sources.splice(0)) await source.close();
    t().fake?.clearFailures();
    if (t().fake) t().fake!.beforeHandle = null;
  });

  afterAll(async () => {
    // Real cluster: leave nothing behind (finalizers first, or the objects would hang).
    for (const ref of created) {
      const obj = await other.get(ref).catch(() => null);
      if (!obj) continue;
      await other.patch(ref, { metadata: { finalizers: null } }).catch(() => {});
      await other.delete(ref).catch(() => {});
    }
  });

  describe("declaration source", () => {
    it("sees create, update and delete through the watch, and adds its finalizer", async () => {
      const source = newSource();
      const seen = recorder();
      await watch(source, seen);
      const g = gid();

      await apply(g);
      await waitFor("ADDED reported", () => seen.changes.includes(g));
      expect(await source.listGameIds()).toContain(g);
      const d1 = await source.get(g);
      expect(d1).toMatchObject({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure", generation: 1, opSource: "kubernetes", opId: null });
      // A read never writes: the finalizer is a reconcile step of its own.
      expect((await read(g))?.metadata.finalizers ?? []).not.toContain(FINALIZER);
      await source.ensureFinalizer(g);
      const adopted = (await read(g))!;
      expect(adopted.metadata.finalizers).toContain(FINALIZER);
      expect(adopted.metadata.annotations?.[ANNOTATION_GENERATION_BASE]).toBe("0");
      // Read-your-writes: the store holds the adopted object as soon as the write returned.
      expect(source.cached(g)?.metadata.resourceVersion).toBe(adopted.metadata.resourceVersion);
      await source.ensureFinalizer(g); // adopted: no write
      expect((await read(g))?.metadata.resourceVersion).toBe(adopted.metadata.resourceVersion);

      const before = seen.changes.length;
      await other.patch({ namespace: ns(), name: g }, { spec: { imageRef: IMAGE_B } });
      await waitFor("MODIFIED reported", () => seen.changes.length > before);
      const d2 = await source.get(g);
      expect(d2).toMatchObject({ imageRef: IMAGE_B, generation: 2 });

      // Status-only writes do not wake the loop.
      await waitFor("quiet", async () => {
        const n = seen.changes.length;
        await new Promise((r) => setTimeout(r, 150));
        return seen.changes.length === n;
      });
      const quiet = seen.changes.length;
      await other.patchStatus({ namespace: ns(), name: g }, { status: { phase: "running" } });
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.changes.length).toBe(quiet);

      await other.delete({ namespace: ns(), name: g });
      await waitFor("deletion reported", () => seen.changes.length > quiet);
      await source.finalizeIfDeleting(g, true);
      await waitFor("DELETED reported and gone from the index", async () => !(await source.listGameIds()).includes(g));
      expect(await source.get(g)).toBeNull();
    });

    it("resources: kubectl's quantities (512Mi, 500m) declare the contract's 512m and 0.5; the REST writer stores quantities and reads back what it declared", async () => {
      const source = newSource();
      await watch(source);
      const k = gid();
      await apply(k, { resources: { memory: "512Mi", cpus: "500m" } });
      await waitFor("object seen", async () => (await source.listGameIds()).includes(k));
      expect((await source.get(k))?.resources).toEqual({ memory: "512m", cpus: 0.5 });

      const g = gid();
      const declared = { gameId: g, imageRef: IMAGE_A, desiredState: "running" as const, restartPolicy: "on-failure" as const, resources: { memory: "1024m", cpus: 1.5 } };
      await source.mutate(g, () => declared, meta);
      expect(((await read(g))?.spec as { resources?: unknown } | undefined)?.resources).toEqual({ memory: "1024Mi", cpus: "1.5" });
      expect((await source.get(g))?.resources).toEqual({ memory: "1024m", cpus: 1.5 });
      // The same declaration again changes nothing: the quantities read back exactly.
      expect((await source.mutate(g, () => declared, meta)).changed).toBe(false);

      // kubectl's 512m is 0.512 bytes to Kubernetes: refused, naming the spelling to use.
      const bad = gid();
      await apply(bad, { resources: { memory: "512m" } });
      await waitFor("object seen", async () => (await source.listGameIds()).includes(bad));
      await expect(source.get(bad)).rejects.toThrow(/write 512Mi/);
    });

    it("finalizer: a deleted GameRuntime is declared removed and stays until its container is gone", async () => {
      const source = newSource();
      await watch(source);
      const g = gid();
      await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      const obj = await read(g);
      expect(obj?.metadata.finalizers).toEqual([FINALIZER]);

      await other.delete({ namespace: ns(), name: g });
      const deleting = await waitFor("deletion seen", async () => {
        const d = await source.get(g);
        return d?.desiredState === "removed" ? d : undefined;
      });
      expect(deleting).toMatchObject({ desiredState: "removed", opSource: "kubernetes", opId: null });
      // The API server bumps the generation on deletion: the loop sees a new generation.
      expect(deleting!.generation).toBeGreaterThan(1);

      // A REST write to an object on its way out is refused, not resurrected.
      await expect(
        source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_B, desiredState: "running", restartPolicy: "on-failure" }), meta),
      ).rejects.toMatchObject({ code: "conflict" });

      await source.finalizeIfDeleting(g, false);
      expect((await read(g))?.metadata.deletionTimestamp).toBeTruthy();
      await source.finalizeIfDeleting(g, true);
      await waitFor("object gone", async () => (await read(g)) === null);
      // Idempotent once gone.
      await source.finalizeIfDeleting(g, true);
    });

    it("finalizer: another controller's finalizer stays when ours is removed", async () => {
      const source = newSource();
      const g = gid();
      await apply(g);
      await source.ensureFinalizer(g);
      await other.patch({ namespace: ns(), name: g }, { metadata: { finalizers: ["example.com/other", FINALIZER] } });
      await other.delete({ namespace: ns(), name: g });
      await waitFor("deletion seen", () => source.cached(g)?.metadata.deletionTimestamp);
      await source.finalizeIfDeleting(g, true);
      const o = await read(g);
      expect(o?.metadata.finalizers).toEqual(["example.com/other"]);
      await other.patch({ namespace: ns(), name: g }, { metadata: { finalizers: null } });
    });

    it("mutate creates with the finalizer and op annotations, bumps the generation only on a spec change", async () => {
      const source = newSource();
      const g = gid();
      const created1 = await source.mutate(g, (cur) => (cur ? null : { gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      expect(created1.changed).toBe(true);
      expect(created1.declaration).toMatchObject({ gameId: g, generation: 1, opId: "op-1", opSource: "gm_rest" });
      const obj = await read(g);
      expect(obj?.metadata.annotations).toMatchObject({ [ANNOTATION_OP_ID]: "op-1", [ANNOTATION_OP_SOURCE]: "gm_rest" });
      expect(obj?.metadata.finalizers).toContain(FINALIZER);

      // Replay: null from the mutator, or the same spec, writes nothing.
      expect((await source.mutate(g, () => null, meta)).changed).toBe(false);
      const same = await source.mutate(g, (cur) => ({ ...specOf(cur), desiredState: "running" }), { opId: "op-2", opSource: "admin_rest" });
      expect(same.changed).toBe(false);
      expect((await read(g))?.metadata.resourceVersion).toBe(obj?.metadata.resourceVersion);

      const stopped = await source.mutate(g, (cur) => ({ gameId: g, imageRef: cur!.imageRef, desiredState: "stopped", restartPolicy: "on-failure", stopReason: "admin_request" }), {
        opId: "op-3",
        opSource: "admin_rest",
      });
      expect(stopped).toMatchObject({ changed: true, declaration: { generation: 2, desiredState: "stopped", stopReason: "admin_request", opId: "op-3", opSource: "admin_rest" } });

      // A kubectl edit after that is the cluster's change, not op-3's.
      await other.patch({ namespace: ns(), name: g }, { spec: { desiredState: "running" } });
      await waitFor("kubectl edit seen", async () => (await source.get(g))?.generation === 3);
      expect(await source.get(g)).toMatchObject({ generation: 3, opId: null, opSource: "kubernetes" });

      // The mutator's refusal propagates and writes nothing.
      await expect(
        source.mutate(g, () => {
          throw new RtmError("conflict", "no");
        }, meta),
      ).rejects.toMatchObject({ code: "conflict" });
      await expect(source.mutate(g, () => ({ gameId: "other-game", imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta)).rejects.toMatchObject({
        code: "invalid_request",
      });
    });

    it("a re-created object continues above the generation the loop already recorded", async () => {
      const source = newSource({ generationFloor: async () => 7 });
      const g = gid();
      const r = await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      expect(r.declaration?.generation).toBe(8);
      const g2 = gid();
      await apply(g2);
      // Before adoption a read already answers above the floor, and writes nothing.
      expect((await waitFor("g2 seen", async () => (await source.get(g2)) ?? undefined))?.generation).toBe(8);
      expect((await read(g2))?.metadata.annotations?.[ANNOTATION_GENERATION_BASE]).toBeUndefined();
      await source.ensureFinalizer(g2);
      expect((await source.get(g2))?.generation).toBe(8);
      expect((await read(g2))?.metadata.annotations?.[ANNOTATION_GENERATION_BASE]).toBe("7");
      expect((await read(g2))?.metadata.generation).toBe(1);
    });

    it("mutate never loses a concurrent write: two writers without a shared lock", async () => {
      const a = newSource();
      const b = newSource();
      const g = gid();
      await a.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      const addEnv = (source: KubernetesDeclarationSource, key: string) =>
        source.mutate(g, (cur) => ({ ...specOf(cur), env: { ...specOf(cur).env, [key]: "1" } }), { opId: key, opSource: "admin_rest" });
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 6; i++) writes.push(addEnv(a, `A${i}`), addEnv(b, `B${i}`));
      await Promise.all(writes);
      const env = ((await read(g))?.spec as { env?: Record<string, string> }).env ?? {};
      expect(Object.keys(env).sort()).toEqual(["A0", "A1", "A2", "A3", "A4", "A5", "B0", "B1", "B2", "B3", "B4", "B5"]);
    }, 30_000);

    it.runIf(fake)("mutate retries on a stale resourceVersion and decides again on what is there now", async () => {
      const s = server();
      const source = newSource();
      const g = gid();
      await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      // kubectl edits the object between the source's read and its write.
      let tampered = false;
      s.beforeHandle = (req) => {
        if (!tampered && req.method === "PUT" && req.path.endsWith(`/gameruntimes/${g}`)) {
          tampered = true;
          s.update("gameruntimes", ns(), g, (o) => {
            (o.spec as { env?: Record<string, string> }).env = { FROM_KUBECTL: "1" };
          });
        }
      };
      const seenBy: (Record<string, string> | undefined)[] = [];
      const r = await source.mutate(
        g,
        (cur) => {
          seenBy.push(cur?.env);
          return { ...specOf(cur), env: { ...specOf(cur).env, FROM_REST: "1" } };
        },
        meta,
      );
      expect(seenBy).toEqual([undefined, { FROM_KUBECTL: "1" }]);
      expect(r.declaration?.env).toEqual({ FROM_KUBECTL: "1", FROM_REST: "1" });
      expect(s.requests.filter((q) => q.method === "PUT" && q.path.endsWith(`/${g}`))).toHaveLength(2);

      // A game that keeps changing: bounded attempts, then conflict; nothing overwritten.
      s.beforeHandle = null;
      s.setFailNext({ method: "PUT", path: `/gameruntimes/${g}`, status: 409, reason: "Conflict", count: 50 });
      await expect(source.mutate(g, (cur) => ({ ...specOf(cur), imageRef: IMAGE_B }), meta)).rejects.toMatchObject({ code: "conflict" });
      expect((await read(g))?.spec).toMatchObject({ imageRef: IMAGE_A });
    });

    it.runIf(fake)("an invalid spec is start_config_invalid; a deleting invalid object is still declared removed", async () => {
      const s = server();
      const source = newSource();
      const g = gid();
      s.create("gameruntimes", ns(), { metadata: { name: g }, spec: { gameId: g, imageRef: "Not A Ref!" } });
      await expect(source.get(g)).rejects.toMatchObject({ code: "start_config_invalid" });
      const g2 = gid();
      s.create("gameruntimes", ns(), { metadata: { name: g2 }, spec: { gameId: "someone-else", imageRef: IMAGE_A } });
      await waitFor("g2 seen", () => source.cached(g2));
      await expect(source.get(g2)).rejects.toMatchObject({ code: "start_config_invalid", message: expect.stringContaining("metadata.name") });

      s.update("gameruntimes", ns(), g, (o) => {
        o.metadata.finalizers = [FINALIZER];
      });
      s.remove("gameruntimes", ns(), g);
      await waitFor("deletion seen", () => source.cached(g)?.metadata.deletionTimestamp);
      expect(await source.get(g)).toMatchObject({ gameId: g, desiredState: "removed" });
    });

    it.runIf(fake)("cluster-wide: watches every namespace, creates in createNamespace; a name reused in another namespace leaves the first claimer the owner", async () => {
      const s = server();
      const source = newSource({ namespace: undefined, createNamespace: "games-b" });
      const seen = recorder();
      await watch(source, seen);
      const a = gid();
      s.create("gameruntimes", "games-a", { metadata: { name: a }, spec: { gameId: a, imageRef: IMAGE_A } });
      await waitFor("seen across namespaces", () => seen.changes.includes(a));
      expect((await source.get(a))?.imageRef).toBe(IMAGE_A);

      const b = gid();
      await source.mutate(b, () => ({ gameId: b, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      expect(s.get("gameruntimes", "games-b", b)).toBeDefined();
      // An existing object is written where it lives.
      await source.mutate(a, (cur) => ({ ...specOf(cur), imageRef: IMAGE_B }), meta);
      expect((s.get("gameruntimes", "games-a", a)?.spec as { imageRef: string }).imageRef).toBe(IMAGE_B);
      expect(s.get("gameruntimes", "games-b", a)).toBeUndefined();

      // Another namespace reuses the name (issue 21): the first claimer stays the owner, the newcomer changes nothing.
      const conflicts = new GameRuntimeEventRecorder({ source, logger, instance: "test" });
      source.owners.onConflict = (gameId, owner, ignored) => conflicts.recordOwnerConflict(gameId, owner, ignored);
      const changesOfA = seen.changes.filter((c) => c === a).length;
      s.create("gameruntimes", "games-b", { metadata: { name: a }, spec: { gameId: a, imageRef: IMAGE_A, desiredState: "stopped" } });
      await waitFor("duplicate seen", () => seen.changes.filter((c) => c === a).length > changesOfA);
      expect(await source.get(a)).toMatchObject({ imageRef: IMAGE_B, desiredState: "running" });
      expect(source.cached(a)?.metadata.namespace).toBe("games-a");
      // The ignored object is told why, with a Warning Event on it; the owner gets none.
      await conflicts.flush();
      const onB = s.list("events", "games-b").filter((e) => (e.involvedObject as { name: string }).name === a);
      expect(onB.map((e) => [e.type, e.reason])).toEqual([["Warning", "Conflict"]]);
      expect(String(onB[0]!.message)).toContain(`games-a/${a}`);
      expect(s.list("events", "games-a").filter((e) => e.reason === "Conflict")).toEqual([]);
      await source.mutate(a, (cur) => ({ ...specOf(cur), imageRef: IMAGE_A }), meta);
      expect((s.get("gameruntimes", "games-a", a)?.spec as { imageRef: string }).imageRef).toBe(IMAGE_A);
      expect((s.get("gameruntimes", "games-b", a)?.spec as { desiredState: string }).desiredState).toBe("stopped");
      // Only the owner is adopted, so the newcomer's own deletion never waits on rtmanager's finalizer.
      await source.ensureFinalizer(a);
      expect(s.get("gameruntimes", "games-a", a)?.metadata.finalizers).toContain(FINALIZER);
      expect(s.get("gameruntimes", "games-b", a)?.metadata.finalizers ?? []).not.toContain(FINALIZER);

      expect(await source.delete(b)).toBe(true);
      expect(s.get("gameruntimes", "games-b", b)?.metadata.deletionTimestamp).toBeTruthy();
      expect(await source.delete("no-such-game")).toBe(false);
    });

    it.runIf(fake)("bookmarks advance the resourceVersion: a reconnect after compaction needs no relist", async () => {
      const s = server();
      const relists: string[] = [];
      const messages: string[] = [];
      const source = newSource({ hooks: { onRelist: (why) => relists.push(why), onWatchMessage: (type) => messages.push(type) } });
      const seen = recorder();
      await watch(source, seen);
      await waitFor("watch open", () => s.watchCount("gameruntimes") > 0);

      // Writes the watch does not deliver (another namespace, a Lease) move the global resourceVersion on.
      s.create("gameruntimes", "elsewhere", { metadata: { name: "not-ours" }, spec: { gameId: "not-ours", imageRef: IMAGE_A } });
      s.create("leases", ns(), { metadata: { name: "unrelated" }, spec: {} });
      s.compactHistory();
      s.sendBookmarks();
      await waitFor("bookmark received", () => messages.includes("BOOKMARK"));
      const rvAtBookmark = s.resourceVersion;

      const before = s.requests.length;
      s.dropWatches({ graceful: true });
      await waitFor("watch re-established", () => s.watchCount("gameruntimes") > 0);
      const rewatch = s.requests.slice(before).find((q) => q.query.watch === "true");
      expect(rewatch?.query.resourceVersion).toBe(rvAtBookmark);
      expect(rewatch?.query.allowWatchBookmarks).toBe("true");
      expect(relists).toEqual(["start"]);
      expect(seen.resyncs).toBe(0);
      expect(seen.changes).not.toContain("not-ours");
    });

    it.runIf(fake)("410 Gone (ERROR event) relists, reports every change across the gap and resyncs", async () => {
      const s = server();
      const a = gid();
      const b = gid();
      await apply(a);
      await apply(b);
      const relists: string[] = [];
      const source = newSource({ hooks: { onRelist: (why) => relists.push(why) } });
      const seen = recorder();
      await watch(source, seen);
      await source.ensureFinalizer(a);
      await source.ensureFinalizer(b);
      await waitFor("watch open", () => s.watchCount("gameruntimes") > 0);

      // The watch goes down and stays down while things change and history is compacted.
      s.setFailNext({ watch: true, status: 503, count: 1_000_000 });
      s.dropWatches();
      await new Promise((r) => setTimeout(r, 100));
      seen.changes.length = 0;
      s.update("gameruntimes", ns(), a, (o) => {
        (o.spec as { imageRef: string }).imageRef = IMAGE_B;
      });
      s.update("gameruntimes", ns(), b, (o) => {
        o.metadata.finalizers = [];
      });
      s.remove("gameruntimes", ns(), b);
      const c = gid();
      await apply(c);
      s.compactHistory();
      s.clearFailures();

      await waitFor("resync after relist", () => seen.resyncs > 0, 5000);
      expect(relists).toEqual(["start", "gone"]);
      expect(new Set(seen.changes)).toEqual(new Set([a, b, c]));
      const ids = await source.listGameIds();
      expect(ids).toEqual(expect.arrayContaining([a, c]));
      expect(ids).not.toContain(b);
      expect((await source.get(a))?.imageRef).toBe(IMAGE_B);

      // In-stream expiry of an open watch, and HTTP 410 on reconnect, relist too.
      await waitFor("watch open", () => s.watchCount("gameruntimes") > 0);
      s.expireWatches();
      await waitFor("relist after ERROR 410", () => relists.length === 3);
      await waitFor("watch open", () => s.watchCount("gameruntimes") > 0);
      s.setFailNext({ watch: true, status: 410, reason: "Expired" });
      s.dropWatches();
      await waitFor("relist after HTTP 410", () => relists.length === 4);
      expect(relists).toEqual(["start", "gone", "gone", "gone"]);
    });

    it.runIf(fake)("a dropped watch reconnects with backoff from the last resourceVersion and misses nothing", async () => {
      const s = server();
      const relists: string[] = [];
      const errors: string[] = [];
      const source = newSource({ hooks: { onRelist: (why) => relists.push(why), onWatchError: (e) => errors.push(e.message) } });
      const seen = recorder();
      await watch(source, seen);
      await waitFor("watch open", () => s.watchCount("gameruntimes") > 0);
      const a = gid();
      await apply(a);
      await waitFor("a seen", () => seen.changes.includes(a));
      await new Promise((r) => setTimeout(r, 100));
      const lastRv = s.resourceVersion;

      // Abrupt drop; the next three reconnects fail; meanwhile a changes and d appears.
      s.setFailNext({ watch: true, status: 500, count: 3 });
      const before = s.requests.length;
      s.dropWatches();
      seen.changes.length = 0;
      s.update("gameruntimes", ns(), a, (o) => {
        (o.spec as { imageRef: string }).imageRef = IMAGE_B;
      });
      const d = gid();
      await apply(d);

      await waitFor("both changes delivered", () => seen.changes.includes(a) && seen.changes.includes(d), 5000);
      const watches = s.requests.slice(before).filter((q) => q.query.watch === "true");
      expect(watches.length).toBeGreaterThanOrEqual(4);
      expect(watches.every((q) => q.query.resourceVersion === lastRv)).toBe(true);
      expect(relists).toEqual(["start"]);
      expect(seen.resyncs).toBe(0);
      expect(errors.length).toBeGreaterThanOrEqual(3);
    });

    it.runIf(fake)("a watch silent past the limit is replaced by a relist", async () => {
      const s = server();
      const relists: string[] = [];
      const source = newSource({ silenceLimitMs: 300, hooks: { onRelist: (why) => relists.push(why) } });
      const seen = recorder();
      await watch(source, seen);
      await waitFor("relist for silence", () => relists.includes("silence"), 5000);
      expect(seen.resyncs).toBeGreaterThan(0);
      expect(source.lastWatchMessageAgeSeconds()).not.toBeNull();
      void s;
    });

    it.runIf(fake)("the first list failing does not fail watch(); the informer retries and resyncs", async () => {
      const s = server();
      s.setFailNext({ method: "GET", watch: false, path: "/gameruntimes", status: 503, count: 2 });
      const relists: string[] = [];
      const source = newSource({ hooks: { onRelist: (why) => relists.push(why) } });
      const seen = recorder();
      await watch(source, seen);
      await waitFor("listed after retries", () => relists.length > 0, 5000);
      expect(relists).toEqual(["retry"]);
      expect(seen.resyncs).toBe(1);

      // Stopping while the API server is down (backing off) is prompt.
      const slow = newSource({ backoff: { baseMs: 5000, maxMs: 30_000 } });
      s.setFailNext({ method: "GET", path: "/gameruntimes", status: 503, count: 1_000_000 });
      stops.push(await slow.watch(recorder()));
      const started = Date.now();
      await slow.close();
      expect(Date.now() - started).toBeLessThan(slack(1000));
    });
  });

  describe("status writer", () => {
    it("writes phase and conditions through /status; lastTransitionTime moves only on a flip", async () => {
      let now = new Date("2030-01-01T00:00:00Z");
      const source = newSource();
      const writer = new GameRuntimeStatusWriter(source, logger, {}, () => now);
      const g = gid();
      await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);

      expect(await writer.writeNow(record(g))).toBe(true);
      let o = (await read(g))!;
      expect(o.metadata.generation).toBe(1);
      expect(o.status).toMatchObject({ phase: "running", containerId: "c0ffee0123456789", imageRef: IMAGE_A, observedGeneration: 1, restartCount: 0, health: "healthy" });
      const byType = (obj: GameRuntimeObject) => Object.fromEntries((obj.status?.conditions ?? []).map((c) => [c.type, c]));
      expect(byType(o)).toMatchObject({
        Ready: { status: "True", reason: "Converged", lastTransitionTime: "2030-01-01T00:00:00Z", observedGeneration: 1 },
        Progressing: { status: "False", reason: "Converged" },
        Degraded: { status: "False", reason: "AsExpected" },
      });
      const rv = o.metadata.resourceVersion;

      // Same record later: nothing to write.
      now = new Date("2030-01-01T00:01:00Z");
      expect(await writer.writeNow(record(g))).toBe(false);
      expect((await read(g))?.metadata.resourceVersion).toBe(rv);

      // A failure of the current generation: Ready and Degraded flip, Progressing stays False and keeps its time.
      now = new Date("2030-01-01T00:02:00Z");
      await writer.writeNow(record(g, { lastErrorCode: "image_pull_failed", lastErrorMessage: "pull access denied", lastErrorGeneration: 1 }));
      o = (await read(g))!;
      expect(o.status?.phase).toBe("failed");
      expect(byType(o)).toMatchObject({
        Ready: { status: "False", reason: "ImagePullFailed", message: "image_pull_failed: pull access denied", lastTransitionTime: "2030-01-01T00:02:00Z" },
        Progressing: { status: "False", reason: "ImagePullFailed", lastTransitionTime: "2030-01-01T00:00:00Z" },
        Degraded: { status: "True", reason: "ImagePullFailed", lastTransitionTime: "2030-01-01T00:02:00Z" },
      });
      expect(o.metadata.generation).toBe(1);

      // A new generation not yet reconciled: pending and progressing.
      await source.mutate(g, (cur) => ({ ...specOf(cur), imageRef: IMAGE_B }), meta);
      now = new Date("2030-01-01T00:03:00Z");
      await writer.writeNow(record(g));
      o = (await read(g))!;
      expect(o.status).toMatchObject({ phase: "pending", observedGeneration: 1 });
      expect(byType(o)).toMatchObject({ Ready: { status: "False", reason: "Reconciling", observedGeneration: 2 }, Progressing: { status: "True", reason: "Reconciling" } });

      // Stopped as declared; the container id goes away (merge patch null).
      await source.mutate(g, (cur) => ({ ...specOf(cur), desiredState: "stopped" }), meta);
      await writer.writeNow(record(g, { status: "stopped", observedGeneration: 3, currentContainerId: null, engineEndpoint: null, health: "unknown" }));
      o = (await read(g))!;
      expect(o.status).toMatchObject({ phase: "stopped", observedGeneration: 3 });
      expect(o.status?.containerId).toBeUndefined();
      expect(byType(o).Ready).toMatchObject({ status: "True", reason: "Stopped" });

      // Through the queue: coalesced, flushed; records of games without an object are ignored.
      void writer.enqueue(record(g, { status: "stopped", observedGeneration: 3, currentContainerId: null, restartCount: 2 }));
      void writer.enqueue(record("no-such-object-here"));
      await writer.flush();
      expect((await read(g))?.status?.restartCount).toBe(2);
    });

    it.runIf(fake)("a failed status write is retried with backoff until the API server recovers; the latest record wins", async () => {
      const s = server();
      const source = newSource();
      const errors: string[] = [];
      const writer = new GameRuntimeStatusWriter(source, logger, { onError: (_id, e) => errors.push(e.message) }, undefined, { backoff: { baseMs: 40, maxMs: 200 } });
      const g = gid();
      await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);

      // An outage of the status endpoint: every PATCH of /status answers 500 for a while.
      s.setFailNext({ method: "PATCH", path: `/gameruntimes/${g}/status`, status: 500, forMs: 700 });
      const before = s.requests.length;
      const done = writer.enqueue(record(g, { restartCount: 1 }));
      await waitFor("a few failed attempts", () => errors.length >= 2, 5000);
      // A newer record arrives while the old one waits for its retry: only the newer is written.
      void writer.enqueue(record(g, { restartCount: 3 }));
      await done;
      const o = (await read(g))!;
      expect(o.status).toMatchObject({ phase: "running", restartCount: 3 });
      const patches = s.requests.slice(before).filter((q) => q.method === "PATCH" && q.path.endsWith(`/${g}/status`));
      expect(patches.length).toBeGreaterThanOrEqual(3);
      // Backoff, not a hot loop: 700 ms of outage at 40..200 ms costs a handful of attempts.
      expect(patches.length).toBeLessThan(20);

      // flush() gives up at its deadline instead of holding a shutdown forever.
      s.setFailNext({ method: "PATCH", path: `/gameruntimes/${g}/status`, status: 503, forMs: 60_000 });
      void writer.enqueue(record(g, { restartCount: 4 }));
      const started = Date.now();
      await writer.flush(300);
      expect(Date.now() - started).toBeLessThan(slack(2000));
      expect((await read(g))?.status?.restartCount).toBe(3);
      s.clearFailures();
    });

    it("a stale status on an object whose record is unchanged is repaired when the record is observed", async () => {
      const source = newSource();
      await watch(source);
      const writer = new GameRuntimeStatusWriter(source, logger);
      const g = gid();
      await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      const r = record(g);
      // The status another controller (or an outage) left behind: pending, no conditions.
      await other.patchStatus({ namespace: ns(), name: g }, { status: { phase: "pending", observedGeneration: 0 } });
      await waitFor("cache sees the stale status", () => source.cached(g)?.status?.phase === "pending");

      // Through the mirrored state store, as the loop reads the record at the start of a reconcile.
      const state = withKubernetesMirror({ getRecord: async () => r } as unknown as StateStore, { status: writer });
      expect(await state.getRecord(g)).toBe(r);
      await writer.flush();
      await waitFor("status repaired", async () => (await read(g))?.status?.phase === "running");
      await waitFor("cache caught up", () => source.cached(g)?.status?.phase === "running");
      // Once it matches, observing the same record costs no write.
      expect(writer.observe(r)).toBe(false);
      // An older record read late never overwrites a newer one.
      expect(writer.observe({ ...r, restartCount: 9, updatedAt: new Date(r.updatedAt.getTime() - 1000) })).toBe(false);
      // And a record the loop writes reaches .status through its onRecord observer.
      const observer = withStatusMirror<ReconcileObserver>({}, writer);
      observer.onRecord!({ ...r, restartCount: 5, updatedAt: new Date(r.updatedAt.getTime() + 1000) });
      await writer.flush();
      await waitFor("status follows the written record", async () => (await read(g))?.status?.restartCount === 5);
    });

    it("the status observedGeneration is in the object's terms when a generation base applies", async () => {
      const source = newSource({ generationFloor: async () => 10 });
      const writer = new GameRuntimeStatusWriter(source, logger);
      const g = gid();
      const r = await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      expect(r.declaration?.generation).toBe(11);
      await writer.writeNow(record(g, { observedGeneration: 10 }));
      expect((await read(g))?.status).toMatchObject({ phase: "pending", observedGeneration: 0 });
      await writer.writeNow(record(g, { observedGeneration: 11 }));
      expect((await read(g))?.status).toMatchObject({ phase: "running", observedGeneration: 1 });
    });
  });

  describe("events", () => {
    it("one Kubernetes Event per action and failure; repeats bump count; failures to emit are not fatal", async () => {
      const source = newSource();
      const events = new GameRuntimeEventRecorder({ source, logger, instance: "test-replica" });
      const g = gid();
      await source.mutate(g, () => ({ gameId: g, imageRef: IMAGE_A, desiredState: "running", restartPolicy: "on-failure" }), meta);
      events.recordRuntimeEvent({ gameId: g, type: "container_started", opId: null, data: { containerId: "abc" } });
      await events.flush();
      events.recordRuntimeEvent({ gameId: g, type: "reconcile_failed", opId: null, data: { code: "image_pull_failed", message: "denied" } });
      await events.flush();
      events.recordRuntimeEvent({ gameId: g, type: "reconcile_failed", opId: null, data: { code: "image_pull_failed", message: "denied" } });
      await events.flush();
      events.recordRuntimeEvent({ gameId: g, type: "declaration_changed", opId: null, data: {} });
      await events.flush();

      const core = t().kubeConfig.makeApiClient(CoreV1Api);
      const list = await core.listNamespacedEvent({ namespace: ns() });
      const mine = list.items.filter((e) => e.involvedObject.name === g);
      const uid = (await read(g))?.metadata.uid;
      expect(mine.map((e) => [e.type, e.reason]).sort()).toEqual([
        ["Normal", "ContainerStarted"],
        ["Warning", "ImagePullFailed"],
      ]);
      expect(mine.every((e) => e.involvedObject.kind === "GameRuntime" && e.involvedObject.uid === uid)).toBe(true);
      expect(mine.find((e) => e.reason === "ImagePullFailed")).toMatchObject({ count: 2, message: "image_pull_failed: denied" });

      if (fake) {
        server().setFailNext({ method: "POST", path: "/events", status: 500, count: 5 });
        await events.emit(g, { type: "Normal", reason: "ContainerStopped", message: "x", action: "Stop" });
      }
    });
  });

  describe("lease", () => {
    it("two holders: only one acquires; the other takes over only after expiry; release hands over at once", async () => {
      const name = `lease-${uniqueGameId("l")}`;
      const a = new KubernetesLease({ kubeConfig: t().kubeConfig, namespace: ns(), name, logger });
      const b = new KubernetesLease({ kubeConfig: t().kubeConfig, namespace: ns(), name, logger });
      const [ra, rb] = await Promise.all([a.tryAcquire("a", 3000), b.tryAcquire("b", 3000)]);
      expect([ra, rb].filter(Boolean)).toHaveLength(1);
      const [leader, leaderId, standby, standbyId] = ra ? [a, "a", b, "b"] as const : [b, "b", a, "a"] as const;

      expect(await leader.tryAcquire(leaderId, 3000)).toBe(true); // renew
      expect(await standby.tryAcquire(standbyId, 3000)).toBe(false);
      await new Promise((r) => setTimeout(r, 600));
      expect(await leader.tryAcquire(leaderId, 3000)).toBe(true);
      await new Promise((r) => setTimeout(r, 600));
      expect(await standby.tryAcquire(standbyId, 3000)).toBe(false); // renewed 0.6 s ago: not expired

      // 3 s leases: the 0.6 s sleeps leave 2.4 s for a loaded machine's slow
      // calls before a lease the test still expects alive could expire.
      // The leader stops renewing: after the duration the standby takes over, once.
      await new Promise((r) => setTimeout(r, 3300));
      expect(await standby.tryAcquire(standbyId, 3000)).toBe(true);
      expect(await leader.tryAcquire(leaderId, 3000)).toBe(false);

      const coordination = await import("@kubernetes/client-node").then((m) => t().kubeConfig.makeApiClient(m.CoordinationV1Api));
      const lease = await coordination.readNamespacedLease({ namespace: ns(), name });
      expect(lease.spec?.holderIdentity).toBe(standbyId);
      expect(lease.spec?.leaseTransitions).toBe(1);
      expect(lease.spec?.leaseDurationSeconds).toBe(3);

      await standby.release(standbyId);
      expect(await leader.tryAcquire(leaderId, 3000)).toBe(true);
      await coordination.deleteNamespacedLease({ namespace: ns(), name }).catch(() => {});
    }, 30_000);

    it.runIf(fake)("a lease call against a hanging API server is cancelled by its signal", async () => {
      const s = server();
      const name = `lease-${uniqueGameId("h")}`;
      const lease = new KubernetesLease({ kubeConfig: t().kubeConfig, namespace: ns(), name, logger });
      let hung = 0;
      s.beforeHandle = async (req) => {
        if (req.path.endsWith(`/leases/${name}`)) {
          hung++;
          await new Promise((r) => setTimeout(r, 5000));
        }
      };
      const started = Date.now();
      await expect(lease.tryAcquire("a", 1000, AbortSignal.timeout(200))).rejects.toBeTruthy();
      expect(Date.now() - started).toBeLessThan(slack(1500));
      expect(hung).toBe(1);
      s.beforeHandle = null;
    });

    it("racing candidates for an expired lease: exactly one wins (409 for the rest)", async () => {
      const name = `lease-${uniqueGameId("r")}`;
      const first = new KubernetesLease({ kubeConfig: t().kubeConfig, namespace: ns(), name, logger });
      expect(await first.tryAcquire("gone", 1000)).toBe(true);
      const candidates = Array.from({ length: 5 }, () => new KubernetesLease({ kubeConfig: t().kubeConfig, namespace: ns(), name, logger }));
      await Promise.all(candidates.map((c, i) => c.tryAcquire(`c${i}`, 1000))); // observe
      await new Promise((r) => setTimeout(r, 1200));
      const wins = await Promise.all(candidates.map((c, i) => c.tryAcquire(`c${i}`, 1000)));
      expect(wins.filter(Boolean)).toHaveLength(1);
    }, 10_000);
  });
}

// ---------------------------------------------------------------- targets

describe("Kubernetes mode against the test API server", () => {
  let server: FakeApiServer;
  let kubeConfig: KubeConfig;
  beforeAll(async () => {
    server = await FakeApiServer.start();
    kubeConfig = fakeKubeConfig(server.url);
  });
  afterAll(async () => {
    await server?.stop();
  });
  suite(true, () => ({ kubeConfig, namespace: "default", fake: server }));
});

// Collected always, run only with a real cluster at hand: without one (CI) its tests count as skipped, with the reason in the name.
describe.skipIf(!process.env.KUBECONFIG)(`Kubernetes mode against the cluster in $KUBECONFIG${process.env.KUBECONFIG ? "" : " (skipped: KUBECONFIG is unset)"}`, () => {
  const kubeConfig = realKubeConfig();
  suite(false, () => ({ kubeConfig: kubeConfig!, namespace: process.env.RTMANAGER_TEST_NAMESPACE || "default", fake: null }));
});

// ---------------------------------------------------------------- end to end

describe("Kubernetes mode end to end: the loop over real Docker and PGlite, GameRuntime objects on the test API server", () => {
  // Wired exactly as production: createApp in Kubernetes mode, the kubeconfig
  // read from $KUBECONFIG (pointing at the test API server), the app's own
  // finalizer, status mirror, event recorder and Lease.
  const instance = uniqueInstance("k8s");
  const network = `rtm-k8s-${instance}`;
  const docker = testDocker();
  let server: FakeApiServer;
  let app: App;
  let store: SqlStore;
  let operations: RuntimeOperations;
  let stateRoot: string;
  let root: string;

  beforeAll(async () => {
    await ensureTestImages();
    await createTestNetwork(network);
    root = await fs.mkdtemp(path.join(os.tmpdir(), "rtm-k8s-app-"));
    stateRoot = path.join(root, "state");
    await fs.mkdir(stateRoot, { recursive: true });
    server = await FakeApiServer.start();
    const kubeconfigFile = path.join(root, "kubeconfig");
    await fs.writeFile(kubeconfigFile, fakeKubeConfig(server.url).exportConfig());
    const config = loadConfig({
      RTMANAGER_SOURCE: "kubernetes",
      RTMANAGER_KUBE_NAMESPACE: "games",
      RTMANAGER_INSTANCE_ID: instance,
      RTMANAGER_DOCKER_NETWORK: network,
      RTMANAGER_STATE_ROOT: stateRoot,
      RTMANAGER_DATA_DIR: path.join(root, "data"),
      RTMANAGER_INTERNAL_HTTP_ADDR: "127.0.0.1:0",
      ...FAST_APP_ENV,
      RTMANAGER_PATCH_HEALTH_TIMEOUT: "10s",
      RTMANAGER_RETRY_BACKOFF_BASE: "100ms",
      RTMANAGER_RESYNC_INTERVAL: "2s",
      RTMANAGER_OP_TIMEOUT: "60s",
      RTMANAGER_LEASE_DURATION: "3s",
      RTMANAGER_LEASE_RENEW_DEADLINE: "2s",
      RTMANAGER_LEASE_RETRY_PERIOD: "300ms",
      RTMANAGER_LOG_LEVEL: "silent",
    });
    app = await createAppWithKubeconfig(kubeconfigFile, config, logger);
    store = app.store;
    operations = app.operations;
    await app.start();
    await waitFor("leader", () => app.manager.isLeader, 10_000);
    // The Lease the app took: in the watched namespace, under the name the RBAC grants.
    expect(server.get("leases", "games", `${instance}-leader`)).toBeDefined();
  }, 300_000);

  afterAll(async () => {
    await app?.stop();
    await server?.stop();
    await cleanupInstance(instance);
    await removeTestNetwork(network);
    if (root) await fs.rm(root, { recursive: true, force: true });
  }, 60_000);

  const containersOf = (gameId: string) =>
    docker.listContainers({ all: true, filters: { label: [`${LABELS.instance}=${instance}`, `${LABELS.gameId}=${gameId}`] } });

  it("kubectl apply starts an engine, status and events come back; kubectl delete removes it and lets the object go", async () => {
    const g = uniqueGameId("e");
    server.create("gameruntimes", "games", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100 } });
    await waitFor("container running", async () => (await containersOf(g)).find((c) => c.State === "running"), 60_000);
    const obj = await waitFor("status Ready", () => {
      const o = server.get("gameruntimes", "games", g);
      const ready = (o?.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions?.find((c) => c.type === "Ready");
      return ready?.status === "True" ? o : undefined;
    }, 30_000);
    expect(obj.status).toMatchObject({ phase: "running", imageRef: TEST_IMAGES.v100, observedGeneration: 1 });
    expect(obj.metadata.finalizers).toContain(FINALIZER);
    await waitFor("events", () => {
      const reasons = server.list("events", "games").filter((e) => (e.involvedObject as { name: string }).name === g).map((e) => e.reason);
      return reasons.includes("ContainerCreated") && reasons.includes("ContainerStarted");
    });

    server.remove("gameruntimes", "games", g);
    await waitFor("object gone", () => server.get("gameruntimes", "games", g) === undefined, 60_000);
    expect(await containersOf(g)).toHaveLength(0);
    await expect(fs.stat(path.join(stateRoot, g))).resolves.toBeTruthy(); // state directory kept
    expect((await store.getRecord(g))?.status).toBe("removed");
  }, 120_000);

  it("a stale status is repaired by the loop although the record does not change; status writes survive an API-server outage", async () => {
    const g = uniqueGameId("s");
    const phaseIs = (phase: string) => () => {
      const st = server.get("gameruntimes", "games", g)?.status as { phase?: string; conditions?: { type: string; status: string }[] } | undefined;
      return st?.phase === phase && st.conditions?.find((c) => c.type === "Ready")?.status === "True";
    };
    // Other clients' writes go straight into the test server, so its request log is the app's alone.
    const setDesired = (desiredState: string) =>
      server.update("gameruntimes", "games", g, (o) => {
        (o.spec as { desiredState?: string }).desiredState = desiredState;
      });
    server.create("gameruntimes", "games", { metadata: { name: g }, spec: { gameId: g, imageRef: TEST_IMAGES.v100 } });
    await waitFor("status running", phaseIs("running"), 60_000);
    // A stopped runtime: nothing (not even the prober) changes its record any more.
    setDesired("stopped");
    await waitFor("status stopped", phaseIs("stopped"), 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const recordBefore = await store.getRecord(g);

    // Another writer (or a controller that crashed mid-write) leaves the status stale; nothing about the runtime changes.
    server.setStatus("gameruntimes", "games", g, { phase: "pending", observedGeneration: 0 });
    expect(phaseIs("stopped")()).toBe(false);
    await waitFor("status repaired by a resync reconcile", phaseIs("stopped"), 30_000);
    expect((await store.getRecord(g))?.updatedAt).toEqual(recordBefore?.updatedAt);

    // The status endpoint is down while the runtime changes (kubectl starts it): the write is retried until it lands.
    server.setFailNext({ method: "PATCH", path: `/gameruntimes/${g}/status`, status: 500, forMs: 1500 });
    const before = server.requests.length;
    setDesired("running");
    await waitFor("running in Docker", async () => (await containersOf(g)).find((c) => c.State === "running"), 60_000);
    await waitFor("status shows running after the outage", phaseIs("running"), 30_000);
    const failed = server.requests.slice(before).filter((q) => q.method === "PATCH" && q.path.endsWith(`/${g}/status`));
    expect(failed.length).toBeGreaterThan(1);
  }, 180_000);

  it("the REST start writes a GameRuntime; a re-created game continues above the recorded generation", async () => {
    const g = uniqueGameId("r");
    const ctx = { opId: "rest-1", opSource: "gm_rest" as const, logger };
    const started = await operations.start(g, TEST_IMAGES.v100, ctx);
    expect(started.record).toMatchObject({ status: "running", currentImageRef: TEST_IMAGES.v100 });
    const obj = server.get("gameruntimes", "games", g)!;
    expect(obj.metadata.annotations).toMatchObject({ [ANNOTATION_OP_ID]: "rest-1", [ANNOTATION_OP_SOURCE]: "gm_rest" });

    const stopped = await operations.stop(g, "admin_request", { ...ctx, opId: "rest-2" });
    expect(stopped.record.status).toBe("stopped");
    const observed = (await store.getRecord(g))!.observedGeneration;

    server.remove("gameruntimes", "games", g);
    await waitFor("object gone", () => server.get("gameruntimes", "games", g) === undefined, 60_000);
    const again = await operations.start(g, TEST_IMAGES.v101, { ...ctx, opId: "rest-3" });
    expect(again.record).toMatchObject({ status: "running", currentImageRef: TEST_IMAGES.v101 });
    expect(again.record.observedGeneration).toBeGreaterThan(observed);
    expect(server.get("gameruntimes", "games", g)?.metadata.generation).toBe(1);
  }, 180_000);
  it("a failing pull: Ready/Degraded carry the CamelCase reason with the code in the message; repeated Warning Events bump count", async () => {
    const g = uniqueGameId("p");
    server.create("gameruntimes", "games", { metadata: { name: g }, spec: { gameId: g, imageRef: "registry.invalid/galaxy/engine:1.0.0" } });
    type Cond = { type: string; status: string; reason: string; message: string };
    const conditions = await waitFor("Ready False", () => {
      const c = (server.get("gameruntimes", "games", g)?.status as { conditions?: Cond[] } | undefined)?.conditions;
      return c?.find((x) => x.type === "Ready" && x.status === "False" && x.reason !== "Reconciling") ? c : undefined;
    }, 60_000);
    const byType = Object.fromEntries(conditions.map((c) => [c.type, c]));
    expect(byType.Ready).toMatchObject({ reason: "ImagePullFailed", message: expect.stringMatching(/^image_pull_failed: /) });
    expect(byType.Degraded).toMatchObject({ status: "True", reason: "ImagePullFailed" });
    const warning = await waitFor("a repeated Warning event", () =>
      server.list("events", "games").find((e) => (e.involvedObject as { name: string }).name === g && e.type === "Warning" && (e.count as number) >= 2),
    30_000);
    expect(warning.reason).toBe("ImagePullFailed");
    expect(warning.message).toMatch(/^image_pull_failed: /);
    server.remove("gameruntimes", "games", g);
    await waitFor("object gone", () => server.get("gameruntimes", "games", g) === undefined, 60_000);
  }, 120_000);

  // Runs last: the request log then holds everything the app did above.
  it("RBAC grants exactly the verbs the app used against the test API server (derived from its request log)", async () => {
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
    const rulesOf = async (file: string, kind: string) => {
      const docs = parseAllDocuments(await fs.readFile(path.join(process.cwd(), "deploy", file), "utf8")).map((d) => d.toJS() as { kind: string; rules?: Rule[] });
      return docs.find((d) => d.kind === kind)!.rules!;
    };
    const role = await rulesOf("kustomize/base/rbac.yaml", "Role");
    const clusterRole = await rulesOf("kustomize/components/cluster-wide/rbac-cluster-wide.yaml", "ClusterRole");
    const used = server.verbsUsed();
    const key = (u: { group: string; resource: string; verb: string }) => `${u.group}/${u.resource} ${u.verb}`;
    const granted = (rules: Rule[]) => new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res} ${v}`)))));

    // Everything the app did is allowed, named requests within resourceNames. The app's Lease is named
    // after its instance id; the Role names the default instance's ("rtmanager-leader").
    for (const u of used) {
      const name = u.resource === "leases" && u.name ? u.name.replace(instance, "rtmanager") : u.name;
      const ok = role.some(
        (r) => r.apiGroups.includes(u.group) && r.resources.includes(u.resource) && r.verbs.includes(u.verb) && (!r.resourceNames || (name !== undefined && r.resourceNames.includes(name))),
      );
      expect(ok, `rbac.yaml allows ${key(u)}${name ? ` on ${name}` : ""}`).toBe(true);
    }
    // And nothing more: every granted verb was needed.
    const usedKeys = new Set(used.map(key));
    expect([...granted(role)].sort()).toEqual([...usedKeys].sort());
    // Cluster-wide: the same rights on GameRuntime objects and Events in every namespace; the Lease stays namespaced.
    expect([...granted(clusterRole)].sort()).toEqual([...usedKeys].filter((k) => !k.startsWith("coordination.k8s.io/")).sort());
  });
});
