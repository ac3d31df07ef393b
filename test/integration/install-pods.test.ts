/**
 * The kustomize Pods install, followed step by step as docs/kubernetes.md
 * writes it (issue 22, "Done when"): the commands are read from the doc's
 * fences, so doc and test cannot drift, and run with the machine's real
 * `kubectl` (1.32, its built-in kustomize) against the test API server.
 *
 * Where the test API server has no controller, the test is one, honestly:
 *
 * - Deployment -> Pod: the Deployment is read back from the API server as
 *   applied, and its Pod is created from the template (labels, spec) as the
 *   ReplicaSet controller would, bound to a node no test kubelet serves.
 * - kubelet: the container's environment is resolved as the kubelet's
 *   makeEnvironmentVariables does: the image's ENV (parsed from
 *   deploy/Dockerfile), service links for the namespace's Services unless
 *   `enableServiceLinks: false` (pkg/kubelet/envvars FromServices), then the
 *   container's env in order with `$(VAR)` expansion (third_party/forked/
 *   golang/expansion), `fieldRef` (metadata.namespace, metadata.name,
 *   status.podIP) and `secretKeyRef` read from the API server (a missing
 *   Secret fails the start, where the real Pod waits in
 *   ContainerCreating). Secret volumes become files at their mount paths
 *   with their defaultMode. The process runs in its own network namespace
 *   (test/helpers/podSandbox.ts), so its loopback is the Pod's and
 *   `RTMANAGER_INTERNAL_HTTP_ADDR=:8096` binds the Pod's interfaces, not
 *   the machine's. POD_IP is 127.0.0.2, a second loopback address of the
 *   sandbox, so "listens on the Pod IP" and "reachable on 127.0.0.1" stay
 *   apart as in a real Pod. Startup and readiness probes go to the Pod IP; Pod and Deployment
 *   status are written once /readyz answers, so `kubectl rollout status`
 *   sees what the deployment controller would report.
 * - `kubectl exec`: real kubectl, over the test API server's WebSocket exec;
 *   the command runs in the sandbox's namespaces (nsenter) with the
 *   container's environment, as CRI ExecSync does.
 * - `kubectl port-forward`: kubectl's side is not run (the test API server
 *   does not speak its SPDY-over-WebSocket tunnel); the kubelet's side is:
 *   a local port whose connections are dialled to 127.0.0.1:8096 inside the
 *   Pod's network namespace (containerd's PortForward). The local port is a
 *   free one, not 8096, and rtmctl is pointed at it with RTMCTL_SERVER.
 * - Game Pods run on the simulated test kubelet (Running and Ready without
 *   a container), so the GameRuntime's status is what rtmanager writes for a
 *   running game.
 *
 * Not emulated (docs/kubernetes.md, "What the Pods install test checks"):
 * the image itself (src/main.ts through tsx instead of dist/src/main.js,
 * rtmctl the same way), uid 10001 and the read-only root filesystem, the
 * /tmp emptyDir, in-cluster service-account credentials (the sandbox gets
 * KUBECONFIG pointing at the test API server, which has no TLS and no RBAC),
 * the `kubernetes` Service's env vars, and the real PostgreSQL is reached
 * through the sandbox's loopback, not a Service.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeApiServer, type Obj } from "../k8s/fakeApiServer.js";
import { TestCluster } from "../k8s/kubelet/cluster.js";
import type { SandboxConfig } from "../helpers/podSandbox.js";
import { startPostgres, type PostgresServer } from "../helpers/postgres.js";

const REPO = path.resolve(import.meta.dirname, "../..");
const NS = "galaxy";
const GAME = "game-4711";
// Another loopback address of the Pod's own network namespace: not 127.0.0.1, so a server that listens on
// $(POD_IP) only is not reached by a port-forward (which dials 127.0.0.1), as in a real Pod.
const POD_IP = "127.0.0.2";

// ---------------------------------------------------------------- the doc's commands

/** The shell commands of the first ```sh fence after the line starting with `marker`, continuation lines joined. */
export function docCommands(markdown: string, marker: string): string[] {
  const lines = markdown.split("\n");
  const at = lines.findIndex((l) => l.startsWith(marker));
  if (at < 0) throw new Error(`docs/kubernetes.md has no line starting with ${JSON.stringify(marker)}`);
  const open = lines.findIndex((l, i) => i > at && l.trim() === "```sh");
  const close = lines.findIndex((l, i) => i > open && l.trim() === "```");
  const commands: string[] = [];
  let current = "";
  for (const line of lines.slice(open + 1, close)) {
    const text = line.trim();
    if (!text) continue;
    if (text.endsWith("\\")) current += `${text.slice(0, -1).trim()} `;
    else {
      commands.push(current + text);
      current = "";
    }
  }
  return commands;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(command: string, env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", `set -o pipefail\n${command}`], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr: killed ? `${stderr}\n(killed: no answer within ${timeoutMs} ms)` : stderr });
    });
  });
}

// ---------------------------------------------------------------- the kubelet's environment

/** `ENV` of deploy/Dockerfile's last stage, `${ARG}` replaced by the ARG defaults (what a build without --build-arg has). */
export function imageEnv(dockerfile: string): Record<string, string> {
  const args: Record<string, string> = {};
  for (const m of dockerfile.matchAll(/^ARG (\w+)=(\S*)$/gm)) args[m[1]!] = m[2]!;
  const stages = dockerfile.split(/^FROM /m);
  const last = stages[stages.length - 1]!;
  const env: Record<string, string> = {};
  const block = /^ENV ((?:.*\\\n)*.*)$/m.exec(last)?.[1] ?? "";
  for (const m of block.replace(/\\\n/g, " ").matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!.replace(/\$\{(\w+)\}/g, (_, a: string) => args[a] ?? "");
  return env;
}

/** The kubelet's `$(VAR)` expansion: defined names are replaced, `$$` is `$`, anything else stays as written. */
export function expand(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => (name === undefined ? "$" : (defined[name] ?? whole)));
}

/** Service links as pkg/kubelet/envvars FromServices writes them, for the Services of the Pod's namespace. */
function serviceLinks(services: Obj[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const svc of services) {
    const spec = svc.spec as { clusterIP?: string; ports?: { name?: string; port: number; protocol?: string }[] };
    if (!spec.clusterIP || spec.clusterIP === "None" || !spec.ports?.length) continue;
    const name = svc.metadata.name.toUpperCase().replace(/-/g, "_");
    const ip = spec.clusterIP;
    const first = spec.ports[0]!;
    env[`${name}_SERVICE_HOST`] = ip;
    env[`${name}_SERVICE_PORT`] = String(first.port);
    for (const p of spec.ports) if (p.name) env[`${name}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, "_")}`] = String(p.port);
    env[`${name}_PORT`] = `${(first.protocol ?? "TCP").toLowerCase()}://${ip}:${first.port}`;
    for (const p of spec.ports) {
      const proto = p.protocol ?? "TCP";
      const prefix = `${name}_PORT_${p.port}_${proto}`;
      env[prefix] = `${proto.toLowerCase()}://${ip}:${p.port}`;
      env[`${prefix}_PROTO`] = proto.toLowerCase();
      env[`${prefix}_PORT`] = String(p.port);
      env[`${prefix}_ADDR`] = ip;
    }
  }
  return env;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Container {
  name: string;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; defaultMode?: number; optional?: boolean } }[];
  enableServiceLinks?: boolean;
}

function secretData(api: FakeApiServer, name: string, why: string): Record<string, string> {
  const secret = api.get("secrets", NS, name);
  // The kubelet keeps the Pod in ContainerCreating (volume) or CreateContainerConfigError (env) until it exists.
  if (!secret) throw new Error(`the Pod would not start: secret "${name}" not found (${why})`);
  return Object.fromEntries(Object.entries((secret.data ?? {}) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

/** The container's environment, as the kubelet hands it to the runtime, over the image's ENV. */
function containerEnv(api: FakeApiServer, pod: Obj, container: Container, image: Record<string, string>): Record<string, string> {
  const spec = pod.spec as PodSpec;
  const services = spec.enableServiceLinks === false ? {} : serviceLinks(api.list("services", NS));
  const defined: Record<string, string> = { ...services };
  for (const e of container.env ?? []) {
    let value = "";
    if (e.value !== undefined) value = expand(e.value, defined);
    else if (e.valueFrom?.fieldRef) {
      const field = e.valueFrom.fieldRef.fieldPath;
      const fields: Record<string, string> = { "metadata.namespace": NS, "metadata.name": pod.metadata.name, "status.podIP": POD_IP };
      if (!(field in fields)) throw new Error(`fieldRef ${field} is not emulated`);
      value = fields[field]!;
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const data = secretData(api, ref.name, `env ${e.name}`);
      if (!(ref.key in data)) throw new Error(`the Pod would not start: key ${ref.key} not in secret ${ref.name}`);
      value = data[ref.key]!;
    }
    defined[e.name] = value;
  }
  return { ...image, ...defined, HOSTNAME: pod.metadata.name };
}

// ---------------------------------------------------------------- the Pod

interface RunningPod {
  name: string;
  sandbox: ChildProcess;
  env: Record<string, string>;
  logFile: string;
  /** A local port whose connections reach 127.0.0.1:8096 inside the Pod (the kubelet's side of port-forward). */
  forwardPort: number;
  /** A local port whose connections reach <POD_IP>:8096 (probes, the Service). */
  podIpPort: number;
  servers: net.Server[];
}

function relay(listen: (s: net.Server) => void, dial: () => net.Socket): net.Server {
  const server = net.createServer((c) => {
    const d = dial();
    c.pipe(d).pipe(c);
    // A refused dial inside the Pod closes the unix socket: the client's connection must end with it, not hang.
    for (const [a, b] of [[c, d], [d, c]] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  listen(server);
  return server;
}

async function listening(server: net.Server): Promise<void> {
  if (!server.listening) await new Promise<void>((resolve) => server.once("listening", () => resolve()));
}

class PodEmulation {
  pod: RunningPod | null = null;
  ready = false;

  constructor(
    private readonly api: FakeApiServer,
    private readonly dir: string,
    private readonly upstream: { apiPort: number; pgPort: number },
  ) {}

  /** The ReplicaSet controller's Pod for the applied Deployment, and the kubelet starting it. */
  async start(): Promise<void> {
    const deploy = this.api.get("deployments", NS, "rtmanager");
    if (!deploy || this.pod) return;
    const template = (deploy.spec as { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } }).template;
    const name = `rtmanager-${randomBytes(5).toString("hex").slice(0, 10)}-${randomBytes(3).toString("hex").slice(0, 5)}`;
    const pod = this.api.create("pods", NS, {
      metadata: { name, labels: { ...template.metadata.labels, "pod-template-hash": "emulated" } },
      spec: { ...structuredClone(template.spec), nodeName: "install-test-node" },
    });
    const spec = pod.spec as PodSpec;
    const container = spec.containers.find((c) => c.name === "rtmanager")!;
    const image = imageEnv(fs.readFileSync(path.join(REPO, "deploy/Dockerfile"), "utf8"));
    const env = containerEnv(this.api, pod, container, image);
    const files: SandboxConfig["files"] = [];
    for (const mount of container.volumeMounts ?? []) {
      const volume = spec.volumes?.find((v) => v.name === mount.name);
      if (!volume?.secret) continue;
      const data = secretData(this.api, volume.secret.secretName, `volume ${volume.name}`);
      for (const [key, value] of Object.entries(data)) files.push({ path: path.join(mount.mountPath, key), contentBase64: Buffer.from(value).toString("base64"), mode: volume.secret.defaultMode ?? 0o644 });
    }
    const sock = (n: string) => path.join(this.dir, `${n}.sock`);
    const bin = path.join(this.dir, "bin");
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, "rtmctl"), `#!/bin/sh\nexec node --import tsx ${REPO}/src/cli/rtmctl.ts "$@"\n`, { mode: 0o755 });
    const kubeconfig = path.join(this.dir, "sa-kubeconfig");
    fs.writeFileSync(kubeconfig, kubeconfigText(`http://127.0.0.1:6443`, NS));
    const fullEnv = { ...env, KUBECONFIG: kubeconfig, PATH: `${bin}:${process.env.PATH ?? ""}` };
    const servers = [
      relay((s) => s.listen(sock("api")), () => net.connect(this.upstream.apiPort, "127.0.0.1")),
      relay((s) => s.listen(sock("pg")), () => net.connect(this.upstream.pgPort, "127.0.0.1")),
    ];
    const forward = relay((s) => s.listen(0, "127.0.0.1"), () => net.connect(sock("forward-8096")));
    const podIp = relay((s) => s.listen(0, "127.0.0.1"), () => net.connect(sock("podip-8096")));
    servers.push(forward, podIp);
    await Promise.all(servers.map(listening));
    const logFile = path.join(this.dir, "rtmanager.log");
    const config: SandboxConfig = {
      tmpfs: ["/run", "/var/lib"],
      dirs: [
        { path: "/var/lib/rtmanager", mode: 0o750 },
        { path: "/var/lib/galaxy/state", mode: 0o755 },
      ],
      files,
      inbound: [
        { port: 6443, socket: sock("api") },
        { port: 5432, socket: sock("pg") },
      ],
      outbound: [
        { socket: sock("forward-8096"), host: "127.0.0.1", port: 8096 },
        { socket: sock("podip-8096"), host: POD_IP, port: 8096 },
      ],
      command: ["node", "--import", "tsx", "src/main.ts"],
      env: fullEnv,
      cwd: REPO,
      logFile,
    };
    const configFile = path.join(this.dir, "sandbox.json");
    fs.writeFileSync(configFile, JSON.stringify(config));
    const sandbox = spawn("unshare", ["--user", "--map-root-user", "--net", "--mount", "--", "node", "--import", "tsx", "test/helpers/podSandbox.ts", configFile], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let errors = "";
    sandbox.stderr.on("data", (b: Buffer) => (errors += b.toString()));
    await new Promise<void>((resolve, reject) => {
      sandbox.stdout.on("data", (b: Buffer) => b.toString().includes("sandbox-ready") && resolve());
      sandbox.on("exit", (code) => reject(new Error(`pod sandbox exited ${code}: ${errors}`)));
    });
    this.pod = { name, sandbox, env: fullEnv, logFile, forwardPort: (forward.address() as net.AddressInfo).port, podIpPort: (podIp.address() as net.AddressInfo).port, servers };
    this.api.setStatus("pods", NS, name, { phase: "Running", podIP: POD_IP, podIPs: [{ ip: POD_IP }], conditions: [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "False" }], containerStatuses: [{ name: "rtmanager", ready: false, started: true, restartCount: 0, state: { running: { startedAt: new Date().toISOString() } } }] });
    void this.probe(deploy);
  }

  /** Startup probe (/healthz), then readiness (/readyz); on the first 200 the Pod is Ready and the Deployment available. */
  private async probe(deploy: Obj): Promise<void> {
    const url = (p: string) => `http://127.0.0.1:${this.pod!.podIpPort}${p}`;
    for (const p of ["/healthz", "/readyz"]) {
      while (this.pod && this.pod.sandbox.exitCode === null) {
        const ok = await fetch(url(p), { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (!this.pod || this.pod.sandbox.exitCode !== null) return;
    const now = new Date().toISOString();
    const pod = this.api.get("pods", NS, this.pod.name)!;
    const status = pod.status as { conditions: { type: string; status: string }[]; containerStatuses: { ready: boolean }[] };
    status.conditions = [{ type: "PodScheduled", status: "True" }, { type: "Ready", status: "True" }, { type: "ContainersReady", status: "True" }];
    status.containerStatuses[0]!.ready = true;
    this.api.setStatus("pods", NS, this.pod.name, status);
    this.api.setStatus("deployments", NS, "rtmanager", {
      observedGeneration: deploy.metadata.generation,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [
        { type: "Available", status: "True", reason: "MinimumReplicasAvailable", lastUpdateTime: now, lastTransitionTime: now },
        { type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", lastUpdateTime: now, lastTransitionTime: now },
      ],
    });
    this.ready = true;
  }

  /** CRI exec: the command in the Pod's namespaces with the container's environment. */
  exec(podName: string, command: string[], io: { stdout(b: Buffer): void; stderr(b: Buffer): void }): Promise<number> {
    const pod = this.pod;
    if (!pod || podName !== pod.name || pod.sandbox.exitCode !== null) throw new Error(`no container runs for pod ${podName}`);
    const envArgs = Object.entries(pod.env).map(([k, v]) => `${k}=${v}`);
    const child = spawn("nsenter", ["--preserve-credentials", "-U", "-n", "-m", "-t", String(pod.sandbox.pid), `--wd=${REPO}`, "--", "env", "-i", ...envArgs, ...command], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", io.stdout);
    child.stderr.on("data", io.stderr);
    return new Promise((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  }

  log(): string {
    return this.pod ? fs.readFileSync(this.pod.logFile, "utf8") : "";
  }

  async stop(): Promise<void> {
    const pod = this.pod;
    if (!pod) return;
    if (pod.sandbox.exitCode === null) {
      const exited = new Promise<void>((resolve) => pod.sandbox.once("exit", () => resolve()));
      pod.sandbox.kill("SIGTERM");
      const timer = setTimeout(() => pod.sandbox.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    }
    for (const s of pod.servers) s.close();
  }
}

function kubeconfigText(server: string, namespace: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    // Plain http: client-node refuses it unless TLS verification is off (there is no TLS to verify).
    `clusters: [{name: test, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]`,
    "users: [{name: test, user: {}}]",
    `contexts: [{name: test, context: {cluster: test, user: test, namespace: ${namespace}}}]`,
    "current-context: test",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------- the run

describe("the Pods install in docs/kubernetes.md, step by step against the test API server", () => {
  let api: FakeApiServer;
  let cluster: TestCluster;
  let pg: PostgresServer;
  let dir: string;
  let emulation: PodEmulation;
  let env: NodeJS.ProcessEnv;
  const doc = fs.readFileSync(path.join(REPO, "docs/kubernetes.md"), "utf8");
  const password = randomBytes(12).toString("hex");
  const transcript: string[] = [];

  /** Runs one documented command as an operator would; the emulated controllers act between commands. */
  async function step(command: string, extraEnv: NodeJS.ProcessEnv = {}, timeoutMs = 90_000): Promise<Run> {
    const text = command
      .replace("postgres://rtmanager:<password>@<host>:5432/rtmanager", `postgres://rtmanager:${password}@127.0.0.1:5432/rtmanager`)
      .replace(/<game>/g, GAME);
    const r = await sh(text, { ...env, ...extraEnv }, timeoutMs);
    transcript.push(`$ ${text}\n${r.stdout}${r.stderr}(exit ${r.code})`);
    if (r.code !== 0) throw new Error(`documented step failed: ${text}\n${r.stdout}${r.stderr}\n--- rtmanager log ---\n${emulation.log().slice(-3000)}`);
    await emulation.start();
    return r;
  }

  beforeAll(async () => {
    // Missing tools fail loudly: an install test that silently skipped would say nothing.
    for (const [tool, args] of [["kubectl", ["version", "--client"]], ["unshare", ["--version"]], ["nsenter", ["--version"]], ["ip", ["-V"]]] as const) {
      const r = await sh(`${tool} ${args.join(" ")}`, { PATH: process.env.PATH });
      if (r.code !== 0) throw new Error(`${tool} is required by the install test (${r.stderr.trim() || `exit ${r.code}`})`);
    }
    const userns = await sh("unshare --user --map-root-user --net --mount true", { PATH: process.env.PATH });
    if (userns.code !== 0) throw new Error(`the install test runs the Pod in its own user, network and mount namespaces, which this machine refuses: ${userns.stderr.trim()}`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rtm-install-"));
    api = await FakeApiServer.start({ bookmarkIntervalMs: 5_000 });
    cluster = await TestCluster.start(api, { mode: "simulated", nodes: 1 });
    pg = await startPostgres();
    await pg.query(`CREATE ROLE rtmanager LOGIN PASSWORD '${password}'`);
    await pg.query("CREATE DATABASE rtmanager OWNER rtmanager");
    const kubeconfig = path.join(dir, "kubeconfig");
    fs.writeFileSync(kubeconfig, kubeconfigText(api.url, "default"));
    const home = path.join(dir, "home");
    fs.mkdirSync(home);
    env = { PATH: process.env.PATH, HOME: home, KUBECONFIG: kubeconfig, KUBECACHEDIR: path.join(home, ".kube/cache") };
    emulation = new PodEmulation(api, dir, { apiPort: Number(new URL(api.url).port), pgPort: pg.port });
    api.setExecHandler((pod, options, io) => emulation.exec(pod.metadata.name, options.command, io));
  });

  let failed = false;
  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") failed = true;
  });

  afterAll(async () => {
    // Only a failed run leaves its transcript behind (every command with its output), for the one reading the failure.
    if (failed && transcript.length) {
      const file = path.join(os.tmpdir(), "rtm-install-pods-transcript.txt");
      fs.writeFileSync(file, transcript.join("\n\n"));
      console.error(`install-pods: transcript in ${file}`);
    }
    await emulation?.stop();
    await cluster?.stop();
    await api?.stop();
    await pg?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("installs, rolls out, answers rtmctl through kubectl exec, and shows the GameRuntime rtmanager runs", { timeout: 300_000 }, async () => {
    const install = docCommands(doc, "Install (namespaced: rtmanager");
    expect(install[0]).toBe("kubectl apply -f deploy/crd/gameruntime.yaml");
    expect(install).toContain("kubectl apply -k deploy/kustomize/overlays/pods");
    const outputs = new Map<string, Run>();
    for (const command of install) outputs.set(command, await step(command));

    // On stderr, apply -k prints only kubectl's note about the imperatively created namespace (the doc says so).
    const apply = outputs.get("kubectl apply -k deploy/kustomize/overlays/pods")!;
    expect(apply.stderr.trim().split("\n").filter((l) => l && !l.includes("namespaces/galaxy is missing the kubectl.kubernetes.io/last-applied-configuration"))).toEqual([]);
    const rollout = [...outputs].find(([c]) => c.includes("rollout status"))![1];
    expect(rollout.stdout).toContain('deployment "rtmanager" successfully rolled out');
    const version = [...outputs].find(([c]) => c.includes("rtmctl version"))![1];
    // "server: …" is only printed once the server answered, with the token, on the address from the Pod's env.
    expect(version.stdout).toMatch(/^server: \d+\.\d+\.\d+/m);

    // rtmanager runs the game: its Pod Running on the simulated kubelet, the GameRuntime's status written back.
    let table = "";
    for (let i = 0; i < 120 && !/running\s+True/.test(table); i++) {
      table = (await step(`kubectl -n ${NS} get gameruntimes`)).stdout;
      if (!/running\s+True/.test(table)) await new Promise((r) => setTimeout(r, 500));
    }
    expect(table).toMatch(new RegExp(`${GAME}\\s+${GAME}\\s+galaxy/engine:1.4.2\\s+running\\s+running\\s+True\\s+0`));
    const gr = api.get("gameruntimes", NS, GAME)!;
    expect((gr.status as { phase?: string }).phase).toBe("running");

    const wide = (await step(`kubectl -n ${NS} exec deploy/rtmanager -- rtmctl list -o wide`)).stdout;
    expect(wide).toMatch(new RegExp(`${GAME}.*running`));
    const pods = (await step(`kubectl -n ${NS} get pods,svc,pvc -l rtmanager.galaxy.io/managed=true`)).stdout;
    expect(pods).toContain(`pod/galaxy-game-${GAME}`);
    expect(pods).toContain(`service/galaxy-game-${GAME}`);
  });

  it("the documented kubectl exec recipes answer, without flags, from the Pod's own environment", { timeout: 120_000 }, async () => {
    const recipes = docCommands(doc, "`rtmctl` is in the image, and inside rtmanager's container");
    expect(recipes.length).toBeGreaterThanOrEqual(4);
    for (const command of recipes) {
      const r = await step(command);
      if (command.includes("jq")) expect(r.stdout.trim().split("\n")).toContain(GAME);
      else if (command.includes("--unhealthy")) expect(r.stdout).not.toContain(GAME);
      else if (command.includes("rtmctl ops")) expect(r.stdout).toMatch(/start\s+kubernetes\s+success/);
      else expect(r.stdout).toContain(GAME);
    }
  });

  it("port-forward and the token from the Secret reach it from the operator's machine; without the token it is refused", { timeout: 120_000 }, async () => {
    const recipe = docCommands(doc, "From your machine, through a port-forward");
    expect(recipe[0]).toMatch(/^kubectl -n galaxy port-forward deploy\/rtmanager 8096:8096 &$/);
    const server = `http://127.0.0.1:${emulation.pod!.forwardPort}`;
    let last: Run | null = null;
    // 30 s a step: rtmctl on Node 20 waits out its --timeout (120 s) when a port-forward's connection is closed unanswered.
    for (const command of recipe.slice(1)) last = await step(command, { RTMCTL_SERVER: server }, 30_000);
    expect(last!.stdout).toMatch(new RegExp(`${GAME}.*running`));
    const refused = await fetch(`${server}/api/v1/internal/runtimes`);
    expect(refused.status).toBe(401);
    const open = await fetch(`${server}/healthz`);
    expect(open.status).toBe(200);
  });

  it("started without a warning about its environment (no stray RTMANAGER_* variable reached the container)", () => {
    const log = emulation.log();
    expect(log).toContain("8096");
    expect(log).not.toMatch(/is not an rtmanager setting/);
  });
});
