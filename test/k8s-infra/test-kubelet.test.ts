/**
 * The test kubelet against the test API server, driven through
 * @kubernetes/client-node's CoreV1Api as a controller would: pods run through
 * containerd's CRI (the cluster's own containerd, pods on its private CNI
 * bridge) as containers of the test engine (test/engine), report status as
 * the kubelet does, restart, change image in place, fail pulls for real, and
 * survive or die with their node. What a container is (ids, image and
 * imageID, exit codes and reasons, the pod IP, uid/capabilities/seccomp and
 * cgroup limits) is containerd's answer. See test/k8s/README.md.
 */
import { CoreV1Api, PatchStrategy, Watch, setHeaderOptions, type V1Pod } from "@kubernetes/client-node";
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTestImages, TEST_IMAGES } from "../helpers/docker.js";
import { ALIAS_IMAGE } from "../k8s/cri/containerd.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { TestCluster } from "../k8s/kubelet/cluster.js";
import type { CriRuntime } from "../k8s/kubelet/criRuntime.js";
import { RUN_LABEL } from "../k8s/kubelet/types.js";
import { enginePod, until } from "./helpers.js";

const NS = "games";
const MISSING_IMAGE = "galaxy/test-engine:9.9.9-never-built";

let server: FakeApiServer;
let cluster: TestCluster;
let cri: CriRuntime;
let core: CoreV1Api;

const strategic = () => setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch);
const read = (name: string) => core.readNamespacedPod({ name, namespace: NS });
const engine = (p: V1Pod) => p.status?.containerStatuses?.find((c) => c.name === "engine");
const ready = (p: V1Pod) => p.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";

async function runningReady(name: string): Promise<V1Pod> {
  return until(`${name} Running and Ready`, async () => {
    const p = await read(name);
    return p.status?.phase === "Running" && ready(p) ? p : undefined;
  });
}

/** GET from the pod at its pod IP on the cluster's bridge (TestCluster.address). */
function httpGet(pod: V1Pod, urlPath: string): Promise<{ status: number; body: string }> {
  const at = TestCluster.address(pod);
  if (!at) return Promise.reject(new Error(`pod ${pod.metadata?.name} has no address`));
  return new Promise((resolve, reject) => {
    http
      .get({ host: at.host, port: at.port, path: urlPath, agent: false, timeout: 2000 }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

/** Running, as containerd says (ContainerStatus). */
async function containerExists(id: string): Promise<boolean> {
  try {
    return (await cri.client.containerStatus(id)).status.state === "CONTAINER_RUNNING";
  } catch {
    return false;
  }
}

const criId = (p: V1Pod) => engine(p)?.containerID?.replace("containerd://", "") ?? "";
const exec = async (p: V1Pod, script: string) => (await cri.exec(criId(p), ["/bin/sh", "-c", script])).stdout;

beforeAll(async () => {
  await ensureTestImages();
  server = await FakeApiServer.start();
  cluster = await TestCluster.start(server, { mode: "cri", nodes: 3, backoffBaseMs: 1000, backoffCapMs: 8000 });
  cri = cluster.cri!;
  core = fakeKubeConfig(server.url).makeApiClient(CoreV1Api);
}, 240_000);

afterAll(async () => {
  const socket = cri?.containerd.socket;
  await cluster?.stop();
  await server?.stop();
  // stop() removed every sandbox of this run and stopped the cluster's containerd: its socket and state are gone.
  if (socket) await expect(fs.access(socket)).rejects.toThrow();
});

describe("test kubelet (containerd CRI)", () => {
  it("admits against the node's allocatable CPU (kubelet canAdmitPod): a pod that does not fit is Failed, reason OutOfcpu, and no container runs", async () => {
    for (const k of cluster.kubelets.values()) k.setAllocatableCpu(2000);
    const pod = enginePod("too-big", TEST_IMAGES.v100);
    pod.spec!.containers[0]!.resources = { requests: { cpu: "3" }, limits: { cpu: "3" } };
    await core.createNamespacedPod({ namespace: NS, body: pod });
    const failed = await until("rejected", async () => {
      const p = await read("too-big");
      return p.status?.phase === "Failed" ? p : undefined;
    });
    expect(failed.status).toMatchObject({ phase: "Failed", reason: "OutOfcpu" });
    expect(failed.status?.message).toMatch(/^Pod was rejected: Node didn't have enough resource: cpu, requested: 3000, used: \d+, capacity: 2000$/);
    expect(failed.status?.containerStatuses ?? []).toEqual([]);
    // Finished: deleted at once, with no kubelet to confirm it.
    await core.deleteNamespacedPod({ name: "too-big", namespace: NS });
    await until("gone", async () => !(await core.listNamespacedPod({ namespace: NS })).items.some((p) => p.metadata?.name === "too-big"));
    for (const k of cluster.kubelets.values()) k.setAllocatableCpu(Infinity);
  });

  it("registers Ready nodes and runs a pod through CRI: Running, Ready from /healthz, reachable at its pod IP on the bridge, watchable", async () => {
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => n.metadata?.name).sort()).toEqual(["node-0", "node-1", "node-2"]);
    expect(nodes.items.every((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))).toBe(true);

    const seen: { type: string; phase?: string; ready: boolean }[] = [];
    const list = await core.listNamespacedPod({ namespace: NS });
    const abort = await new Watch(fakeKubeConfig(server.url)).watch(
      `/api/v1/namespaces/${NS}/pods`,
      { resourceVersion: list.metadata?.resourceVersion, labelSelector: "app=engine,case=first" },
      (type, obj: V1Pod) => seen.push({ type, phase: obj.status?.phase, ready: ready(obj) }),
      () => undefined,
    );
    await core.createNamespacedPod({ namespace: NS, body: enginePod("first", TEST_IMAGES.v100, { labels: { case: "first" } }) });
    const pod = await runningReady("first");
    abort.abort();

    expect(pod.spec?.nodeName).toMatch(/^node-\d$/);
    const subnet = cri.containerd.subnet.replace(/0\/24$/, "");
    expect(pod.status?.podIP?.startsWith(subnet)).toBe(true);
    expect(pod.status?.podIPs).toEqual([{ ip: pod.status?.podIP }]);
    expect(pod.status?.conditions?.find((c) => c.type === "PodScheduled")?.status).toBe("True");
    const status = engine(pod)!;
    expect(status.state?.running?.startedAt).toBeDefined();
    // containerd names the image fully qualified and gives the image id as imageID (no repo digest was pulled).
    expect(status).toMatchObject({ ready: true, started: true, restartCount: 0, image: `docker.io/${TEST_IMAGES.v100}` });
    expect(status.imageID).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(status.containerID).toMatch(/^containerd:\/\/[0-9a-f]{64}$/);
    const [listed] = (await cri.client.listContainers({ [RUN_LABEL]: cluster.runId })).filter((c) => c.id === criId(pod));
    expect(listed?.labels).toMatchObject({ "io.kubernetes.pod.name": "first", "io.kubernetes.container.name": "engine" });
    expect(TestCluster.hostPort(pod)).toBeUndefined();
    expect((await httpGet(pod, "/version")).body.trim()).toBe("1.0.0");
    expect((await server.get("nodes", "", pod.spec!.nodeName!))?.status).toMatchObject({ nodeInfo: { containerRuntimeVersion: expect.stringMatching(/^containerd:\/\/1\./) } });

    expect(seen[0]).toMatchObject({ type: "ADDED", phase: "Pending", ready: false });
    expect(seen.some((e) => e.type === "MODIFIED" && e.phase === "Running" && !e.ready)).toBe(true);
    expect(seen.at(-1)).toMatchObject({ type: "MODIFIED", phase: "Running", ready: true });

    const byNode = await core.listNamespacedPod({ namespace: NS, fieldSelector: `spec.nodeName=${pod.spec!.nodeName}` });
    expect(byNode.items.map((p) => p.metadata?.name)).toContain("first");
  });

  it("serves the container's output on pods/log with tailLines, limitBytes and follow", async () => {
    const all = await core.readNamespacedPodLog({ name: "first", namespace: NS });
    expect(all).toContain("engine 1.0.0 starting (healthy=true)");
    const limited = await core.readNamespacedPodLog({ name: "first", namespace: NS, limitBytes: 6 });
    expect(limited).toBe("engine");
    const tail = await core.readNamespacedPodLog({ name: "first", namespace: NS, tailLines: 1 });
    expect(tail.trim().split("\n")).toHaveLength(1);

    // follow: the stream stays open and carries what the container prints next (the SIGTERM message on deletion).
    const url = new URL(`/api/v1/namespaces/${NS}/pods/first/log?follow=true`, server.url);
    let followed = "";
    const ended = new Promise<void>((resolve) => {
      http.get(url, (res) => {
        res.on("data", (c: Buffer) => (followed += c.toString()));
        res.on("end", resolve);
      });
    });
    await until("the followed log to start", () => followed.includes("starting"));
    await core.deleteNamespacedPod({ name: "first", namespace: NS, gracePeriodSeconds: 5 });
    await ended;
    expect(followed).toContain("engine 1.0.0: signal received, stopping");
    await until("first to be gone", async () => !(await core.listNamespacedPod({ namespace: NS })).items.some((p) => p.metadata?.name === "first"));
  });

  it("restarts a container killed by its host PID: restartCount 1, lastState terminated 137, Running and Ready again", async () => {
    await core.createNamespacedPod({ namespace: NS, body: enginePod("crash", TEST_IMAGES.v100) });
    const before = await runningReady("crash");
    process.kill(await cri.pidOf(criId(before)), "SIGKILL");
    const after = await until("a restart", async () => {
      const p = await read("crash");
      return engine(p)?.restartCount === 1 && ready(p) ? p : undefined;
    });
    expect(after.status?.phase).toBe("Running");
    expect(criId(after)).not.toBe(criId(before));
    expect(after.status?.podIP).toBe(before.status?.podIP);
    expect(engine(after)?.lastState?.terminated).toMatchObject({ exitCode: 137, reason: "Error", containerID: engine(before)?.containerID });
    expect(await containerExists(criId(before))).toBe(false);
    expect(await containerExists(criId(after))).toBe(true);
  });

  it("applies an in-place image change (strategic merge keyed by container name); a missing image fails as ErrImagePull, then ImagePullBackOff", async () => {
    const before = await read("crash");
    await core.patchNamespacedPod({ name: "crash", namespace: NS, body: { spec: { containers: [{ name: "engine", image: TEST_IMAGES.v101 }] } } }, strategic());
    const patched = await until("the new image running", async () => {
      const p = await read("crash");
      return engine(p)?.image === `docker.io/${TEST_IMAGES.v101}` && ready(p) ? p : undefined;
    });
    expect(criId(patched)).not.toBe(criId(before));
    expect(engine(patched)?.restartCount).toBe(2);
    expect(patched.spec?.containers[0]?.ports?.[0]?.containerPort).toBe(8080);
    expect((await httpGet(patched, "/version")).body.trim()).toBe("1.0.1");
    expect(await containerExists(criId(before))).toBe(false);

    await expect(core.patchNamespacedPod({ name: "crash", namespace: NS, body: { spec: { restartPolicy: "Never" } } }, strategic())).rejects.toMatchObject({ code: 422 });

    await core.patchNamespacedPod({ name: "crash", namespace: NS, body: { spec: { containers: [{ name: "engine", image: MISSING_IMAGE }] } } }, strategic());
    const reasons = new Set<string>();
    await until("ImagePullBackOff after ErrImagePull", async () => {
      const s = engine(await read("crash"));
      const reason = s?.state?.waiting?.reason;
      if (reason) reasons.add(reason);
      return reasons.has("ErrImagePull") && reasons.has("ImagePullBackOff");
    });
    const failing = await read("crash");
    expect(ready(failing)).toBe(false);
    expect(engine(failing)?.lastState?.terminated?.containerID).toBe(engine(patched)?.containerID);
    expect(await containerExists(criId(patched))).toBe(false);
    // The pull was attempted for real: containerd's resolver answers, from the loopback address that stands for docker.io.
    const pulled = await until("the pull error", async () => {
      const w = engine(await read("crash"))?.state?.waiting;
      return w?.reason === "ErrImagePull" ? w : undefined;
    });
    expect(pulled.message).toMatch(/failed to (pull and unpack image|resolve reference) "docker\.io\/galaxy\/test-engine:9\.9\.9-never-built"/);
    await core.deleteNamespacedPod({ name: "crash", namespace: NS, gracePeriodSeconds: 0 });
  });

  it("backs off a container that cannot start (CrashLoopBackOff) and honours restartPolicy Never and OnFailure", async () => {
    await core.createNamespacedPod({ namespace: NS, body: enginePod("broken", TEST_IMAGES.brokenStart) });
    await core.createNamespacedPod({ namespace: NS, body: enginePod("fails", TEST_IMAGES.v100, { restartPolicy: "Never", env: { ENGINE_EXIT_AFTER: "0", ENGINE_EXIT_CODE: "3" } }) });
    await core.createNamespacedPod({ namespace: NS, body: enginePod("done", TEST_IMAGES.v100, { restartPolicy: "OnFailure", env: { ENGINE_EXIT_AFTER: "0", ENGINE_EXIT_CODE: "0" } }) });

    const looping = await until("CrashLoopBackOff with restarts", async () => {
      const p = await read("broken");
      const s = engine(p);
      return s?.state?.waiting?.reason === "CrashLoopBackOff" && (s.restartCount ?? 0) >= 2 ? p : undefined;
    });
    expect(looping.status?.phase).toBe("Running");
    expect(engine(looping)?.lastState?.terminated).toMatchObject({ exitCode: 128, reason: "StartError" });

    const failed = await until("fails Failed", async () => ((await read("fails")).status?.phase === "Failed" ? read("fails") : undefined));
    expect(engine(failed)?.state?.terminated).toMatchObject({ exitCode: 3, reason: "Error" });
    expect(engine(failed)?.restartCount).toBe(0);
    const done = await until("done Succeeded", async () => ((await read("done")).status?.phase === "Succeeded" ? read("done") : undefined));
    expect(engine(done)?.state?.terminated).toMatchObject({ exitCode: 0, reason: "Completed" });
    expect(done.status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "PodCompleted" });
    for (const name of ["broken", "fails", "done"]) await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 });
  });

  it("restarts a container whose liveness probe fails; an engine without /healthz never becomes Ready", async () => {
    await core.createNamespacedPod({ namespace: NS, body: enginePod("sick", TEST_IMAGES.unhealthy, { liveness: true, grace: 1 }) });
    const p = await until("a liveness restart", async () => {
      const pod = await read("sick");
      return (engine(pod)?.restartCount ?? 0) >= 1 ? pod : undefined;
    });
    expect(ready(p)).toBe(false);
    expect(p.status?.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "ContainersNotReady" });
    await core.deleteNamespacedPod({ name: "sick", namespace: NS, gracePeriodSeconds: 0 });
  });

  it("binds a PersistentVolumeClaim and mounts it as a host directory that outlives the container", async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: { metadata: { name: "state-a" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
    });
    await core.createNamespacedPod({ namespace: NS, body: enginePod("stateful", TEST_IMAGES.v100, { claim: "state-a" }) });
    const pod = await runningReady("stateful");
    expect((await core.readNamespacedPersistentVolumeClaim({ name: "state-a", namespace: NS })).status?.phase).toBe("Bound");
    const boots = path.join(cluster.dataRoot, "pvc", NS, "state-a", "boots.log");
    expect(await fs.readFile(boots, "utf8")).toMatch(/^boot version=1.0.0/);
    process.kill(await cri.pidOf(criId(pod)), "SIGKILL");
    await until("a second boot on the same volume", async () => (await fs.readFile(boots, "utf8")).trim().split("\n").length === 2);
    await core.deleteNamespacedPod({ name: "stateful", namespace: NS, gracePeriodSeconds: 0 });
  });

  it("a partitioned node goes NotReady and its pod's Ready condition False (phase kept) while the container runs; the out-of-service taint kills it and the pod goes", async () => {
    await core.createNamespacedPod({ namespace: NS, body: enginePod("island", TEST_IMAGES.v100) });
    const pod = await runningReady("island");
    const node = pod.spec!.nodeName!;
    cluster.partition(node);

    const nodeObj = await core.readNode({ name: node });
    expect(nodeObj.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("Unknown");
    expect(nodeObj.spec?.taints?.map((t) => `${t.key}:${t.effect}`)).toContain("node.kubernetes.io/unreachable:NoExecute");
    // As MarkPodsNotReady leaves it: only Ready flips; phase, ContainersReady and the container status are the kubelet's last word.
    const lost = await read("island");
    expect(lost.status?.phase).toBe("Running");
    expect(ready(lost)).toBe(false);
    expect(lost.status?.conditions?.find((c) => c.type === "ContainersReady")?.status).toBe("True");
    expect(lost.status?.containerStatuses?.[0]?.ready).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await containerExists(criId(pod))).toBe(true);
    expect((await read("island")).status?.phase).toBe("Running");

    await core.patchNode({ name: node, body: { spec: { taints: [...(nodeObj.spec?.taints ?? []), { key: "node.kubernetes.io/out-of-service", value: "nodeshutdown", effect: "NoExecute" }] } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    await until("the container killed", async () => !(await containerExists(criId(pod))));
    await until("the pod force-deleted", async () => !(await core.listNamespacedPod({ namespace: NS })).items.some((p) => p.metadata?.name === "island"));
    await core.deleteNode({ name: node });
  });
  it("enforces the Pod's security context and limits through containerd: uid/gid, fsGroup on the claim, no capabilities, no_new_privs, seccomp, cgroup limits", async () => {
    await core.createNamespacedPersistentVolumeClaim({
      namespace: NS,
      body: { metadata: { name: "state-secure" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
    });
    const body = enginePod("secure", TEST_IMAGES.v100, { claim: "state-secure" });
    body.spec!.securityContext = { runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } };
    Object.assign(body.spec!.containers[0]!, {
      securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
      resources: { requests: { cpu: "500m", memory: "64Mi" }, limits: { cpu: "500m", memory: "64Mi" } },
    });
    await core.createNamespacedPod({ namespace: NS, body });
    const pod = await runningReady("secure");
    expect(await exec(pod, "id")).toBe("uid=65532 gid=65532 groups=65532\n");
    const status = await exec(pod, "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status");
    expect(status).toContain("CapEff:\t0000000000000000");
    expect(status).toContain("CapBnd:\t0000000000000000");
    expect(status).toContain("NoNewPrivs:\t1");
    expect(status).toContain("Seccomp:\t2");
    expect((await exec(pod, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")).trim()).toBe(String(64 * 1024 * 1024));
    expect((await exec(pod, "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")).trim().split("\n")).toEqual(["50000", "100000"]);
    // fsGroup: the claim's directory is the group's and setgid, so the non-root engine wrote its boot line there.
    const dir = path.join(cluster.dataRoot, "pvc", NS, "state-secure");
    const st = await fs.stat(dir);
    expect({ gid: st.gid, setgid: (st.mode & 0o2000) !== 0 }).toEqual({ gid: 65532, setgid: true });
    expect((await fs.stat(path.join(dir, "boots.log"))).uid).toBe(65532);
    await core.deleteNamespacedPod({ name: "secure", namespace: NS, gracePeriodSeconds: 0 });
  });

  it("a container over its memory limit is OOMKilled (exit 137), as containerd reports it", async () => {
    const body = enginePod("hog", TEST_IMAGES.v100, { restartPolicy: "Never" });
    Object.assign(body.spec!.containers[0]!, {
      // Holds ~64 MiB in a shell variable against a 16 MiB limit.
      command: ["/bin/sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); sleep 30"],
      resources: { limits: { memory: "16Mi" } },
    });
    await core.createNamespacedPod({ namespace: NS, body });
    const failed = await until("hog Failed", async () => {
      const p = await read("hog");
      return p.status?.phase === "Failed" ? p : undefined;
    }, 40_000);
    expect(engine(failed)?.state?.terminated).toMatchObject({ exitCode: 137, reason: "OOMKilled" });
    await core.deleteNamespacedPod({ name: "hog", namespace: NS, gracePeriodSeconds: 0 });
  });

  it("reports image and imageID as containerd does: an alias tag and a digest-pinned ref both read as the image's first repo tag, with its repo digest", async () => {
    await core.createNamespacedPod({ namespace: NS, body: enginePod("plain", TEST_IMAGES.v101) });
    await core.createNamespacedPod({ namespace: NS, body: enginePod("alias", ALIAS_IMAGE) });
    await core.createNamespacedPod({ namespace: NS, body: enginePod("pinned", cri.containerd.digestRef) });
    const [plain, alias, pinned] = await Promise.all(["plain", "alias", "pinned"].map(runningReady));
    const digest = cri.containerd.digestRef.slice(cri.containerd.digestRef.indexOf("@") + 1);
    for (const p of [plain!, alias!, pinned!]) {
      expect(engine(p)).toMatchObject({ image: `docker.io/${TEST_IMAGES.v101}`, imageID: `docker.io/galaxy/test-engine@${digest}` });
      expect((await httpGet(p, "/version")).body.trim()).toBe("1.0.1");
    }
    // The spec keeps what was asked for; only the status is the runtime's.
    expect(alias!.spec?.containers[0]?.image).toBe(ALIAS_IMAGE);
    expect(pinned!.spec?.containers[0]?.image).toBe(cri.containerd.digestRef);
    for (const name of ["plain", "alias", "pinned"]) await core.deleteNamespacedPod({ name, namespace: NS, gracePeriodSeconds: 0 });
  });
});
