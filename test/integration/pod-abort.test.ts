/**
 * The Pod runtime under a reconcile's AbortSignal (issue 18 part 3), against
 * the test API server alone: a create the API server holds is given up when
 * the signal fires, long before the call's own timeout (30 s here), with the
 * AbortedError (no RuntimeFailure); the abort reaches the socket (the server
 * sees the client go) and nothing is created.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BoundedKubeConfig } from "../../src/kube/client.js";
import { createLogger } from "../../src/log.js";
import { AbortedError } from "../../src/model/abort.js";
import type { EngineSpec } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { KubernetesPodRuntime } from "../../src/runtime/kubernetes/podRuntime.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";

const NS = "games";
let server: FakeApiServer;
beforeAll(async () => {
  server = await FakeApiServer.start();
});
afterAll(async () => {
  await server?.stop();
});

function runtime(): KubernetesPodRuntime {
  const kubeConfig = new BoundedKubeConfig(30_000);
  kubeConfig.loadFromString(fakeKubeConfig(server.url).exportConfig());
  return new KubernetesPodRuntime({
    kubeConfig,
    instance: "abort-test",
    namespace: NS,
    listNamespace: NS,
    pod: { imagePullPolicy: "if_not_present", terminationGraceSeconds: 1, template: {}, readiness: { periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 } },
    claim: { storageClass: "", size: "1Gi" },
    logger: createLogger("silent", "pod-abort"),
  });
}

const spec = (gameId: string): EngineSpec => ({
  gameId,
  name: `galaxy-game-${gameId}`,
  imageRef: "galaxy/test-engine:1.0.0",
  generation: 1,
  restartToken: null,
  configHash: "h1",
  env: {},
  statePath: "",
  resources: { cpus: 0, memoryBytes: 0, pidsLimit: 0 },
  restartPolicy: "on-failure",
});

describe("Pod runtime calls under a signal", () => {
  it("a Pod create the API server holds ends when the signal fires: AbortedError, the request torn down, no Pod", async () => {
    const rt = runtime();
    try {
      await rt.listManaged();
      let held: Promise<void> | undefined;
      server.beforeHandle = async (req) => {
        if (req.method === "POST" && req.path.endsWith("/pods")) {
          held = req.clientGone;
          await req.clientGone;
        }
      };
      const controller = new AbortController();
      const outcome = rt.create(spec("held1"), { signal: controller.signal }).catch((e: unknown) => e);
      // The create is provably at the API server before the signal fires.
      await expect.poll(() => held !== undefined, { timeout: 10_000 }).toBe(true);
      controller.abort(new AbortedError("this replica lost leadership"));
      const err = await outcome;
      expect(err).toBeInstanceOf(AbortedError);
      expect(err).not.toBeInstanceOf(RuntimeFailure);
      // Resolves only when the client closed the connection: the abort reached the socket.
      await held;
      expect(server.get("pods", NS, "galaxy-game-held1")).toBeUndefined();
    } finally {
      server.beforeHandle = null;
      await rt.close();
    }
  });

  it("a signal that has already fired sends nothing: no claim, no Service, no Pod", async () => {
    const rt = runtime();
    try {
      const controller = new AbortController();
      controller.abort(new AbortedError("shutting down"));
      await expect(rt.create(spec("never1"), { signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
      // Without a signal the same runtime creates: the server answers, and nothing of the aborted call is there.
      expect(server.get("services", NS, "galaxy-game-never1")).toBeUndefined();
      expect(server.get("persistentvolumeclaims", NS, "galaxy-game-never1-state")).toBeUndefined();
      await rt.create(spec("after1"));
      expect(server.get("pods", NS, "galaxy-game-after1")).toBeDefined();
    } finally {
      await rt.close();
    }
  });
});
