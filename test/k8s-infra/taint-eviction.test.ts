/**
 * The test control plane's taint-based eviction, on a hand-driven clock (no
 * kubelet, no wall clock): DefaultTolerationSeconds admission on pod create,
 * the taint eviction controller's timing (upstream pkg/controller/tainteviction
 * `processPodOnNode`, `getMinTolerationTime`), and the pod GC's
 * `gcTerminating` on an out-of-service node.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeApiServer, type Obj } from "../k8s/fakeApiServer.js";
import type { Clock } from "../k8s/kubelet/clock.js";
import { NodeController } from "../k8s/kubelet/nodeController.js";
import { TaintEvictionController, minTolerationMs } from "../k8s/kubelet/taintEviction.js";

/** A clock that moves only when the test says; timers due fire in order. */
function manualClock(): Clock & { advance(ms: number): void } {
  let t = 0;
  const timers: { at: number; fn: () => void; live: boolean }[] = [];
  return {
    now: () => t,
    setTimeout(fn, ms) {
      const entry = { at: t + ms, fn, live: true };
      timers.push(entry);
      return () => void (entry.live = false);
    },
    advance(ms) {
      t += ms;
      for (const e of timers.filter((x) => x.live && x.at <= t).sort((a, b) => a.at - b.at)) {
        e.live = false;
        e.fn();
      }
    },
  };
}

/** Lets the controllers' deferred handlers (setImmediate) run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

const NS = "games";
let api: FakeApiServer;
let clock: ReturnType<typeof manualClock>;
let eviction: TaintEvictionController;
let nodes: NodeController;
const poweredOff: string[] = [];

beforeEach(async () => {
  api = await FakeApiServer.start();
  clock = manualClock();
  eviction = new TaintEvictionController(api, clock);
  nodes = new NodeController(api, { podGc: true, powerOff: async (n) => void poweredOff.push(n) });
  poweredOff.splice(0);
  for (const name of ["n1", "n2"]) api.create("nodes", "", { metadata: { name }, spec: {} });
});

afterEach(async () => {
  eviction.stop();
  nodes.stop();
  await api.stop();
});

async function createPod(name: string, tolerations?: object[]): Promise<Obj> {
  const res = await fetch(`${api.url}/api/v1/namespaces/${NS}/pods`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ metadata: { name }, spec: { containers: [{ name: "engine", image: "galaxy/test-engine:1.0.0" }], ...(tolerations ? { tolerations } : {}) } }),
  });
  expect(res.status).toBe(201);
  api.bindPod(NS, name, "n1");
  await settle();
  return api.get("pods", NS, name)!;
}

function taint(node: string, key: string, effect = "NoExecute"): void {
  api.update("nodes", "", node, (o) => {
    const spec = o.spec as { taints?: object[] };
    spec.taints = [...(spec.taints ?? []), { key, effect }];
  });
}

function untaint(node: string): void {
  api.update("nodes", "", node, (o) => delete (o.spec as { taints?: object[] }).taints);
}

const pod = (name: string) => api.get("pods", NS, name);
const terminating = (name: string) => pod(name)?.metadata.deletionTimestamp !== undefined;

describe("DefaultTolerationSeconds admission", () => {
  it("adds not-ready and unreachable NoExecute tolerations of 300 s to a pod that has none", async () => {
    const p = await createPod("plain");
    expect((p.spec as { tolerations?: object[] }).tolerations).toEqual([
      { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
      { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
    ]);
  });

  it("keeps a pod's own toleration for a taint (and adds only the other); an empty key and effect tolerates both", async () => {
    const own = { key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 30 };
    expect(((await createPod("own", [own])).spec as { tolerations?: object[] }).tolerations).toEqual([
      own,
      { key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 },
    ]);
    expect(((await createPod("all", [{ operator: "Exists" }])).spec as { tolerations?: object[] }).tolerations).toEqual([{ operator: "Exists" }]);
  });
});

describe("the taint eviction controller", () => {
  it("getMinTolerationTime: the shortest seconds; none tolerate forever; zero or less at once", () => {
    expect(minTolerationMs([{ tolerationSeconds: 300 }, { tolerationSeconds: 30 }])).toBe(30_000);
    expect(minTolerationMs([{ key: "a", operator: "Exists" }])).toBe(-1);
    expect(minTolerationMs([{ tolerationSeconds: -5 }, { tolerationSeconds: 300 }])).toBe(0);
    expect(minTolerationMs([])).toBe(0);
  });

  it("evicts a pod of an unreachable node once its 300 s run out: DisruptionTarget, a graceful delete that leaves it Terminating, an Event", async () => {
    await createPod("game");
    taint("n1", "node.kubernetes.io/unreachable");
    await settle();
    clock.advance(299_000);
    await settle();
    expect(terminating("game")).toBe(false);
    expect(eviction.evictions).toEqual([]);

    clock.advance(1_000);
    await settle();
    const p = pod("game")!;
    expect(p.metadata.deletionTimestamp).toBeDefined();
    expect(p.metadata.deletionGracePeriodSeconds).toBe(30);
    expect((p.status as { conditions?: object[] }).conditions).toContainEqual(
      expect.objectContaining({ type: "DisruptionTarget", status: "True", reason: "DeletionByTaintManager", message: "Taint manager: deleting due to NoExecute taint" }),
    );
    expect(eviction.evictions).toEqual([{ pod: `${NS}/game`, scheduledAt: 0, evictedAt: 300_000 }]);
    expect(api.list("events", NS).map((e) => [(e as { reason?: string }).reason, (e as { message?: string }).message])).toEqual([["TaintManagerEviction", `Marking for deletion Pod ${NS}/game`]]);
  });

  it("evicts at once what does not tolerate a NoExecute taint, and after a pod's own shorter toleration", async () => {
    await createPod("short", [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 30 }]);
    await createPod("intolerant");
    taint("n1", "dedicated");
    await settle();
    expect(terminating("intolerant")).toBe(true);
    expect(terminating("short")).toBe(true);
    untaint("n1");
    await createPod("later", [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: 30 }]);
    taint("n1", "node.kubernetes.io/unreachable");
    await settle();
    clock.advance(29_000);
    await settle();
    expect(terminating("later")).toBe(false);
    clock.advance(1_000);
    await settle();
    expect(terminating("later")).toBe(true);
  });

  it("cancels a scheduled eviction when the taint goes (the node is back) before the toleration runs out", async () => {
    await createPod("kept");
    taint("n1", "node.kubernetes.io/unreachable");
    await settle();
    clock.advance(200_000);
    untaint("n1");
    await settle();
    clock.advance(200_000);
    await settle();
    expect(terminating("kept")).toBe(false);
    expect(eviction.evictions).toEqual([]);
  });

  it("leaves a pod that tolerates the taint without seconds, forever", async () => {
    await createPod("forever", [{ key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute" }]);
    taint("n1", "node.kubernetes.io/unreachable");
    await settle();
    clock.advance(3_600_000);
    await settle();
    expect(terminating("forever")).toBe(false);
  });
});

describe("the pod GC on an out-of-service node", () => {
  it("powers the machine off, then force-deletes the pods the eviction left Terminating (gcTerminating)", async () => {
    await createPod("stuck");
    taint("n1", "node.kubernetes.io/unreachable");
    await settle();
    clock.advance(300_000);
    await settle();
    expect(terminating("stuck")).toBe(true);
    taint("n1", "node.kubernetes.io/out-of-service");
    await settle();
    expect(poweredOff).toEqual(["n1"]);
    expect(pod("stuck")).toBeUndefined();
  });

  it("force-deletes a pod the out-of-service taint itself evicts (it tolerates only the unreachable taint)", async () => {
    await createPod("fresh");
    taint("n1", "node.kubernetes.io/out-of-service");
    await settle();
    expect(poweredOff).toEqual(["n1"]);
    expect(pod("fresh")).toBeUndefined();
    expect(eviction.evictions.map((e) => e.pod)).toEqual([`${NS}/fresh`]);
  });
});
