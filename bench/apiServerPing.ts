/**
 * Why the simulated-cluster fleet bench saw 503s (docs/BENCHMARKS.md, issue
 * 18): every REST lifecycle call pings the Pod runtime first (a `limit=1`
 * list of this installation's Pods, src/runtime/kubernetes/podApi.ts), and
 * the test API server (test/k8s/fakeApiServer.ts), which runs in the bench's
 * own process, answered a list by deep-copying and sorting every matching Pod
 * before cutting the page. 200 pings at once over 1,000 Pods held that
 * process for seconds, and the pings ran past RTMANAGER_KUBE_REQUEST_TIMEOUT.
 *
 * This measures exactly that: a test API server holding N Pods in this
 * process (optionally kept busy, as the hollow kubelets keep it), and a child
 * process sending CONC pings at once through the controller's own client
 * (KubeCalls, the request timeout), ROUNDS times. Printed: each round's wall
 * time, the pings answered, and every failure by message.
 *
 *   BENCH_PING_PODS=1000 BENCH_PING_CONC=200 BENCH_PING_BUSY_MS=0 npx tsx bench/apiServerPing.ts
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CoreV1Api } from "@kubernetes/client-node";
import { KubeCalls } from "../src/kube/calls.js";
import { kubeClient } from "../src/kube/client.js";
import { managedSelector } from "../src/runtime/kubernetes/names.js";
import { FakeApiServer, type Meta } from "../test/k8s/fakeApiServer.js";
import { fakeKubeConfig } from "../test/k8s/kubeconfig.js";

const PODS = Number(process.env.BENCH_PING_PODS ?? 1000);
const CONC = Number(process.env.BENCH_PING_CONC ?? 200);
const ROUNDS = Number(process.env.BENCH_PING_ROUNDS ?? 5);
/** Milliseconds of every 20 the server's process spends busy (the hollow kubelets' share); 0: idle. */
const BUSY_MS = Number(process.env.BENCH_PING_BUSY_MS ?? 0);
const INSTANCE = "bench-ping";
const NAMESPACE = "games";

async function server(): Promise<void> {
  const api = await FakeApiServer.start();
  const labels = { "rtmanager.galaxy.io/managed": "true", "rtmanager.galaxy.io/instance": INSTANCE, "rtmanager.galaxy.io/game-id": "" };
  for (let i = 0; i < PODS; i++) {
    const metadata: Meta = { name: `galaxy-game-ping-${i}`, namespace: NAMESPACE, labels: { ...labels, "rtmanager.galaxy.io/game-id": `ping-${i}` } };
    api.create("pods", NAMESPACE, { metadata, spec: { containers: [{ name: "engine", image: "galaxy/test-engine:1.0.0" }] } });
  }
  const busy = BUSY_MS > 0 ? setInterval(() => {
    const end = Date.now() + BUSY_MS;
    while (Date.now() < end);
  }, 20) : undefined;
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "client", api.url], { stdio: "inherit" });
  const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? 1)));
  if (busy) clearInterval(busy);
  await api.stop();
  process.exit(code);
}

async function client(url: string): Promise<void> {
  const kubeConfig = kubeClient(10_000, fakeKubeConfig(url));
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const calls = new KubeCalls(kubeConfig);
  const failures = new Map<string, number>();
  let answered = 0;
  console.log(`${PODS} Pods, ${CONC} pings at once, ${ROUNDS} rounds, server busy ${BUSY_MS} ms of every 20`);
  for (let round = 1; round <= ROUNDS; round++) {
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        try {
          await calls.run("ping", `listing Pods in ${NAMESPACE}`, () => core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: managedSelector(INSTANCE), limit: 1 }));
          answered++;
        } catch (err) {
          const message = (err as Error).message.slice(0, 120);
          failures.set(message, (failures.get(message) ?? 0) + 1);
        }
      }),
    );
    console.log(`round ${round}: ${Date.now() - t0} ms`);
  }
  console.log(`answered ${answered} of ${CONC * ROUNDS}`);
  for (const [message, n] of failures) console.log(`failed ${n}: ${message}`);
}

if (process.argv[2] === "client") await client(process.argv[3]!);
else await server();
