/**
 * The CRI test kubelet's pure translations: a Pod's resources and security
 * context into the CRI LinuxContainerConfig (as kuberuntime and
 * security_context.go build it), and the CRI log file format into what
 * pods/log serves (as kuberuntime/logs ReadLogs reads it).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { criLogStream } from "../k8s/cri/logs.js";
import { linuxContainerConfig, linuxResources, quantity, sandboxSecurityContext } from "../k8s/cri/podConfig.js";
import type { ContainerSpec, PodSpec } from "../k8s/kubelet/types.js";

const engine = (over: Partial<ContainerSpec> = {}): ContainerSpec => ({ name: "engine", image: "galaxy/test-engine:1.0.0", ...over });

describe("Pod spec to CRI LinuxContainerConfig", () => {
  it("parses quantities as resource.Quantity does", () => {
    expect(quantity("500m")).toBe(0.5);
    expect(quantity("2")).toBe(2);
    expect(quantity("64Mi")).toBe(64 * 2 ** 20);
    expect(quantity("67108864")).toBe(67108864);
    expect(quantity("1G")).toBe(1e9);
    expect(quantity("lots")).toBeNaN();
  });

  it("Guaranteed limits become shares, quota over a 100 ms period, the memory limit and OOM score -997", () => {
    const r = linuxResources(engine({ resources: { requests: { cpu: "500m", memory: "64Mi" }, limits: { cpu: "500m", memory: "64Mi" } } }));
    expect(r).toEqual({ cpuShares: 512, cpuPeriod: 100_000, cpuQuota: 50_000, memoryLimitInBytes: 64 * 2 ** 20, oomScoreAdj: -997 });
  });

  it("no resources is BestEffort (shares 2, OOM score 1000); requests without limits are Burstable", () => {
    expect(linuxResources(engine())).toEqual({ cpuShares: 2, oomScoreAdj: 1000 });
    const burstable = linuxResources(engine({ resources: { requests: { memory: "1Gi", cpu: "100m" } } }));
    expect(burstable).toMatchObject({ cpuShares: 102, oomScoreAdj: 875 });
    expect(burstable.memoryLimitInBytes).toBeUndefined();
  });

  it("merges the container's security context over the pod's; fsGroup joins the supplemental groups; only allowPrivilegeEscalation=false sets no_new_privs", () => {
    const pod: PodSpec = {
      containers: [],
      securityContext: { runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, supplementalGroups: [5], seccompProfile: { type: "RuntimeDefault" } },
    };
    const c = engine({ securityContext: { runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] } } });
    expect(linuxContainerConfig(pod, c).securityContext).toEqual({
      seccomp: { profileType: "RuntimeDefault" },
      runAsUser: { value: 1000 },
      runAsGroup: { value: 65532 },
      supplementalGroups: [5, 65532],
      capabilities: { addCapabilities: ["NET_BIND_SERVICE"], dropCapabilities: ["ALL"] },
      noNewPrivs: true,
    });
    expect(linuxContainerConfig({ containers: [] }, engine()).securityContext).toEqual({ seccomp: { profileType: "Unconfined" } });
    expect(sandboxSecurityContext(pod)).toEqual({ runAsUser: { value: 65532 }, runAsGroup: { value: 65532 }, supplementalGroups: [5, 65532], seccomp: { profileType: "RuntimeDefault" } });
  });

  it("refuses runAsNonRoot with runAsUser 0 before anything is created (verifyRunAsNonRoot)", () => {
    const pod: PodSpec = { containers: [], securityContext: { runAsNonRoot: true, runAsUser: 0 } };
    expect(() => linuxContainerConfig(pod, engine())).toThrow(/breaks non-root policy/);
  });
});

describe("CRI log file to pods/log", () => {
  const read = async (content: string, options: { tailLines?: number; timestamps?: boolean }) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "cri-log-"));
    const file = path.join(dir, "0.log");
    await fs.writeFile(file, content);
    const stream = await criLogStream(file, { follow: false, timestamps: options.timestamps ?? false, ...(options.tailLines !== undefined ? { tailLines: options.tailLines } : {}) }, async () => false);
    let out = "";
    for await (const c of stream) out += (c as Buffer).toString();
    await fs.rm(dir, { recursive: true });
    return out;
  };
  const file = [
    "2026-12-07T10:00:00.000000001Z stdout F engine 1.0.0 starting",
    "2026-12-07T10:00:01.000000001Z stderr P a long ",
    "2026-12-07T10:00:01.000000002Z stderr F line",
    "2026-12-07T10:00:02.000000001Z stdout F last",
    "2026-12-07T10:00:03.000000001Z stdout F not yet whole",
  ].join("\n");

  it("joins partial lines, keeps stdout and stderr in order, and leaves an unfinished last line for later", async () => {
    expect(await read(file, {})).toBe("engine 1.0.0 starting\na long line\nlast\n");
  });

  it("tailLines counts whole lines; timestamps prefix each line with the runtime's time", async () => {
    expect(await read(`${file}\n`, { tailLines: 2 })).toBe("last\nnot yet whole\n");
    expect(await read(`${file}\n`, { tailLines: 1, timestamps: true })).toBe("2026-12-07T10:00:03.000000001Z not yet whole\n");
  });
});
