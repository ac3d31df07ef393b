/**
 * Runtime API metrics for both runtimes (issue 22 part 10):
 * rtmanager_runtime_api_calls_total{runtime,operation,outcome} and
 * rtmanager_runtime_api_call_duration_seconds{runtime,operation}. The Pod
 * runtime's calls all go through KubeCalls.run; Docker's through DockerCalls,
 * which also keeps feeding rtmanager_docker_api_*.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Metrics } from "../../src/metrics.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { KubeCalls } from "../../src/kube/calls.js";
import { BoundedKubeConfig } from "../../src/kube/client.js";
import { isAborted } from "../../src/model/abort.js";
import { DockerCalls } from "../../src/runtime/docker/calls.js";

const sample = async (m: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> => {
  const metric = await m.registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value;
};

afterEach(() => {
  vi.useRealTimers();
});

describe("runtime API metrics", () => {
  it("the Pod runtime's calls are counted by operation and outcome, with their latency", async () => {
    vi.useFakeTimers();
    const m = new Metrics({ defaultMetrics: false });
    const calls = new KubeCalls(new BoundedKubeConfig(10_000), m.runtimeOnCall("kubernetes"));
    await calls.run("create", "creating Pod g1", async () => "created");
    await calls.run("create", "creating Pod g2", async () => "created");
    await expect(calls.run("create", "creating Pod g3", () => Promise.reject(Object.assign(new Error("boom"), { statusCode: 500 })))).rejects.toBeInstanceOf(RuntimeFailure);
    // The API answered "already gone": the caller handles it, the API did not fail.
    await expect(calls.run("delete", "deleting Pod g4", () => Promise.reject(Object.assign(new Error("gone"), { statusCode: 404 })))).rejects.toMatchObject({ kind: "not_found" });
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "kubernetes", operation: "create", outcome: "ok" })).toBe(2);
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "kubernetes", operation: "create", outcome: "error" })).toBe(1);
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "kubernetes", operation: "delete", outcome: "ok" })).toBe(1);
    expect(await sample(m, "rtmanager_runtime_api_call_duration_seconds", { runtime: "kubernetes", operation: "create", le: "+Inf" })).toBe(3);
  });

  it("a request the client aborted at its timeout (an API server that never answers) is an error", async () => {
    const m = new Metrics({ defaultMetrics: false });
    const calls = new KubeCalls(new BoundedKubeConfig(5_000), m.runtimeOnCall("kubernetes"));
    // What client-node rejects with once BoundedKubeConfig's AbortSignal.timeout fires.
    const aborted = Object.assign(new Error("The operation was aborted."), { name: "AbortError" });
    await expect(calls.run("get", "reading Pod g1", () => Promise.reject(aborted))).rejects.toMatchObject({ kind: "unavailable" });
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "kubernetes", operation: "get", outcome: "error" })).toBe(1);
  });

  it("Docker's calls feed the same metric with runtime=docker and still rtmanager_docker_api_*", async () => {
    const m = new Metrics({ defaultMetrics: false });
    const onCall = m.runtimeOnCall("docker");
    onCall("inspect", "ok", 0.01);
    onCall("create", "error", 0.2);
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "docker", operation: "create", outcome: "error" })).toBe(1);
    expect(await sample(m, "rtmanager_docker_api_calls_total", { operation: "inspect", outcome: "ok" })).toBe(1);
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "kubernetes", operation: "inspect", outcome: "ok" })).toBeUndefined();
  });

  it("a call cut short by its reconcile's signal (lost leadership, shutdown) is counted as aborted, on both runtimes, never as an error", async () => {
    const m = new Metrics({ defaultMetrics: false });
    const kube = new KubeCalls(new BoundedKubeConfig(10_000), m.runtimeOnCall("kubernetes"));
    const docker = new DockerCalls(30_000, m.runtimeOnCall("docker"), undefined);
    const lost = new AbortController();
    // Requests that would answer only after the signal: what the reconcile's signal cuts.
    const kubeCall = kube.run("remove", "deleting Pod g1", () => new Promise<never>(() => undefined), {}, lost.signal);
    const dockerCall = docker.run("stop", (signal) => new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" })))), { signal: lost.signal });
    lost.abort();
    for (const call of [kubeCall, dockerCall]) expect(isAborted(await call.then(() => null, (e: unknown) => e))).toBe(true);
    for (const runtime of ["kubernetes", "docker"]) {
      const operation = runtime === "docker" ? "stop" : "remove";
      expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime, operation, outcome: "aborted" })).toBe(1);
      expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime, operation, outcome: "error" })).toBeUndefined();
      expect(await sample(m, "rtmanager_runtime_api_call_duration_seconds", { runtime, operation, le: "+Inf" })).toBe(1);
    }
    expect(await sample(m, "rtmanager_docker_api_calls_total", { operation: "stop", outcome: "aborted" })).toBe(1);
    // A call whose signal fired before it began is not made, so not counted.
    await expect(kube.run("list", "listing Pods", async () => [], {}, lost.signal)).rejects.toSatisfy(isAborted);
    expect(await sample(m, "rtmanager_runtime_api_calls_total", { runtime: "kubernetes", operation: "list", outcome: "aborted" })).toBeUndefined();
  });

  it("a metrics hook that throws does not change the call's result", async () => {
    const calls = new KubeCalls(new BoundedKubeConfig(10_000), () => {
      throw new Error("hook broke");
    });
    await expect(calls.run("get", "reading Pod g1", async () => 42)).resolves.toBe(42);
  });
});
