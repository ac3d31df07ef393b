/**
 * The one Kubernetes client setup (src/kube/client.ts): a call's deadline is
 * the client's request timeout, which aborts the request itself. KubeCalls
 * keeps no timer of its own beside it (it used to race a fixed 30 s, leaving
 * the request open behind a rejection), and reads an abort as the API being
 * unavailable.
 */
import { describe, expect, it } from "vitest";
import { KubeCalls } from "../../src/kube/calls.js";
import { kubeClient } from "../../src/kube/client.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { elapse, useFakeTime } from "../helpers/fakeTime.js";

describe("KubeCalls on the one client setup", () => {
  useFakeTime();
  const client = (requestTimeoutMs: number) => kubeClient(requestTimeoutMs, fakeKubeConfig("http://127.0.0.1:1"));

  it("a call the client allows 60 s is not cut short by a timer of its own: it answers at 45 s", async () => {
    const calls = new KubeCalls(client(60_000));
    let settled: unknown = "pending";
    void calls.run("get", "reading a Pod", () => new Promise((resolve) => setTimeout(() => resolve("answer"), 45_000))).then(
      (v) => (settled = v),
      (e: unknown) => (settled = e),
    );
    await elapse(44_000);
    expect(settled).toBe("pending");
    await elapse(1_000);
    expect(settled).toBe("answer");
  });

  it("an aborted request is the API unavailable, with the timeout named", async () => {
    const calls = new KubeCalls(client(2_000));
    const abort = Object.assign(new Error("The operation was aborted."), { name: "AbortError" });
    const err = await calls.run("get", "reading a Pod", () => Promise.reject(abort)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect((err as RuntimeFailure).kind).toBe("unavailable");
    expect((err as RuntimeFailure).message).toContain("RTMANAGER_KUBE_REQUEST_TIMEOUT");
  });

  it("the waits measured in request timeouts take the client's, or 30 s when requests have none", () => {
    expect(new KubeCalls(client(7_000)).timeoutMs).toBe(7_000);
    expect(new KubeCalls(client(0)).timeoutMs).toBe(30_000);
    expect(client(7_000).requestTimeoutMs).toBe(7_000);
    expect(client(7_000).getCurrentCluster()?.server).toBe("http://127.0.0.1:1");
  });
});
