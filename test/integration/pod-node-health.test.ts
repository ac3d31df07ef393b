/**
 * The Node watch behind "is this engine's node lost?", against the test API
 * server: a node whose Ready condition goes Unknown (as the node lifecycle
 * controller sets it) is lost, since its lastTransitionTime; Ready again, it
 * is not; Nodes that cannot be read (403) leave the Pod to speak for itself.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { engineNodeLoss, NodeHealth } from "../../src/runtime/kubernetes/nodeHealth.js";
import { FakeApiServer } from "../k8s/fakeApiServer.js";
import { HttpError } from "../k8s/apiserver/types.js";
import { fakeKubeConfig } from "../k8s/kubeconfig.js";
import { nodeObject, readyNodeStatus } from "../k8s/kubelet/kubelet.js";
import { until } from "../k8s-infra/helpers.js";

let server: FakeApiServer;
const logger = pino({ level: "silent" });

beforeAll(async () => {
  server = await FakeApiServer.start();
  for (const name of ["n-0", "n-1"]) {
    server.create("nodes", "", nodeObject(name));
    server.setStatus("nodes", "", name, readyNodeStatus(true));
  }
});

afterAll(async () => {
  await server?.stop();
});

function unknownReady(at: string) {
  const status = readyNodeStatus(true) as { conditions: { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[] };
  status.conditions = status.conditions.map((c) => ({ ...c, status: "Unknown", reason: "NodeStatusUnknown", message: "Kubelet stopped posting node status.", lastTransitionTime: at }));
  return status;
}

/** A Pod as MarkPodsNotReady leaves it: Ready False, ContainersReady and the container status still ready. */
function markedNotReady(node: string, at: string): V1Pod {
  return {
    metadata: { name: "p" },
    spec: { nodeName: node, containers: [{ name: "engine", image: "x" }] },
    status: {
      phase: "Running",
      conditions: [
        { type: "Ready", status: "False", lastTransitionTime: new Date(at) },
        { type: "ContainersReady", status: "True" },
      ],
      containerStatuses: [{ name: "engine", ready: true, restartCount: 0, image: "x", imageID: "", state: { running: {} } }],
    },
  };
}

describe("NodeHealth (the Node watch)", () => {
  it("a node whose Ready goes Unknown is lost since then; Ready again, it is not; the other node never was", async () => {
    const nodes = new NodeHealth({ kubeConfig: fakeKubeConfig(server.url), logger, silenceLimitMs: 60_000 });
    nodes.start();
    try {
      await until("nodes listed", () => nodes.reading, 10_000);
      expect(nodes.lookup("n-0")).toBeNull();

      const at = "2026-01-02T03:04:05Z";
      server.setStatus("nodes", "", "n-0", unknownReady(at));
      const lost = await until("n-0 lost", () => nodes.lookup("n-0") ?? undefined, 10_000);
      expect(lost).toEqual({ node: "n-0", reason: "NodeStatusUnknown", since: new Date(at) });
      expect(nodes.lookup("n-1")).toBeNull();

      server.setStatus("nodes", "", "n-0", readyNodeStatus(true));
      await until("n-0 back", () => nodes.lookup("n-0") === null, 10_000);
      // The Node's word wins over the Pod's: a Ready node's Pod is not lost, whatever its conditions.
      expect(engineNodeLoss(markedNotReady("n-0", at), nodes.lookup)).toBeNull();
    } finally {
      await nodes.stop();
    }
  });

  it("403 on Nodes: no crash, no retries; the Pod's MarkPodsNotReady signature reports the lost node instead", async () => {
    const nodeRequests: string[] = [];
    server.beforeHandle = (req) => {
      if (req.path.startsWith("/api/v1/nodes")) {
        nodeRequests.push(req.path);
        throw new HttpError(403, "Forbidden", 'nodes is forbidden: User "system:serviceaccount:galaxy:rtmanager" cannot list resource "nodes" at the cluster scope');
      }
    };
    const nodes = new NodeHealth({ kubeConfig: fakeKubeConfig(server.url), logger, silenceLimitMs: 60_000 });
    try {
      nodes.start();
      await until("the list refused", () => nodeRequests.length >= 1, 10_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(nodeRequests).toHaveLength(1);
      expect(nodes.reading).toBe(false);
      // Not read: the watch knows nothing of the node (the Pod speaks for it, below).
      expect(nodes.lookup("n-0")).toBeUndefined();
      const at = "2026-01-02T03:04:05Z";
      expect(engineNodeLoss(markedNotReady("n-1", at), nodes.lookup)).toEqual({ node: "n-1", reason: "NodeNotReady", since: new Date(at) });
      // A readiness failure is not a lost node: the kubelet flips ContainersReady and the container too.
      const unready = markedNotReady("n-1", at);
      unready.status!.conditions![1]!.status = "False";
      unready.status!.containerStatuses![0]!.ready = false;
      expect(engineNodeLoss(unready, nodes.lookup)).toBeNull();
    } finally {
      server.beforeHandle = null;
      await nodes.stop();
    }
  });
});
