/**
 * Issue 18: the Pod runtime's start returns once the API server has the Pod,
 * without waiting for the kubelet; the loop waits for the Pod watch instead.
 * A start still fails once the engine has not run within the start bound of
 * its Pod's creation. The test API server alone: no kubelet ever runs the Pod.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { kubeClient } from "../../src/kube/client.js";
import { KubernetesPodRuntime } from "../../src/runtime/kubernetes/podRuntime.js";
import { uniqueGameId, uniqueInstance } from "../helpers/docker.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";

let server: FakeApiServer;
const runtimes: KubernetesPodRuntime[] = [];

beforeAll(async () => {
  server = await FakeApiServer.start();
});

afterAll(async () => {
  for (const r of runtimes) await r.close();
  await server?.stop();
});

function runtime(startTimeoutMs: number): KubernetesPodRuntime {
  const r = new KubernetesPodRuntime({
    kubeConfig: kubeClient(10_000, fakeKubeConfig(server.url)),
    instance: uniqueInstance("accepted"),
    namespace: "games",
    listNamespace: "games",
    pod: { imagePullPolicy: "if_not_present", terminationGraceSeconds: 2, template: {}, readiness: { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 } },
    claim: { storageClass: "", size: "1Gi" },
    logger: createLogger("silent"),
    startTimeoutMs,
  });
  runtimes.push(r);
  return r;
}

function spec(gameId: string) {
  return {
    gameId,
    name: `galaxy-game-${gameId}`,
    imageRef: "galaxy/test-engine:1.0.0",
    generation: 1,
    restartToken: null,
    configHash: "h",
    env: {},
    statePath: "",
    resources: { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pidsLimit: 64 },
    restartPolicy: "on-failure" as const,
  };
}

describe("Pod start without waiting for the kubelet", () => {
  it("returns at once for a Pod no kubelet has started; the engine reads as accepted (pending), not running", async () => {
    const r = runtime(30_000);
    const g = uniqueGameId();
    const id = await r.create(spec(g));
    // No kubelet runs here: the old start waited the whole 30 s bound for it (the test would time out).
    await r.start(id);
    const [engine] = await r.listForGame(g);
    expect(engine?.phase).toBe("pending");
  }, 10_000);

  it("fails with start_failed once the engine has not run within the start bound of its Pod's creation", async () => {
    const r = runtime(0);
    const g = uniqueGameId();
    const id = await r.create(spec(g));
    const err = await r.start(id).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect((err as RuntimeFailure).kind).toBe("start_failed");
    expect((err as RuntimeFailure).message).toMatch(/has not started within 0s of its Pod's creation/);
  }, 10_000);
});
