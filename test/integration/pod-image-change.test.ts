/**
 * Issue 20 part 3: an in-place image change as the kubelet does it, on the
 * test kubelet over containerd's CRI. The kubelet kills the old container,
 * then pulls the new image (kuberuntime_manager.go `computePodActions`: a
 * changed container is restarted whatever the restart policy, in that sync
 * only; `startContainer` -> image_manager.go `EnsureImageExists`). A pull
 * that fails shows ErrImagePull, then ImagePullBackOff, under `Always`;
 * under `OnFailure`/`Never` the killed container is an exited one from the
 * next sync on (`ShouldContainerBeRestarted`), so the Pod ends. First the
 * kubelet alone, then what rtmanager makes of each case.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App } from "../../src/app.js";
import { RtmApiError, RtmClient } from "../../src/client/index.js";
import { specOf } from "../../src/model/declaration.js";
import { TEST_IMAGES, uniqueGameId } from "../helpers/docker.js";
import { startPodTestApp, type PodTestApp } from "../helpers/podApp.js";
import { afterLoopLookedAgain } from "../helpers/loop.js";
import type { Obj } from "../k8s/fakeApiServer.js";
import { RUN_LABEL } from "../k8s/kubelet/types.js";
import { enginePod, until } from "../k8s-infra/helpers.js";

/** Not imported into the test containerd: its pull fails for real (the registry resolves to a closed loopback port). */
const MISSING = "galaxy/test-engine:1.0.98";
const NS = "kubelet-only";

let t: PodTestApp;
let app: App;
let client: RtmClient;

beforeAll(async () => {
  t = await startPodTestApp({
    name: "podimage",
    nodes: 1,
    mode: "cri",
    env: { RTMANAGER_PATCH_MIN_HEALTHY: "1s", RTMANAGER_PATCH_HEALTH_TIMEOUT: "15s", RTMANAGER_OP_TIMEOUT: "40s" },
  });
  ({ app } = t);
  client = new RtmClient({ baseUrl: t.baseUrl, timeoutMs: 60_000 });
}, 120_000);

afterAll(async () => {
  await t?.close();
}, 60_000);

type Waiting = { reason?: string; message?: string };
type Terminated = { exitCode: number; reason?: string };
type EngineStatus = { ready: boolean; containerID?: string; restartCount: number; state: { waiting?: Waiting; running?: object; terminated?: Terminated }; lastState: { terminated?: Terminated } };
const engineOf = (pod: Obj | undefined) => (pod?.status as { containerStatuses?: (EngineStatus & { name: string })[] } | undefined)?.containerStatuses?.find((c) => c.name === "engine");
const phaseOf = (pod: Obj | undefined) => (pod?.status as { phase?: string } | undefined)?.phase;
const idOf = (pod: Obj | undefined) => engineOf(pod)?.containerID?.replace(/^[a-z]+:\/\//, "");

/** Every waiting reason the engine container of pod `name` shows from now on. */
function watchWaiting(namespace: string, name: string): { reasons: string[]; stop: () => void } {
  const reasons: string[] = [];
  const stop = t.server.subscribe((c) => {
    if (c.resource !== "pods" || c.object.metadata.namespace !== namespace || c.object.metadata.name !== name) return;
    const reason = engineOf(c.object)?.state.waiting?.reason;
    if (reason && reasons.at(-1) !== reason) reasons.push(reason);
  });
  return { reasons, stop };
}

/** The containers of a pod containerd runs now. */
async function runningContainers(namespace: string, name: string): Promise<string[]> {
  const listed = await t.cluster.cri!.client.listContainers({ [RUN_LABEL]: t.cluster.runId, "io.kubernetes.pod.name": name, "io.kubernetes.pod.namespace": namespace });
  return listed.filter((c) => c.state === "CONTAINER_RUNNING").map((c) => c.id);
}

describe("the test kubelet changes an image as the kubelet does", () => {
  it("kill, then pull: a failed pull is ErrImagePull then ImagePullBackOff under Always, and ends the Pod under OnFailure and Never (the old engine exited 0); a new container that fails to start ends it under Never", async () => {
    const cases = [
      { name: "always", policy: "Always", image: MISSING },
      { name: "onfailure", policy: "OnFailure", image: MISSING },
      { name: "never", policy: "Never", image: MISSING },
      { name: "never-broken", policy: "Never", image: TEST_IMAGES.brokenStart },
    ] as const;
    for (const c of cases) t.server.create("pods", NS, enginePod(c.name, TEST_IMAGES.v100, { restartPolicy: c.policy, grace: 5 }) as Obj);
    const ready = await until("all four Running and ready", () => {
      const pods = cases.map((c) => t.server.get("pods", NS, c.name));
      return pods.every((p) => engineOf(p)?.ready) ? pods : undefined;
    }, 60_000);
    const oldIds = ready.map((p) => idOf(p)!);
    const watches = cases.map((c) => watchWaiting(NS, c.name));
    try {
      for (const c of cases) t.server.update("pods", NS, c.name, (o) => ((o.spec as { containers: { image: string }[] }).containers[0]!.image = c.image));

      const always = await until("Always: ImagePullBackOff after ErrImagePull", () => {
        const p = t.server.get("pods", NS, "always");
        return engineOf(p)?.state.waiting?.reason === "ImagePullBackOff" ? p : undefined;
      }, 30_000);
      expect(watches[0]!.reasons.slice(0, 2)).toEqual(["ErrImagePull", "ImagePullBackOff"]);
      expect(engineOf(always)?.lastState.terminated).toMatchObject({ exitCode: 0 });
      expect(phaseOf(always)).toBe("Running");

      for (const [i, name] of (["onfailure", "never"] as const).entries()) {
        const ended = await until(`${name}: the Pod ends`, () => {
          const p = t.server.get("pods", NS, name);
          return phaseOf(p) === "Succeeded" ? p : undefined;
        }, 30_000);
        // The status shows the killed container's exit, never the pull error: the kubelet will not restart it.
        expect(engineOf(ended)?.state.terminated).toMatchObject({ exitCode: 0 });
        expect(watches[i + 1]!.reasons).toEqual([]);
      }
      const broken = await until("Never: the new container's start failure fails the Pod", () => {
        const p = t.server.get("pods", NS, "never-broken");
        return phaseOf(p) === "Failed" ? p : undefined;
      }, 30_000);
      expect(engineOf(broken)?.state.terminated).toMatchObject({ exitCode: 128, reason: "StartError" });
      // Kill first: none of the old containers runs any more.
      for (const [i, c] of cases.entries()) expect(await runningContainers(NS, c.name)).not.toContain(oldIds[i]);
    } finally {
      for (const w of watches) w.stop();
      for (const c of cases) t.server.remove("pods", NS, c.name, { gracePeriodSeconds: 0 });
    }
  }, 120_000);
});

describe("what rtmanager makes of it", () => {
  async function readyGame(g: string, image: string = TEST_IMAGES.v100): Promise<Obj> {
    return until(`${g} ready`, () => {
      const pod = t.podOf(g);
      const wanted = (pod?.spec as { containers: { image: string }[] } | undefined)?.containers[0]?.image === image;
      const replaced = pod?.metadata.annotations?.["rtmanager.galaxy.io/replaced-container"];
      return engineOf(pod)?.ready && wanted && idOf(pod) !== replaced && !pod?.metadata.deletionTimestamp ? pod : undefined;
    }, 40_000);
  }

  it("a slow pull of the new image: the old engine is killed before the pull, nothing is rolled back or recreated while it lasts, and the patch completes in place", async () => {
    const g = uniqueGameId("slowpull");
    await client.start(g, TEST_IMAGES.v100);
    const before = await readyGame(g);
    const node = (before.spec as { nodeName: string }).nodeName;
    const gate = t.cluster.kubelet(node).gatePull(TEST_IMAGES.v101);
    const patched = client.patch(g, TEST_IMAGES.v101);
    await gate.started;
    expect(await runningContainers("games", before.metadata.name)).toEqual([]);
    await afterLoopLookedAgain(t.baseUrl, 2);
    expect(t.podOf(g)?.metadata.uid).toBe(before.metadata.uid);
    expect((await app.store.eventsAfter(0, { gameId: g })).map((e) => e.type)).not.toContain("patch_rolled_back");
    gate.release();
    expect(await patched).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101 });
    const after = await readyGame(g, TEST_IMAGES.v101);
    expect(after.metadata.uid).toBe(before.metadata.uid);
    expect(await runningContainers("games", before.metadata.name)).toEqual([idOf(after)]);
  }, 90_000);

  for (const policy of ["always", "on-failure", "never"] as const) {
    it(`restartPolicy ${policy}: a patch to an image that cannot be pulled fails, and the game runs the old image again`, async () => {
      const g = uniqueGameId(`nopull-${policy}`);
      await client.start(g, TEST_IMAGES.v100);
      let before = await readyGame(g);
      if (policy !== "on-failure") {
        await app.source.mutate(g, (d) => (d ? { ...specOf(d), restartPolicy: policy } : null), { opId: `op-${g}`, opSource: "admin_rest" });
        before = await until("the Pod under the new policy", async () => {
          const p = await readyGame(g);
          return p.metadata.uid !== before.metadata.uid ? p : undefined;
        }, 40_000);
        // The recreate is a restart through the health gate: the patch comes after it, not into it. On Pods
        // the recreate is split (the old Pod goes first), so its first half's operation ends before the new
        // Pod's gate does: wait for the record, whose generation is reached only when that gate passes.
        await until("the restart's gate passed", async () => {
          const r = await app.store.getRecord(g);
          const d = await app.source.get(g);
          return r && d && r.observedGeneration === d.generation && !r.rolloutStartedAt ? r : undefined;
        }, 30_000);
      }
      const phases = new Set<string>();
      const unsubscribe = t.server.subscribe((c) => {
        if (c.resource === "pods" && c.object.metadata.uid === before.metadata.uid) phases.add(phaseOf(c.object) ?? "");
      });
      try {
        const refused = await client.patch(g, MISSING).then(() => null, (e: unknown) => e);
        expect(refused).toBeInstanceOf(RtmApiError);
        expect(refused).toMatchObject({ status: 500, code: "container_start_failed" });
        expect((refused as Error).message).toContain(`rolled back to ${TEST_IMAGES.v100}`);
        const rolledBack = (await app.store.eventsAfter(0, { gameId: g })).filter((e) => e.type === "patch_rolled_back");
        expect(rolledBack.map((e) => e.data)).toEqual([expect.objectContaining({ failedImageRef: MISSING, restoredImageRef: TEST_IMAGES.v100 })]);
        const again = await readyGame(g, TEST_IMAGES.v100);
        if (policy === "always") {
          // The kubelet keeps retrying the pull (ImagePullBackOff) in the same Pod: the rollback is in place,
          // and its reason is the pull, not an exit code the engine never had.
          expect((refused as Error).message).toMatch(/during the health gate: (ErrImagePull|ImagePullBackOff) \(failed to pull .*galaxy\/test-engine:1\.0\.98/);
          expect((refused as Error).message).not.toContain("code unknown");
          expect(again.metadata.uid).toBe(before.metadata.uid);
          expect([...phases]).not.toContain("Succeeded");
        } else {
          // The killed engine exited 0 and the kubelet will not restart it: the Pod ended, so it was replaced.
          expect([...phases]).toContain("Succeeded");
          expect(again.metadata.uid).not.toBe(before.metadata.uid);
        }
        expect(await client.get(g)).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v100 });
        expect(await runningContainers("games", again.metadata.name)).toEqual([idOf(again)]);
      } finally {
        unsubscribe();
      }
    }, 120_000);
  }
});
