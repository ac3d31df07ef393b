/**
 * Every overlay under deploy/kustomize/overlays is rendered with `kubectl
 * kustomize` and what it would apply is checked: apiVersion and kind, the
 * namespace, the labels, the one image, Pod Security against what the pod
 * asks for, the Secrets against the examples, the RBAC against the files
 * test/integration/k8s.test.ts compares with the code's calls, the Lease and
 * the namespaces the code computes from the rendered environment, and the
 * monitoring objects against deploy/prometheus.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config.js";
import { kubeNamespaces } from "../../src/crd/namespaces.js";
import { imageRefused } from "../../src/model/admission.js";
import { POD_LABELS } from "../../src/runtime/kubernetes/names.js";
import { parseListenAddress } from "../../src/httpConfig.js";
import { resolveServer } from "../../src/cli/server.js";
import { resolveToken } from "../../src/cli/token.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const kustomizeDir = path.join(root, "deploy/kustomize");
const read = (p: string) => readFileSync(path.join(root, p), "utf8");

type Meta = { name: string; namespace?: string; labels?: Record<string, string> };
type Obj = { apiVersion: string; kind: string; metadata: Meta } & Record<string, unknown>;
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string; optional?: boolean } } };
type Container = {
  name: string;
  image: string;
  env?: EnvVar[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  command?: string[];
  args?: string[];
  securityContext?: SecurityContext & { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; privileged?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: { name: string; mountPath: string }[];
};
type SecurityContext = { runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; seccompProfile?: { type: string } };
type PodSpec = {
  serviceAccountName: string;
  hostNetwork?: boolean;
  securityContext?: SecurityContext & { supplementalGroups?: number[] };
  containers: Container[];
  initContainers?: Container[];
  volumes?: { name: string; hostPath?: { path: string }; secret?: { secretName: string; optional?: boolean } }[];
};
type Deployment = Obj & { spec: { replicas: number; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };

/** The apiVersion of every kind an overlay may render, and whether it is namespaced. */
const KINDS: Record<string, { apiVersion: string; namespaced: boolean }> = {
  Namespace: { apiVersion: "v1", namespaced: false },
  PodDisruptionBudget: { apiVersion: "policy/v1", namespaced: true },
  ServiceAccount: { apiVersion: "v1", namespaced: true },
  Service: { apiVersion: "v1", namespaced: true },
  ConfigMap: { apiVersion: "v1", namespaced: true },
  Deployment: { apiVersion: "apps/v1", namespaced: true },
  Role: { apiVersion: "rbac.authorization.k8s.io/v1", namespaced: true },
  RoleBinding: { apiVersion: "rbac.authorization.k8s.io/v1", namespaced: true },
  ClusterRole: { apiVersion: "rbac.authorization.k8s.io/v1", namespaced: false },
  ClusterRoleBinding: { apiVersion: "rbac.authorization.k8s.io/v1", namespaced: false },
  PodMonitor: { apiVersion: "monitoring.coreos.com/v1", namespaced: true },
  PrometheusRule: { apiVersion: "monitoring.coreos.com/v1", namespaced: true },
};
const LABELS = { "app.kubernetes.io/name": "rtmanager", "app.kubernetes.io/part-of": "galaxy" };
const RUNTIME_OVERLAYS = ["docker-namespaced", "docker-cluster-wide"];

const INSTALL_KUBECTL =
  "kubectl with kustomize v5 (kubectl >= 1.27) is needed to render deploy/kustomize. Install it from " +
  "https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/ (Debian's kubernetes-client 1.20 is too old) " +
  "or point KUBECTL at one.";

/** The kubectl to use, or why none fits. */
function findKubectl(): { bin: string } | { error: string } {
  const bin = process.env.KUBECTL || "kubectl";
  let out: string;
  try {
    out = execFileSync(bin, ["version", "--client", "-o", "json"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    return { error: `${INSTALL_KUBECTL} (\`${bin} version --client\` failed: ${(err as Error).message.split("\n")[0]})` };
  }
  const version = JSON.parse(out) as { clientVersion?: { gitVersion?: string }; kustomizeVersion?: string };
  const kustomizeMajor = Number(/^v?(\d+)\./.exec(version.kustomizeVersion ?? "")?.[1] ?? 0);
  if (kustomizeMajor < 5) return { error: `${INSTALL_KUBECTL} Found ${bin} ${version.clientVersion?.gitVersion ?? "?"} with kustomize ${version.kustomizeVersion ?? "none"}.` };
  return { bin };
}

const kubectl = findKubectl();

function render(dir: string): Obj[] {
  if ("error" in kubectl) throw new Error(kubectl.error);
  const out = execFileSync(kubectl.bin, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}

const one = <T extends Obj = Obj>(objs: Obj[], kind: string, name?: string): T => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found.map((o) => `${o.kind}/${o.metadata.name}`), `exactly one ${kind}${name ? `/${name}` : ""}`).toHaveLength(1);
  return found[0] as T;
};

const grants = (rules: Rule[], group: string, resource: string, verb: string, name?: string) =>
  rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb) && (!r.resourceNames || (name !== undefined && r.resourceNames.includes(name))));

/** What the kubelet puts in the container's environment: values and the downward API's namespace (Secrets left out). */
function environment(c: Container, podNamespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = podNamespace;
  }
  return env;
}

const baseKustomization = parse(read("deploy/kustomize/base/kustomization.yaml")) as { namespace: string; images: { name: string; newName: string; newTag: string }[] };
const NAMESPACE = baseKustomization.namespace;
const IMAGE = `${baseKustomization.images[0]!.newName}:${baseKustomization.images[0]!.newTag}`;

/** The Role and ClusterRole as written in the files the k8s end-to-end test checks against the code's calls. */
function sourceRules(file: string, kind: string): Rule[] {
  const docs = parseAllDocuments(read(file)).map((d) => d.toJS() as Obj & { rules?: Rule[] });
  return docs.find((d) => d.kind === kind)!.rules!;
}

describe("deploy/kustomize", () => {
  const rendered = new Map<string, Obj[]>();
  const overlays = readdirSync(path.join(kustomizeDir, "overlays"), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();

  beforeAll(() => {
    if ("error" in kubectl) return;
    for (const o of overlays) rendered.set(o, render(path.join(kustomizeDir, "overlays", o)));
  });
  /** An overlay's objects; without a usable kubectl every test fails saying what to install. */
  const objsOf = (overlay: string): Obj[] => {
    if ("error" in kubectl) throw new Error(kubectl.error);
    const objs = rendered.get(overlay);
    if (!objs) throw new Error(`overlay ${overlay} was not rendered`);
    return objs;
  };

  it("a kubectl that renders kustomize v5 is available", () => {
    if ("error" in kubectl) throw new Error(kubectl.error);
    expect(overlays).toEqual(["docker-cluster-wide", "docker-namespaced", "pods", "prometheus-operator"]);
    for (const o of overlays) expect(objsOf(o).length, o).toBeGreaterThan(0);
  });

  it("every object of every overlay: known kind and apiVersion, its namespace, the labels, the one image", () => {
    for (const overlay of overlays) {
      const objs = objsOf(overlay);
      for (const o of objs) {
        const where = `${overlay}: ${o.kind}/${o.metadata.name}`;
        const kind = KINDS[o.kind];
        expect(kind, `${where}: unexpected kind`).toBeDefined();
        expect(o.apiVersion, where).toBe(kind!.apiVersion);
        expect(o.metadata.namespace, `${where}: namespace`).toBe(kind!.namespaced ? NAMESPACE : undefined);
        expect(o.metadata.labels, `${where}: labels`).toMatchObject(LABELS);
      }
      for (const d of objs.filter((o): o is Deployment => o.kind === "Deployment")) {
        const pod = d.spec.template.spec;
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) expect(c.image, `${overlay}: ${c.name} image`).toBe(IMAGE);
      }
    }
    expect(IMAGE).not.toMatch(/registry\.example/);
    const files = readdirSync(path.join(root, "deploy"), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const placeholders = files.map((e) => path.join(e.parentPath, e.name)).filter((f) => readFileSync(f, "utf8").includes("registry.example"));
    expect(placeholders, "registry.example left in deploy/").toEqual([]);
  });

  it("runtime overlays: Pod Security of the namespace admits the pod, and nothing more than it needs is asked", () => {
    for (const overlay of RUNTIME_OVERLAYS) {
      const objs = objsOf(overlay);
      const ns = one(objs, "Namespace");
      expect(ns.metadata.name).toBe(NAMESPACE);
      const pod = one<Deployment>(objs, "Deployment", "rtmanager").spec.template.spec;
      const usesHost = pod.hostNetwork === true || (pod.volumes ?? []).some((v) => v.hostPath);
      // hostPath and hostNetwork are refused by baseline and restricted: only privileged admits them.
      expect(usesHost, `${overlay}: the Docker runtime uses the host`).toBe(true);
      expect(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"], overlay).toBe("privileged");
      // The controller itself: the image's non-root user, reaching the socket through a supplementary group.
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
      expect(pod.securityContext?.supplementalGroups?.length, `${overlay}: the Docker socket's group`).toBeGreaterThan(0);
      const main = pod.containers.find((c) => c.name === "rtmanager")!;
      expect(main.securityContext?.runAsUser ?? pod.securityContext?.runAsUser).toBe(10001);
      expect(main.securityContext?.allowPrivilegeEscalation).toBe(false);
    }
  });

  it("every container of every overlay: non-root but for the one justified init container, RuntimeDefault seccomp, no privilege escalation, every capability dropped", () => {
    for (const overlay of overlays) {
      for (const d of objsOf(overlay).filter((o): o is Deployment => o.kind === "Deployment")) {
        const pod = d.spec.template.spec;
        for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
          const where = `${overlay}: ${c.name}`;
          const sc = c.securityContext ?? {};
          const user = sc.runAsUser ?? pod.securityContext?.runAsUser;
          expect(user, `${where}: runAsUser set (the image's user would be taken on trust)`).toBeDefined();
          expect(sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type, `${where}: seccomp`).toBe("RuntimeDefault");
          expect(sc.allowPrivilegeEscalation, `${where}: allowPrivilegeEscalation`).toBe(false);
          expect(sc.privileged ?? false, `${where}: privileged`).toBe(false);
          expect(sc.readOnlyRootFilesystem, `${where}: readOnlyRootFilesystem`).toBe(true);
          expect(sc.capabilities?.drop, `${where}: capabilities.drop`).toEqual(["ALL"]);
          if (user !== 0) {
            expect(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, `${where}: runAsNonRoot`).toBe(true);
            // A non-root process holds no capability anyway; asking for one would only mislead.
            expect(sc.capabilities?.add ?? [], `${where}: capabilities.add`).toEqual([]);
            continue;
          }
          // uid 0 only for docker-runtime's state-init: it hands the state root to rtmanager's uid, with CHOWN and nothing else.
          expect(c.name, `${where} runs as uid 0`).toBe("state-init");
          expect(pod.initContainers?.map((i) => i.name), where).toContain(c.name);
          expect(sc.capabilities?.add, `${where}: capabilities.add`).toEqual(["CHOWN"]);
          const main = pod.containers.find((x) => x.name === "rtmanager")!;
          const stateRoot = environment(main, NAMESPACE).RTMANAGER_STATE_ROOT;
          const owner = `${pod.securityContext?.runAsUser}:${pod.securityContext?.runAsGroup}`;
          // Exactly one chown: a chmod after it needs CAP_FOWNER and fails on every start.
          expect([...(c.command ?? []), ...(c.args ?? [])], where).toEqual(["chown", owner, stateRoot]);
          expect(c.volumeMounts?.map((m) => m.mountPath), where).toEqual([stateRoot]);
        }
      }
    }
  });

  it("runtime overlays: Kubernetes mode, probes, resources, the Docker socket and a state root at the same path inside and out", () => {
    for (const overlay of RUNTIME_OVERLAYS) {
      const objs = objsOf(overlay);
      const pod = one<Deployment>(objs, "Deployment", "rtmanager").spec.template.spec;
      const sa = one(objs, "ServiceAccount");
      expect(pod.serviceAccountName).toBe(sa.metadata.name);
      const c = pod.containers.find((x) => x.name === "rtmanager")!;
      const env = environment(c, NAMESPACE);
      expect(env.RTMANAGER_SOURCE).toBe("kubernetes");
      expect(c.ports?.find((p) => p.name === "http")?.containerPort).toBe(8096);
      expect(c.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "http" });
      expect(c.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "http" });
      expect(c.resources?.requests).toBeDefined();
      expect(c.resources?.limits).toBeDefined();
      expect(c.volumeMounts?.find((m) => m.mountPath === "/var/run/docker.sock")).toBeDefined();
      expect(pod.volumes?.find((v) => v.hostPath?.path === "/var/run/docker.sock")).toBeDefined();
      // Docker bind-mounts host paths: the state root is the same path inside and out.
      const stateMount = c.volumeMounts?.find((m) => m.mountPath === env.RTMANAGER_STATE_ROOT);
      expect(pod.volumes?.find((v) => v.name === stateMount?.name)?.hostPath?.path, overlay).toBe(env.RTMANAGER_STATE_ROOT);
      // The whole environment is one rtmanager accepts.
      expect(() => loadConfig({ ...env, DATABASE_URL: "postgres://x@y/z" }), overlay).not.toThrow();

      // The Service reaches the pod's http port.
      const svc = one(objs, "Service") as Obj & { spec: { selector: Record<string, string>; ports: { targetPort: string }[] } };
      expect(one<Deployment>(objs, "Deployment").spec.template.metadata.labels).toMatchObject(svc.spec.selector);
      expect(c.ports?.map((p) => p.name)).toContain(svc.spec.ports[0]!.targetPort);
    }
  });

  it("runtime overlays: the Secrets the pod reads are the ones base/secrets.example.yaml shows", () => {
    const examples = parseAllDocuments(read("deploy/kustomize/base/secrets.example.yaml")).map((d) => d.toJS() as Obj & { stringData: Record<string, string> });
    for (const overlay of RUNTIME_OVERLAYS) {
      const c = one<Deployment>(objsOf(overlay), "Deployment").spec.template.spec.containers[0]!;
      const refs = (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [{ env: e.name, ...e.valueFrom.secretKeyRef }] : []));
      expect(refs.map((r) => r.env).sort()).toEqual(["DATABASE_URL"]);
      for (const ref of refs) {
        const example = examples.find((s) => s.kind === "Secret" && s.metadata.name === ref.name);
        expect(example?.stringData, `${overlay}: ${ref.name}`).toHaveProperty(ref.key);
      }
      // The token is a file from a Secret volume (re-read on rotation), and not optional: no Secret, no pod.
      const pod = one<Deployment>(objsOf(overlay), "Deployment").spec.template.spec as { volumes?: { name: string; secret?: { secretName: string; optional?: boolean } }[] };
      const tokenFile = (c.env ?? []).find((e) => e.name === "RTMANAGER_INTERNAL_TOKEN_FILE")?.value ?? "";
      const mount = (c.volumeMounts ?? []).find((m) => tokenFile.startsWith(`${m.mountPath}/`));
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.secret?.optional ?? false, overlay).toBe(false);
      const tokenSecret = examples.find((e) => e.kind === "Secret" && e.metadata.name === volume?.secret?.secretName);
      expect(tokenSecret?.stringData, overlay).toHaveProperty(tokenFile.slice(mount!.mountPath.length + 1));
      // No Secret is applied by an overlay: placeholders would overwrite the real ones.
      expect(objsOf(overlay).filter((o) => (o.kind as string) === "Secret")).toEqual([]);
    }
  });

  it("kubectl exec deploy/rtmanager -- rtmctl: the address and token rtmctl reads from the rendered env are where the server listens and the Secret it mounts", () => {
    const POD_IP = "10.244.3.17";
    for (const overlay of [...RUNTIME_OVERLAYS, "pods"]) {
      const spec = one<Deployment>(objsOf(overlay), "Deployment").spec.template.spec;
      const c = spec.containers[0]!;
      // The kubelet's expansion: status.podIP from the downward API, then $(VAR) of variables defined earlier.
      const env: Record<string, string> = {};
      for (const e of c.env ?? []) {
        if (e.valueFrom?.fieldRef?.fieldPath === "status.podIP") env[e.name] = POD_IP;
        else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.namespace") env[e.name] = NAMESPACE;
        else if (e.value !== undefined) env[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string) => env[n] ?? m);
      }
      const listen = parseListenAddress(env.RTMANAGER_INTERNAL_HTTP_ADDR ?? "127.0.0.1:8096");
      const port = c.ports?.find((p) => p.name === "http")?.containerPort;
      expect(listen.port, overlay).toBe(port);
      const server = new URL(resolveServer({}, env, "list"));
      expect(Number(server.port), overlay).toBe(listen.port);
      // rtmctl dials an address the listener covers: its own host, or any when it listens on every interface.
      if (listen.host !== undefined) expect(server.hostname, overlay).toBe(listen.host);
      if (overlay === "pods") {
        // port-forward connects to the Pod's loopback; the Service and the kubelet to the Pod IP: both, on the Pod's own interfaces only.
        expect(spec.hostNetwork ?? false).toBe(false);
        expect(listen.host).toBeUndefined();
        expect(server.hostname).toBe("127.0.0.1");
      }
      // The token: rtmctl reads exactly the file the server reads, a mounted Secret that is not optional.
      const tokenFile = env.RTMANAGER_INTERNAL_TOKEN_FILE!;
      expect(tokenFile, overlay).toMatch(/^\//);
      expect(() => resolveToken({}, { RTMANAGER_INTERNAL_TOKEN_FILE: tokenFile }, "list")).toThrow(`RTMANAGER_INTERNAL_TOKEN_FILE: cannot read ${tokenFile}`);
      const mount = (c.volumeMounts ?? []).find((m) => tokenFile.startsWith(`${m.mountPath}/`));
      const volume = spec.volumes?.find((v) => v.name === mount?.name);
      expect(volume?.secret?.secretName, overlay).toBe("rtmanager-token");
      expect(volume?.secret?.optional ?? false, overlay).toBe(false);
    }
  });

  it("docs/kubernetes.md creates every Secret the pods overlay mounts or references, before applying it, and calls none optional", () => {
    const doc = read("docs/kubernetes.md");
    const spec = one<Deployment>(objsOf("pods"), "Deployment").spec.template.spec;
    const needed = new Set<string>([
      ...(spec.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : [])),
      ...(spec.containers[0]!.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.name] : [])),
    ]);
    expect([...needed].sort()).toEqual(["rtmanager-db", "rtmanager-metrics-token", "rtmanager-token"]);
    const podsInstall = doc.indexOf("kubectl apply -k deploy/kustomize/overlays/pods");
    expect(podsInstall).toBeGreaterThan(0);
    const before = doc.slice(0, podsInstall);
    for (const name of needed) expect(before, name).toMatch(new RegExp(`create secret generic ${name}\\b`));
    expect(doc).not.toMatch(/optional for rtmanager/);
  });

  it("RBAC: the rendered rules are the source files' (checked against the code's calls end to end) with the Lease the pod takes", () => {
    const role = sourceRules("deploy/kustomize/base/rbac.yaml", "Role");
    const clusterRole = sourceRules("deploy/kustomize/components/cluster-wide/rbac-cluster-wide.yaml", "ClusterRole");
    for (const overlay of RUNTIME_OVERLAYS) {
      const objs = objsOf(overlay);
      const dep = one<Deployment>(objs, "Deployment");
      const env = environment(dep.spec.template.spec.containers[0]!, NAMESPACE);
      const leaseName = loadConfig(env).leaseName;
      const withLease = role.map((r) => (r.resourceNames ? { ...r, resourceNames: [leaseName] } : r));
      const renderedRole = one(objs, "Role") as Obj & { rules: Rule[] };
      expect(renderedRole.rules, overlay).toEqual(withLease);
      const sa = one(objs, "ServiceAccount");
      const binding = one(objs, "RoleBinding") as Obj & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
      expect(binding.roleRef).toMatchObject({ kind: "Role", name: renderedRole.metadata.name });
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: NAMESPACE }]);
      const clusterRoles = objs.filter((o) => o.kind === "ClusterRole") as (Obj & { rules: Rule[] })[];
      if (overlay.endsWith("cluster-wide")) {
        expect(clusterRoles.map((r) => r.rules)).toEqual([clusterRole]);
        const cb = one(objs, "ClusterRoleBinding") as Obj & { roleRef: { name: string }; subjects: { name: string; namespace: string }[] };
        expect(cb.roleRef.name).toBe(clusterRoles[0]!.metadata.name);
        expect(cb.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: NAMESPACE }]);
      } else {
        expect(clusterRoles, `${overlay} asks for no cluster-wide rights`).toEqual([]);
        expect(objs.filter((o) => o.kind === "ClusterRoleBinding")).toEqual([]);
      }
    }
  });

  it("namespaced and cluster-wide: the code's watch, create and Lease namespaces and Lease name are what the RBAC grants", () => {
    for (const overlay of RUNTIME_OVERLAYS) {
      const objs = objsOf(overlay);
      const env = environment(one<Deployment>(objs, "Deployment").spec.template.spec.containers[0]!, NAMESPACE);
      const config = loadConfig(env);
      const ns = kubeNamespaces(config);
      const role = one(objs, "Role") as Obj & { rules: Rule[] };
      const clusterRole = objs.find((o) => o.kind === "ClusterRole") as (Obj & { rules: Rule[] }) | undefined;
      expect(ns.watch, overlay).toBe(overlay === "docker-namespaced" ? NAMESPACE : undefined);
      expect(ns.lease, `${overlay}: lease namespace`).toBe(role.metadata.namespace);
      for (const verb of ["get", "update"]) expect(grants(role.rules, "coordination.k8s.io", "leases", verb, config.leaseName), `${overlay}: leases ${verb} ${config.leaseName}`).toBe(true);
      expect(grants(role.rules, "coordination.k8s.io", "leases", "get", "some-other-lease"), overlay).toBe(false);
      expect(grants(role.rules, "coordination.k8s.io", "leases", "create"), `${overlay}: leases create`).toBe(true);
      expect(ns.create).toBe(NAMESPACE);
      const rules = ns.watch === undefined ? clusterRole?.rules ?? [] : role.rules;
      for (const verb of ["list", "watch", "create", "update", "patch"]) expect(grants(rules, "galaxy.io", "gameruntimes", verb), `${overlay}: gameruntimes ${verb}`).toBe(true);
      expect(grants(rules, "galaxy.io", "gameruntimes/status", "patch"), overlay).toBe(true);
      expect(grants(rules, "", "events", "create"), overlay).toBe(true);
    }
  });

  describe("rendering a changed copy", () => {
    let tmp: string;
    beforeAll(() => {
      tmp = mkdtempSync(path.join(os.tmpdir(), "rtm-kustomize-"));
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it("components/pod-disruption-budget added to the pods overlay, as its comment says: one PDB in the games' namespace, selecting the label every game Pod carries, no voluntary disruption", () => {
      const copy = path.join(tmp, "kustomize-pdb");
      cpSync(kustomizeDir, copy, { recursive: true });
      const file = path.join(copy, "overlays/pods/kustomization.yaml");
      writeFileSync(file, readFileSync(file, "utf8").replace("  - ../../components/pod-runtime\n", "  - ../../components/pod-runtime\n  - ../../components/pod-disruption-budget\n"));
      const objs = render(path.join(copy, "overlays/pods"));
      const pdb = one(objs, "PodDisruptionBudget") as Obj & { spec: { selector: { matchLabels: Record<string, string> }; maxUnavailable: number } };
      expect(pdb.metadata.namespace).toBe(NAMESPACE);
      expect(pdb.spec.selector.matchLabels).toEqual({ [POD_LABELS.managed]: "true" });
      expect(pdb.spec.maxUnavailable).toBe(0);
      expect(objsOf("pods").some((o) => o.kind === "PodDisruptionBudget"), "opt-in: not in the pods overlay as shipped").toBe(false);
    });

    it("components/pod-client-namespace added to the pods overlay: RTMANAGER_POD_CLIENT_NAMESPACES names the namespace whose Role lets rtmanager's service account create Services there, and nothing else", () => {
      const copy = path.join(tmp, "kustomize-client");
      cpSync(kustomizeDir, copy, { recursive: true });
      const file = path.join(copy, "overlays/pods/kustomization.yaml");
      writeFileSync(file, readFileSync(file, "utf8").replace("  - ../../components/pod-runtime\n", "  - ../../components/pod-runtime\n  - ../../components/pod-client-namespace\n"));
      const objs = render(path.join(copy, "overlays/pods"));
      const deployment = one<Deployment>(objs, "Deployment");
      const config = loadConfig(environment(deployment.spec.template.spec.containers[0]!, NAMESPACE));
      expect(config.podClientNamespaces).toEqual(["galaxy-gm"]);
      const role = objs.find((o) => o.kind === "Role" && o.metadata.namespace === "galaxy-gm") as (Obj & { rules: Rule[] }) | undefined;
      expect(role?.rules).toEqual([{ apiGroups: [""], resources: ["services"], verbs: ["create"] }]);
      const binding = objs.find((o) => o.kind === "RoleBinding" && o.metadata.namespace === "galaxy-gm") as (Obj & { roleRef: { name: string }; subjects: { kind: string; name: string; namespace: string }[] }) | undefined;
      expect(binding?.roleRef.name).toBe(role?.metadata.name);
      expect(binding?.subjects).toEqual([{ kind: "ServiceAccount", name: deployment.spec.template.spec.serviceAccountName, namespace: deployment.metadata.namespace }]);
      expect(objsOf("pods").some((o) => o.metadata.namespace === "galaxy-gm"), "opt-in: not in the pods overlay as shipped").toBe(false);
    });

    it("the Role grants whatever Lease name RTMANAGER_LEASE_NAME is set to", () => {
      const copy = path.join(tmp, "kustomize");
      cpSync(kustomizeDir, copy, { recursive: true });
      const file = path.join(copy, "base/deployment.yaml");
      const text = readFileSync(file, "utf8");
      const changed = text.replace(/(- name: RTMANAGER_LEASE_NAME\n\s+value: )\S+/, "$1games-2-leader");
      expect(changed).not.toBe(text);
      writeFileSync(file, changed);
      for (const overlay of RUNTIME_OVERLAYS) {
        const objs = render(path.join(copy, "overlays", overlay));
        const env = environment(one<Deployment>(objs, "Deployment").spec.template.spec.containers[0]!, NAMESPACE);
        expect(loadConfig(env).leaseName).toBe("games-2-leader");
        const role = one(objs, "Role") as Obj & { rules: Rule[] };
        expect(grants(role.rules, "coordination.k8s.io", "leases", "update", "games-2-leader"), overlay).toBe(true);
        expect(grants(role.rules, "coordination.k8s.io", "leases", "update", "rtmanager-leader"), overlay).toBe(false);
      }
    });

    it("cluster-wide: the shipped allow-list `galaxy` admits docker.io/galaxy/* only, and an overlay of one's own sets another (issue 21)", () => {
      const imagesOf = (objs: Obj[]) => {
        const config = loadConfig(environment(one<Deployment>(objs, "Deployment").spec.template.spec.containers[0]!, NAMESPACE));
        return (ref: string) => imageRefused(ref, config.imageAllowlist) === null;
      };
      const shipped = imagesOf(objsOf("docker-cluster-wide"));
      expect(["galaxy/engine:1.0.0", "docker.io/galaxy/engine:1.0.0"].map(shipped)).toEqual([true, true]);
      expect(["registry.example/galaxy/engine:1.0.0", "galaxy-evil/engine:1.0.0", "engine:1.0.0"].map(shipped)).toEqual([false, false, false]);

      const mine = path.join(tmp, "mine-allowlist");
      mkdirSync(mine, { recursive: true });
      const base = path.relative(mine, path.join(kustomizeDir, "overlays/docker-cluster-wide"));
      const patch = [
        "apiVersion: apps/v1", "kind: Deployment", "metadata:", "  name: rtmanager", "spec:", "  template:", "    spec:", "      containers:", "        - name: rtmanager", "          env:",
        "            - name: RTMANAGER_IMAGE_ALLOWLIST", '              value: "registry.example/galaxy"',
      ].map((l) => `      ${l}`).join("\n");
      writeFileSync(path.join(mine, "kustomization.yaml"), `resources:\n  - ${base}\npatches:\n  - target:\n      kind: Deployment\n      name: rtmanager\n    patch: |-\n${patch}\n`);
      const patched = imagesOf(render(mine));
      expect(["registry.example/galaxy/engine:1.0.0", "galaxy/engine:1.0.0"].map(patched)).toEqual([true, false]);
    });

    it("an overlay of one's own that moves rtmanager to another namespace moves the Namespace, the bindings and the Lease with it", () => {
      const mine = path.join(tmp, "mine");
      mkdirSync(mine, { recursive: true });
      const base = path.relative(mine, path.join(kustomizeDir, "overlays/docker-cluster-wide"));
      writeFileSync(path.join(mine, "kustomization.yaml"), `resources:\n  - ${base}\nnamespace: games-ctl\n`);
      const objs = render(mine);
      expect(one(objs, "Namespace").metadata).toMatchObject({ name: "games-ctl", labels: { "pod-security.kubernetes.io/enforce": "privileged" } });
      for (const o of objs) if (KINDS[o.kind]!.namespaced) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("games-ctl");
      for (const kind of ["RoleBinding", "ClusterRoleBinding"]) {
        expect((one(objs, kind) as Obj & { subjects: { namespace: string }[] }).subjects[0]!.namespace, kind).toBe("games-ctl");
      }
      const env = environment(one<Deployment>(objs, "Deployment").spec.template.spec.containers[0]!, "games-ctl");
      expect(kubeNamespaces(loadConfig(env)).lease).toBe(one(objs, "Role").metadata.namespace);
    });
  });

  it("prometheus-operator: the PodMonitor scrapes the pods' http port as job=\"rtmanager\", like compose's scrape", () => {
    const objs = objsOf("prometheus-operator");
    type PodMonitor = Obj & { spec: { jobLabel?: string; selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string; authorization?: { credentials: { name: string; key: string } } }[] } };
    const pm = one<PodMonitor>(objs, "PodMonitor");
    const examples = parseAllDocuments(read("deploy/kustomize/base/secrets.example.yaml")).map((d) => d.toJS() as Obj & { stringData: Record<string, string> });
    for (const overlay of RUNTIME_OVERLAYS) {
      const dep = one<Deployment>(objsOf(overlay), "Deployment");
      const podLabels = dep.spec.template.metadata.labels;
      expect(podLabels, overlay).toMatchObject(pm.spec.selector.matchLabels);
      const endpoint = pm.spec.podMetricsEndpoints[0]!;
      expect(dep.spec.template.spec.containers[0]!.ports?.map((p) => p.name)).toContain(endpoint.port);
      expect(endpoint.path).toBe("/metrics");
      // A PodMonitor's job is "<namespace>/<name>" unless jobLabel names a pod label: then it is that label's value.
      expect(pm.spec.jobLabel, "jobLabel must be set, or job would be galaxy/rtmanager").toBeDefined();
      const job = podLabels[pm.spec.jobLabel!];
      const compose = parse(read("deploy/prometheus/prometheus.yml")) as { scrape_configs: { job_name: string }[] };
      expect(compose.scrape_configs.map((s) => s.job_name)).toContain(job);
      const alerts = read("deploy/prometheus/alerts.yml");
      const jobsInAlerts = [...alerts.matchAll(/up\{job="([^"]+)"\}/g)].map((m) => m[1]);
      expect(jobsInAlerts.length).toBeGreaterThanOrEqual(2);
      for (const j of jobsInAlerts) expect(j).toBe(job);
      const cred = endpoint.authorization?.credentials;
      expect(examples.find((s) => s.metadata.name === cred?.name)?.stringData).toHaveProperty(cred!.key);
    }
  });

  it("prometheus-operator: the PrometheusRule holds exactly alerts.yml's groups; the base's dashboard ConfigMap is for the Grafana sidecar", () => {
    const rule = one(objsOf("prometheus-operator"), "PrometheusRule") as Obj & { spec: { groups: unknown[] } };
    expect(rule.spec.groups).toEqual((parse(read("deploy/prometheus/alerts.yml")) as { groups: unknown[] }).groups);
    for (const overlay of RUNTIME_OVERLAYS) {
      const cm = one(objsOf(overlay), "ConfigMap", "rtmanager-grafana-dashboard") as Obj & { data: Record<string, string> };
      expect(cm.metadata.labels?.grafana_dashboard).toBe("1");
      expect(JSON.parse(cm.data["rtmanager-dashboard.json"]!)).toEqual(JSON.parse(read("deploy/grafana/rtmanager-dashboard.json")));
    }
  });
});
