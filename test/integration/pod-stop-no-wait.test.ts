/**
 * Issue 18: a Pod stop never holds a worker until the Pod is gone. The stop
 * returns once the API server accepted the deletion; the loop requeues while
 * the Pod terminates (woken by the watch), and the stop's REST call waits on
 * the record, answering once the Pod is gone.
 *
 * One worker (RTMANAGER_CONCURRENCY=1) and a Pod whose deletion a finalizer
 * holds: a start of another game answers while the stopped Pod is still
 * terminating. Before the change the one worker sat in the stop's wait for
 * the Pod to go (the stop timeout plus a request timeout), so the start
 * answered only after the stop had given up with an error.
 *
 * The same for a patch whose Pod finished under it and a Pod the node
 * evicted (the runtime deletes them to make a new one, and a finalizer holds
 * them), and for a stop sent between the two halves of such a split replace.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmClient } from "../../src/client/index.js";
import { TEST_IMAGES, uniqueGameId } from "../helpers/docker.js";
import { startPodTestApp, POD_NAMESPACE, type PodTestApp } from "../helpers/podApp.js";
import { until } from "../k8s-infra/helpers.js";
import { afterLoopLookedAgain } from "../helpers/loop.js";

const HOLD = "test.galaxy.io/hold";
let t: PodTestApp;
let client: RtmClient;

beforeAll(async () => {
  t = await startPodTestApp({ name: "stopnowait", nodes: 1, env: { RTMANAGER_CONCURRENCY: "1", RTMANAGER_OP_TIMEOUT: "60s", RTMANAGER_PATCH_MIN_HEALTHY: "1s" } });
  client = new RtmClient({ baseUrl: t.baseUrl, timeoutMs: 90_000 });
}, 120_000);

afterAll(async () => {
  await t?.close();
}, 60_000);

describe("a Pod stop returns once the deletion is accepted", () => {
  it("with one worker and a Pod held terminating, a start of another game answers; the stop answers once the Pod is gone", async () => {
    const held = uniqueGameId("held");
    const next = uniqueGameId("next");
    expect((await client.start(held, TEST_IMAGES.v100)).status).toBe("running");
    const podName = `galaxy-game-${held}`;
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [HOLD];
    });

    const order: string[] = [];
    let podWhenStopAnswered: unknown = "not answered";
    const stop = client.stop(held, "admin_request").then(
      (record) => {
        podWhenStopAnswered = t.podOf(held) ?? null;
        order.push("stop answered");
        return record;
      },
      (err: unknown) => {
        order.push("stop failed");
        return err;
      },
    );
    await until(`${podName} terminating`, () => t.podOf(held)?.metadata.deletionTimestamp, 20_000);

    const started = await client.start(next, TEST_IMAGES.v100);
    order.push("start answered");
    expect(started.status).toBe("running");
    // The stopped Pod is still there, held: the one worker did not wait for it.
    const stillHeld = t.podOf(held);
    expect(stillHeld?.metadata.deletionTimestamp).toBeTruthy();
    expect(stillHeld?.metadata.finalizers).toEqual([HOLD]);
    expect(order).toEqual(["start answered"]);

    order.push("finalizer removed");
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [];
    });
    const stopped = await stop;
    expect(order).toEqual(["start answered", "finalizer removed", "stop answered"]);
    expect(stopped).toMatchObject({ status: "stopped" });
    // It answered once the Pod was gone, not when the deletion was accepted.
    expect(podWhenStopAnswered).toBeNull();
    expect((await client.get(held)).status).toBe("stopped");
    expect((await client.get(next)).status).toBe("running");
  }, 120_000);
});

describe("a patch of a Pod that finished under it does not wait for the Pod to go", () => {
  it("the Pod is evicted while the image patch is on its way and a finalizer holds it: a start of another game answers meanwhile; the patch answers once it is gone, carried out as a gated patch on a new Pod", async () => {
    const held = uniqueGameId("evicted");
    const next = uniqueGameId("next");
    expect((await client.start(held, TEST_IMAGES.v100)).status).toBe("running");
    const podName = `galaxy-game-${held}`;
    const first = t.podOf(held)!;
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [HOLD];
    });
    // The node evicts the Pod while the controller's image patch is on its way: the patch meets a newer Pod
    // (409), and the Pod it reads then has finished, so it is recreated on the new image rather than patched.
    let evicted = false;
    t.server.beforeHandle = (req) => {
      if (evicted || req.method !== "PATCH" || !req.path.endsWith(`/pods/${podName}`)) return;
      evicted = true;
      const status = t.podOf(held)!.status as Record<string, unknown>;
      t.server.setStatus("pods", POD_NAMESPACE, podName, { ...status, phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." });
    };

    const order: string[] = [];
    const patch = client.patch(held, TEST_IMAGES.v101).then(
      (record) => {
        order.push("patch answered");
        return record;
      },
      (err: unknown) => {
        order.push("patch failed");
        throw err;
      },
    );
    try {
      await until(`${podName} evicted and terminating`, () => evicted && t.podOf(held)?.metadata.deletionTimestamp, 20_000);
    } finally {
      t.server.beforeHandle = null;
    }

    const started = await client.start(next, TEST_IMAGES.v100);
    order.push("start answered");
    expect(started.status).toBe("running");
    // The evicted Pod is still there, held: the one worker did not wait for it.
    const stillHeld = t.podOf(held);
    expect(stillHeld?.metadata.uid).toBe(first.metadata.uid);
    expect(stillHeld?.metadata.deletionTimestamp).toBeTruthy();
    expect(order).toEqual(["start answered"]);

    order.push("finalizer removed");
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [];
    });
    const patched = await patch;
    expect(order).toEqual(["start answered", "finalizer removed", "patch answered"]);
    expect(patched).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101 });
    const now = t.podOf(held)!;
    expect(now.metadata.uid).not.toBe(first.metadata.uid);
    expect((now.spec as { containers: { image: string }[] }).containers[0]!.image).toBe(TEST_IMAGES.v101);
    // Both halves are the patch, the second gated (no plain start): its row ends once the health gate passed.
    const generation = (await t.app.source.get(held))!.generation;
    const ops = (await t.app.store.listOperations(held, 20)).filter((o) => o.generation === generation);
    expect(ops.map((o) => [o.kind, o.outcome])).toEqual([
      ["patch", "success"],
      ["patch", "success"],
    ]);
    const events = (await t.app.store.eventsAfter(0, { gameId: held })).map((e) => e.type);
    expect(events).not.toContain("patch_rolled_back");
    expect((await client.get(next)).status).toBe("running");
  }, 120_000);
});

describe("a stop sent between the two halves of a split Pod replace", () => {
  it("a restart whose old Pod a finalizer holds, then a stop: once the Pod is gone the game reads stopped with its last engine, and no new Pod is made", async () => {
    const g = uniqueGameId("halfway");
    const started = await client.start(g, TEST_IMAGES.v100);
    expect(started.status).toBe("running");
    const podName = `galaxy-game-${g}`;
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [HOLD];
    });
    // The restart's first half deletes the Pod; its create waits for the Pod to go.
    const restart = client.restart(g).catch((err: unknown) => err);
    await until(`${podName} terminating`, () => t.podOf(g)?.metadata.deletionTimestamp, 20_000);
    const stop = client.stop(g, "admin_request");
    await until("the stop declared", async () => ((await t.app.source.get(g))?.desiredState === "stopped" ? true : undefined), 20_000);
    expect(t.podOf(g)?.metadata.deletionTimestamp).toBeTruthy();
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [];
    });
    const stopped = await stop;
    expect(stopped).toMatchObject({ status: "stopped", current_image_ref: TEST_IMAGES.v100, current_container_id: started.current_container_id });
    expect(stopped.stopped_at).toBeTruthy();
    expect(stopped.removed_at ?? null).toBeNull();
    await restart;
    await afterLoopLookedAgain(t.baseUrl, 2);
    expect(t.podOf(g)).toBeUndefined();
    expect((await client.get(g)).status).toBe("stopped");
  }, 120_000);
});

describe("an evicted Pod a finalizer holds does not hold a worker either", () => {
  it("the node evicts a running game's Pod and a finalizer holds its deletion: a start of another game answers meanwhile, and the game runs on a new Pod once the old one is gone", async () => {
    const g = uniqueGameId("evictheld");
    const next = uniqueGameId("next");
    expect((await client.start(g, TEST_IMAGES.v100)).status).toBe("running");
    const podName = `galaxy-game-${g}`;
    const first = t.podOf(g)!;
    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [HOLD];
    });
    t.server.setStatus("pods", POD_NAMESPACE, podName, { ...(first.status as Record<string, unknown>), phase: "Failed", reason: "Evicted", message: "The node was low on resource: memory." });
    // The loop replaces the evicted Pod: its create meets the name taken, deletes the evicted Pod, and the finalizer holds it.
    await until(`${podName} deleted and held`, () => t.podOf(g)?.metadata.deletionTimestamp, 20_000);

    const started = await client.start(next, TEST_IMAGES.v100);
    expect(started.status).toBe("running");
    expect(t.podOf(g)?.metadata.uid).toBe(first.metadata.uid);
    expect(t.podOf(g)?.metadata.finalizers).toEqual([HOLD]);
    // No worker gave up on it meanwhile: the game records no error (the old wait ended in one, then let the start run).
    expect(await t.app.store.getRecord(g)).toMatchObject({ lastErrorCode: null });

    t.server.update("pods", POD_NAMESPACE, podName, (o) => {
      o.metadata.finalizers = [];
    });
    const replaced = await until(`${g} on a new Pod`, async () => {
      const pod = t.podOf(g);
      const record = await client.get(g);
      return pod && pod.metadata.uid !== first.metadata.uid && record.status === "running" && record.current_container_id !== null ? { pod, record } : undefined;
    }, 30_000);
    expect(replaced.record.current_image_ref).toBe(TEST_IMAGES.v100);
    expect((await client.get(next)).status).toBe("running");
  }, 120_000);
});
