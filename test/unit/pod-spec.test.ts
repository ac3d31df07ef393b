/**
 * The Pod runtime's objects, built purely from an EngineSpec: names, labels,
 * annotations, restart policy, resources, the `restricted` security context,
 * the Service and the claim, and the refusal of ids whose Service name would
 * not fit. Also the mapping of a Pod's status back to what the controller sees.
 */
import { describe, expect, it } from "vitest";
import type { V1Pod } from "@kubernetes/client-node";
import type { EngineSpec } from "../../src/model/ports.js";
import { RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { claimManifest, GAME_STATE_PATH, podManifest, serviceManifest, type PodManifestSettings } from "../../src/runtime/kubernetes/manifests.js";
import { MAX_POD_GAME_ID, POD_ANNOTATIONS } from "../../src/runtime/kubernetes/names.js";
import { observedFromPod, podPhase } from "../../src/runtime/kubernetes/observed.js";
import { trimPod, type CachedPod } from "../../src/runtime/kubernetes/podCache.js";
import { parsePodTemplate } from "../../src/runtime/kubernetes/podTemplate.js";

const spec = (over: Partial<EngineSpec> = {}): EngineSpec => ({
  gameId: "g-1",
  name: "galaxy-game-g-1",
  imageRef: "registry.example/galaxy/engine:1.4.2",
  generation: 7,
  restartToken: "restart: 2026-01-01T00:00:00Z by ops",
  configHash: "0123456789abcdef",
  env: { MODE: "ranked" },
  statePath: "pvc://games/galaxy-game-g-1-state",
  resources: { cpus: 1.5, memoryBytes: 512 * 1024 * 1024, pidsLimit: 512 },
  restartPolicy: "on-failure",
  ...over,
});
const settings: PodManifestSettings = {
  instance: "rtm-a",
  imagePullPolicy: "if_not_present",
  terminationGraceSeconds: 30,
  template: {},
  readiness: { periodSeconds: 15, timeoutSeconds: 2, failureThreshold: 3 },
};
const at = { namespace: "games", owner: null };

describe("the game Pod", () => {
  it("is named galaxy-game-{id} in the namespace, labelled for selection and comparison, with free text in annotations", () => {
    const pod = podManifest(spec(), at, settings);
    expect(pod.metadata).toMatchObject({ name: "galaxy-game-g-1", namespace: "games" });
    expect(pod.metadata?.labels).toMatchObject({
      "rtmanager.galaxy.io/managed": "true",
      "rtmanager.galaxy.io/instance": "rtm-a",
      "rtmanager.galaxy.io/game-id": "g-1",
      "rtmanager.galaxy.io/generation": "7",
      "rtmanager.galaxy.io/config-hash": "0123456789abcdef",
    });
    // A restart token with spaces and colons is no valid label value: it rides as an annotation, with the image ref.
    expect(pod.metadata?.annotations).toEqual({
      "rtmanager.galaxy.io/image-ref": "registry.example/galaxy/engine:1.4.2",
      "rtmanager.galaxy.io/restart-token": "restart: 2026-01-01T00:00:00Z by ops",
      "cluster-autoscaler.kubernetes.io/safe-to-evict": "false",
    });
    for (const v of Object.values(pod.metadata?.labels ?? {})) expect(v).toMatch(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/);
    expect(pod.metadata?.ownerReferences).toBeUndefined();
    expect(podManifest(spec({ restartToken: null }), at, settings).metadata?.annotations).not.toHaveProperty("rtmanager.galaxy.io/restart-token");
  });

  it("maps the restart policy: on-failure -> OnFailure, always -> Always, never -> Never", () => {
    expect(podManifest(spec({ restartPolicy: "on-failure" }), at, settings).spec?.restartPolicy).toBe("OnFailure");
    expect(podManifest(spec({ restartPolicy: "always" }), at, settings).spec?.restartPolicy).toBe("Always");
    expect(podManifest(spec({ restartPolicy: "never" }), at, settings).spec?.restartPolicy).toBe("Never");
  });

  it("runs one container with the image, GAME_ID and GAME_STATE_PATH, the claim at the state path, requests equal to limits, and readiness (no liveness) on /healthz:8080", () => {
    const pod = podManifest(spec(), at, settings);
    const [c] = pod.spec!.containers;
    expect(pod.spec!.containers).toHaveLength(1);
    expect(c).toMatchObject({ name: "engine", image: "registry.example/galaxy/engine:1.4.2", imagePullPolicy: "IfNotPresent", ports: [{ containerPort: 8080, name: "http" }] });
    expect(Object.fromEntries((c!.env ?? []).map((e) => [e.name, e.value]))).toEqual({ MODE: "ranked", GAME_ID: "g-1", GAME_STATE_PATH });
    expect(c!.volumeMounts).toEqual([{ name: "state", mountPath: "/var/lib/galaxy-game" }]);
    expect(pod.spec!.volumes).toEqual([{ name: "state", persistentVolumeClaim: { claimName: "galaxy-game-g-1-state" } }]);
    expect(c!.resources).toEqual({ requests: { cpu: "1500m", memory: "536870912" }, limits: { cpu: "1500m", memory: "536870912" } });
    // No pids limit field exists on a container: the node's podPidsLimit applies (see docs/kubernetes.md).
    expect(JSON.stringify(pod)).not.toMatch(/pids/i);
    const probe = { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 15, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1 };
    expect(c!.readinessProbe).toEqual(probe);
    expect(c!.livenessProbe).toBeUndefined();
    expect(pod.spec).toMatchObject({ terminationGracePeriodSeconds: 30, enableServiceLinks: false, automountServiceAccountToken: false });
  });

  it("passes the restricted Pod Security level: non-root, no privilege escalation, every capability dropped, RuntimeDefault seccomp, no host namespaces or paths", () => {
    const pod = podManifest(spec(), at, settings);
    expect(pod.spec!.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.spec!.securityContext!.runAsUser).toBeGreaterThan(0);
    expect(pod.spec!.containers[0]!.securityContext).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.spec).not.toHaveProperty("hostNetwork");
    expect(pod.spec).not.toHaveProperty("hostPID");
    expect(JSON.stringify(pod.spec!.volumes)).not.toContain("hostPath");
  });

  it("takes the operator's scheduling settings from the template file, and refuses any other key", () => {
    const template = parsePodTemplate(
      "nodeSelector: {pool: games}\ntolerations: [{key: dedicated, operator: Equal, value: games, effect: NoSchedule}]\npriorityClassName: game\nserviceAccountName: engine\nimagePullSecrets: [regcred]\n",
      "file",
    );
    const pod = podManifest(spec(), at, { ...settings, template });
    expect(pod.spec).toMatchObject({
      nodeSelector: { pool: "games" },
      tolerations: [{ key: "dedicated", operator: "Equal", value: "games", effect: "NoSchedule" }],
      priorityClassName: "game",
      serviceAccountName: "engine",
      imagePullSecrets: [{ name: "regcred" }],
    });
    expect(() => parsePodTemplate('{"hostNetwork": true}', "file")).toThrow(/hostNetwork/);
    expect(() => parsePodTemplate('{"securityContext": {}}', "file")).toThrow(/securityContext/);
  });

  it("is owned by its GameRuntime when the source is Kubernetes", () => {
    const owner = { apiVersion: "galaxy.io/v1alpha1", kind: "GameRuntime", name: "g-1", uid: "u-1", controller: true };
    expect(podManifest(spec(), { namespace: "team-a", owner }, settings).metadata).toMatchObject({ namespace: "team-a", ownerReferences: [owner] });
    expect(serviceManifest("g-1", { namespace: "team-a", owner }, "rtm-a").metadata?.ownerReferences).toEqual([owner]);
    // The claim is the game's state: never owned, so deleting the GameRuntime keeps it.
    expect(claimManifest("g-1", { namespace: "team-a", owner }, "rtm-a", { storageClass: "", size: "1Gi" }).metadata?.ownerReferences).toBeUndefined();
  });
});

describe("Service and claim", () => {
  it("a ClusterIP Service galaxy-game-{id} selects exactly this installation's Pod of the game on 8080", () => {
    const svc = serviceManifest("g-1", at, "rtm-a");
    expect(svc.metadata).toMatchObject({ name: "galaxy-game-g-1", namespace: "games" });
    expect(svc.spec).toEqual({
      type: "ClusterIP",
      selector: { "rtmanager.galaxy.io/managed": "true", "rtmanager.galaxy.io/instance": "rtm-a", "rtmanager.galaxy.io/game-id": "g-1" },
      ports: [{ name: "http", port: 8080, targetPort: 8080, protocol: "TCP" }],
    });
    const pod = podManifest(spec(), at, settings);
    for (const [k, v] of Object.entries(svc.spec!.selector!)) expect(pod.metadata!.labels![k]).toBe(v);
  });

  it("the claim galaxy-game-{id}-state asks for the configured size and class (none: the cluster default)", () => {
    expect(claimManifest("g-1", at, "rtm-a", { storageClass: "fast", size: "5Gi" }).spec).toEqual({
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: "5Gi" } },
      storageClassName: "fast",
    });
    expect(claimManifest("g-1", at, "rtm-a", { storageClass: "", size: "1Gi" }).spec).not.toHaveProperty("storageClassName");
  });
});

describe("long game ids", () => {
  it(`accepts ids up to ${MAX_POD_GAME_ID} characters (a 63-character Service name) and refuses longer ones as config_refused`, () => {
    expect(MAX_POD_GAME_ID).toBe(51);
    const fits = "a".repeat(51);
    expect(serviceManifest(fits, at, "rtm-a").metadata?.name).toHaveLength(63);
    expect(podManifest(spec({ gameId: fits }), at, settings).metadata?.name).toBe(`galaxy-game-${fits}`);
    const long = "a".repeat(52);
    let err: unknown;
    try {
      podManifest(spec({ gameId: long }), at, settings);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect(err).toMatchObject({ kind: "config_refused", operation: "create" });
    expect((err as Error).message).toMatch(/at most 51 characters/);
    expect(() => serviceManifest(long, at, "rtm-a")).toThrow(RuntimeFailure);
  });
});

describe("a Pod's status as the controller sees it", () => {
  const pod = (status: V1Pod["status"], extra: Partial<V1Pod["metadata"]> = {}): V1Pod => ({
    ...podManifest(spec(), at, settings),
    metadata: { ...podManifest(spec(), at, settings).metadata, uid: "uid-1", creationTimestamp: new Date("2026-01-01T00:00:00Z"), ...extra },
    status,
  });
  const cs = (state: object, more: object = {}) => ({ name: "engine", image: "registry.example/galaxy/engine:1.4.2", imageID: "", ready: false, restartCount: 0, state, ...more });

  it("running and ready: the kubelet's container id (scheme stripped), restart count, readiness", () => {
    const p = pod({
      phase: "Running",
      podIP: "10.0.0.7",
      conditions: [{ type: "Ready", status: "True" }],
      containerStatuses: [cs({ running: { startedAt: new Date() } }, { ready: true, restartCount: 2, containerID: "containerd://abc123" })],
    });
    expect(observedFromPod(p, "rtm-a")).toMatchObject({ id: "abc123", phase: "running", ready: true, restartCount: 2, generation: 7, imageRef: "registry.example/galaxy/engine:1.4.2", networkAddresses: { games: "10.0.0.7" } });
    expect(observedFromPod(p, "other-installation")).toBeNull();
  });

  it("pending before the first container: `pod:<uid>`; a failed pull is pending with the runtime's reason; a crash loop is the kubelet restarting it", () => {
    expect(observedFromPod(pod({ phase: "Pending" }), "rtm-a")).toMatchObject({ id: "pod:uid-1", phase: "pending", ready: false });
    const pullBackOff = pod({ phase: "Pending", containerStatuses: [cs({ waiting: { reason: "ImagePullBackOff", message: "Back-off pulling image" } })] });
    expect(podPhase(pullBackOff)).toBe("pending");
    expect(observedFromPod(pullBackOff, "rtm-a")?.problem).toEqual({ kind: "pull_failed", reason: "ImagePullBackOff", message: "Back-off pulling image", final: false });
    // The kubelet restarting a crashed engine is the runtime's own restart: running, as far as the controller acts.
    expect(podPhase(pod({ phase: "Running", containerStatuses: [cs({ waiting: { reason: "CrashLoopBackOff" } }, { restartCount: 3 })] }))).toBe("running");
    expect(podPhase(pod({ phase: "Running" }, { deletionTimestamp: new Date() }))).toBe("exited");
  });

  it("a Pod deleted on a lost node (taint-based eviction) keeps the kubelet's last word: nobody can confirm its engine stopped", () => {
    const running = { phase: "Running", conditions: [{ type: "Ready", status: "False" }], containerStatuses: [cs({ running: { startedAt: new Date() } }, { containerID: "containerd://abc123" })] };
    const evicted = { ...pod(running, { deletionTimestamp: new Date() }), spec: { ...pod(running).spec!, nodeName: "n1" } };
    const lost = { node: "n1", reason: "NodeStatusUnknown", since: new Date(0) };
    expect(observedFromPod(evicted, "rtm-a", () => lost)).toMatchObject({ phase: "running", lostPlacement: lost });
    expect(observedFromPod(evicted, "rtm-a", () => null)?.phase).toBe("exited");
  });

  it("the restart policy the Pod was created with, as the declaration spells it (defaulted Always when absent)", () => {
    const p = pod({ phase: "Running" });
    expect(observedFromPod(p, "rtm-a")?.restartPolicy).toBe("on-failure");
    expect(observedFromPod({ ...p, spec: { ...p.spec!, restartPolicy: "Never" } }, "rtm-a")?.restartPolicy).toBe("never");
    expect(observedFromPod({ ...p, spec: { ...p.spec!, restartPolicy: undefined } }, "rtm-a")?.restartPolicy).toBe("always");
  });

  it("not ready while the container an in-place patch replaced still runs, whatever image it reports", () => {
    const patched = (containerID: string) =>
      pod(
        { phase: "Running", conditions: [{ type: "Ready", status: "True" }], containerStatuses: [cs({ running: { startedAt: new Date() } }, { ready: true, containerID })] },
        { annotations: { ...podManifest(spec(), at, settings).metadata!.annotations, [POD_ANNOTATIONS.replacedContainer]: "old1" } },
      );
    expect(observedFromPod(patched("containerd://old1"), "rtm-a")).toMatchObject({ phase: "running", restarting: true, ready: false });
    expect(observedFromPod(patched("containerd://new2"), "rtm-a")).toMatchObject({ phase: "running", restarting: false, ready: true });
  });

  /** The image as containerd's CRI reports it: the image's first repo tag, registry-qualified; imageID its first repo digest. */
  describe("runs the wanted image whatever name the runtime reports", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    const running = (specImage: string, reported: { image: string; imageID: string }) => {
      const p = pod({ phase: "Running", conditions: [{ type: "Ready", status: "True" }], containerStatuses: [cs({ running: { startedAt: new Date() } }, { ready: true, containerID: "containerd://c1", ...reported })] });
      p.spec!.containers[0]!.image = specImage;
      return observedFromPod(p, "rtm-a");
    };
    it.each([
      ["a digest-pinned ref", `registry.example/galaxy/engine:1.4.2@${digest}`, { image: "registry.example/galaxy/engine:1.4.2", imageID: `registry.example/galaxy/engine@${digest}` }],
      ["an alias tag (the image's first tag is another)", "galaxy/engine:1.4.9", { image: "docker.io/galaxy/engine:1.4.2", imageID: `docker.io/galaxy/engine@${digest}` }],
      ["a short name, reported registry-qualified", "engine:1.4.2", { image: "docker.io/library/engine:1.4.2", imageID: "sha256:" + "b".repeat(64) }],
      ["a ref reported by image id only", "galaxy/engine:1.4.2", { image: "sha256:" + "b".repeat(64), imageID: "sha256:" + "b".repeat(64) }],
    ])("%s", (_what, specImage, reported) => {
      expect(running(specImage, reported)).toMatchObject({ phase: "running", restarting: false, ready: true });
    });
    it("a pinned digest the runtime reports otherwise is not the wanted image", () => {
      const other = `sha256:${"c".repeat(64)}`;
      expect(running(`registry.example/galaxy/engine:1.4.2@${digest}`, { image: "registry.example/galaxy/engine:1.4.2", imageID: `registry.example/galaxy/engine@${other}` })).toMatchObject({ phase: "running", restarting: true, ready: false });
    });
  });

  it("says why the engine cannot run: a Failed Pod (final), a container the kubelet cannot create, a Pod no node fits (kept through the cache's trim)", () => {
    const rejected = pod({ phase: "Failed", reason: "OutOfcpu", message: "Pod was rejected: Node didn't have enough resource: cpu" });
    expect(observedFromPod(rejected, "rtm-a")?.problem).toEqual({ kind: "start_failed", reason: "OutOfcpu", message: "Pod was rejected: Node didn't have enough resource: cpu", final: true });
    const config = pod({ phase: "Pending", containerStatuses: [cs({ waiting: { reason: "CreateContainerConfigError", message: 'secret "x" not found' } })] });
    expect(observedFromPod(config, "rtm-a")).toMatchObject({ phase: "pending", problem: { kind: "start_failed", reason: "CreateContainerConfigError", final: false } });
    const unschedulable = pod({ phase: "Pending", conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient cpu." }] });
    expect(observedFromPod(trimPod(unschedulable as CachedPod) as V1Pod, "rtm-a")?.problem).toEqual({ kind: "refused_for_now", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient cpu.", final: false });
    expect(observedFromPod(pod({ phase: "Running" }), "rtm-a")?.problem).toBeNull();
  });

  it("counts only the restarts the engine caused: each in-place swap raises the baseline the patch records", () => {
    const p = pod(
      { phase: "Running", containerStatuses: [cs({ running: { startedAt: new Date() } }, { restartCount: 4, containerID: "containerd://c5" })] },
      { annotations: { ...podManifest(spec(), at, settings).metadata!.annotations, [POD_ANNOTATIONS.restartBaseline]: "3" } },
    );
    expect(observedFromPod(p, "rtm-a")?.restartCount).toBe(1);
  });
});
