/**
 * The test scheduler's NodeResourcesFit (upstream noderesources/fit.go
 * `fitsRequest`) and the Unschedulable message it feeds (framework/types.go
 * `FitError.Error`), as pure functions over Node and Pod objects.
 */
import { describe, expect, it } from "vitest";
import type { Obj } from "../k8s/fakeApiServer.js";
import { fitError, insufficient, podRequests } from "../k8s/kubelet/scheduler.js";
import type { PodSpec } from "../k8s/kubelet/types.js";

const ready = [{ type: "Ready", status: "True" }];
const node = (name: string, allocatable: Record<string, string>, spec: object = {}): Obj => ({ metadata: { name }, spec, status: { conditions: ready, allocatable } });
const pod = (cpu?: string, memory?: string): PodSpec => ({
  containers: [{ name: "engine", image: "x", resources: { requests: { ...(cpu ? { cpu } : {}), ...(memory ? { memory } : {}) } } } as PodSpec["containers"][number]],
});

describe("NodeResourcesFit", () => {
  it("sums the containers' requests in millicores and bytes (quantities as apimachinery reads them)", () => {
    expect(podRequests(pod("500m", "64Mi"))).toEqual({ cpuMilli: 500, memory: 64 * 1024 * 1024, pods: 1 });
    expect(podRequests(pod("1.5", "67108864"))).toEqual({ cpuMilli: 1500, memory: 67108864, pods: 1 });
    expect(podRequests(pod())).toEqual({ cpuMilli: 0, memory: 0, pods: 1 });
  });

  it("fitsRequest: every resource short is a reason; what the node's pods use counts; a pod asking nothing fits unless the pod slots are full", () => {
    const n = node("n", { cpu: "2", memory: "1Gi", pods: "3" });
    expect(insufficient(podRequests(pod("500m", "64Mi")), n, { cpuMilli: 1600, memory: 1000 * 1024 * 1024, pods: 2 })).toEqual(["Insufficient cpu", "Insufficient memory"]);
    expect(insufficient(podRequests(pod("500m", "64Mi")), n, { cpuMilli: 1500, memory: 0, pods: 2 })).toEqual([]);
    expect(insufficient(podRequests(pod()), n, { cpuMilli: 5000, memory: 0, pods: 3 })).toEqual(["Too many pods"]);
  });

  it("FitError: each node's reasons counted, sorted, after the first failing filter (a tainted node is not also short of cpu)", () => {
    const nodes = [
      node("a", { cpu: "250m", memory: "8Gi" }),
      node("b", { cpu: "250m", memory: "32Mi" }),
      node("c", { cpu: "250m", memory: "8Gi" }, { taints: [{ key: "dedicated", value: "batch", effect: "NoSchedule" }] }),
    ];
    expect(fitError(pod("500m", "64Mi"), nodes)).toBe("0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: batch}, 2 Insufficient cpu.");
  });
});
