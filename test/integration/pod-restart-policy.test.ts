/**
 * Issue 12 on the Pod runtime end to end (test API server, test kubelet
 * running real Docker containers of the test engine, declarations in PGlite):
 * a changed restartPolicy recreates the Pod (spec.restartPolicy is immutable),
 * and an in-place patch whose new container the kubelet failed to start once
 * is not taken for an exit of the new image.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type App } from "../../src/app.js";
import { RtmClient } from "../../src/client/index.js";
import { specOf } from "../../src/model/declaration.js";
import { TEST_IMAGES, uniqueGameId } from "../helpers/docker.js";
import type { Obj } from "../k8s/fakeApiServer.js";
import { startPodTestApp, type PodTestApp } from "../helpers/podApp.js";
import { DockerRuntime } from "../k8s/kubelet/runtime.js";
import { until } from "../k8s-infra/helpers.js";

let t: PodTestApp;
let app: App;
let client: RtmClient;

beforeAll(async () => {
  t = await startPodTestApp({
    name: "podpolicy",
    nodes: 1,
    env: { RTMANAGER_PATCH_MIN_HEALTHY: "1s", RTMANAGER_PATCH_HEALTH_TIMEOUT: "15s", RTMANAGER_OP_TIMEOUT: "40s" },
  });
  ({ app } = t);
  client = new RtmClient({ baseUrl: t.baseUrl, timeoutMs: 60_000 });
}, 120_000);

afterEach(() => vi.restoreAllMocks());

afterAll(async () => {
  await t?.close();
}, 60_000);

type Status = { containerStatuses?: { name: string; image: string; ready: boolean; containerID?: string }[] };
const podOf = (g: string): Obj | undefined => t.podOf(g);
const restartPolicyOf = (pod: Obj | undefined) => (pod?.spec as { restartPolicy?: string } | undefined)?.restartPolicy;

function readyPod(g: string, image: string): Promise<Obj> {
  return until(`${g} ready on ${image}`, () => {
    const pod = podOf(g);
    const cs = (pod?.status as Status | undefined)?.containerStatuses?.find((c) => c.name === "engine");
    // Not from the status's image: the test kubelet names it as containerd does (any of the image's tags, qualified).
    // The spec asks for it and the ready container is not the one an in-place patch replaced.
    const wanted = (pod?.spec as { containers: { image: string }[] } | undefined)?.containers[0]?.image === image;
    const replaced = pod?.metadata.annotations?.["rtmanager.galaxy.io/replaced-container"];
    return cs?.ready && wanted && cs.containerID?.replace(/^[a-z]+:\/\//, "") !== replaced && !pod?.metadata.deletionTimestamp ? pod : undefined;
  }, 40_000);
}

describe("Pods and issue 12", () => {
  it("a declaration whose restartPolicy changes (through the store) gets a new Pod with the new spec.restartPolicy", async () => {
    const g = uniqueGameId("policy");
    await client.start(g, TEST_IMAGES.v100);
    const before = await readyPod(g, TEST_IMAGES.v100);
    expect(restartPolicyOf(before)).toBe("OnFailure");
    await app.source.mutate(g, (d) => (d ? { ...specOf(d), restartPolicy: "always" } : null), { opId: `op-${g}`, opSource: "admin_rest" });
    const after = await until("a new Pod under Always", () => {
      const pod = podOf(g);
      return pod && pod.metadata.uid !== before.metadata.uid && restartPolicyOf(pod) === "Always" ? pod : undefined;
    }, 40_000);
    await readyPod(g, TEST_IMAGES.v100);
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    // The recreate is a restart of the same image, through the health gate.
    const op = await until("the restart operation finished", async () => (await app.store.listOperations(g)).find((o) => o.kind === "restart" && o.outcome !== "running"), 30_000);
    expect(op).toMatchObject({ outcome: "success", imageRef: TEST_IMAGES.v100 });
  }, 90_000);

  it("an in-place patch whose new container the kubelet failed to start once (old one exited 0 under OnFailure) recreates the Pod on the new image, not a rollback", async () => {
    const g = uniqueGameId("inplace");
    await client.start(g, TEST_IMAGES.v100);
    const before = await readyPod(g, TEST_IMAGES.v100);
    // One transient container-create failure for the new image, as Docker gives under load. The kubelet
    // has already killed the old container (exit 0: the engine traps SIGTERM); under OnFailure it never
    // restarts a container that exited 0 (ShouldContainerBeRestarted), so the Pod ends Succeeded.
    const run = DockerRuntime.prototype.run;
    let failed = 0;
    vi.spyOn(DockerRuntime.prototype, "run").mockImplementation(function (this: DockerRuntime, spec) {
      if (spec.image === TEST_IMAGES.v101 && failed++ === 0) return Promise.reject(new Error("(HTTP code 500) server error - injected: create failed under load"));
      return run.call(this, spec);
    });
    const record = await client.patch(g, TEST_IMAGES.v101);
    expect(failed).toBeGreaterThan(0);
    expect(record).toMatchObject({ status: "running", current_image_ref: TEST_IMAGES.v101 });
    const after = await readyPod(g, TEST_IMAGES.v101);
    expect(after.metadata.uid).not.toBe(before.metadata.uid);
    const events = (await app.store.eventsAfter(0, { gameId: g })).map((e) => e.type);
    expect(events).not.toContain("patch_rolled_back");
    expect(await app.store.getRecord(g)).toMatchObject({ currentImageRef: TEST_IMAGES.v101, heldGeneration: null });
  }, 90_000);
});
