/**
 * Every YAML file under deploy/ parses, the RBAC source files have the right
 * shape, and the examples validate against the CRD's openAPIV3Schema (ajv,
 * with the Kubernetes-only keywords translated) and against RuntimeSpecSchema
 * itself. What the kustomize overlays render (Deployment, namespaces, the
 * Lease, images) is checked in kustomize.test.ts.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ValidateFunction } from "ajv";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config.js";
import { FINALIZER } from "../../src/crd/api.js";
import type { StructuralSchema } from "../../src/crd/schema.js";
import { specFromObject } from "../../src/crd/resources.js";
import { RESERVED_ENV, RuntimeSpecSchema } from "../../src/model/declaration.js";
import { ajvValidator } from "../k8s/crdAjv.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const deployDir = path.join(root, "deploy");
/** The RBAC files test/integration/k8s.test.ts compares with the verbs the code calls. */
const RBAC = "kustomize/base/rbac.yaml";
const RBAC_CLUSTER_WIDE = "kustomize/components/cluster-wide/rbac-cluster-wide.yaml";

type Doc = Record<string, unknown> & { kind?: string; apiVersion?: string; metadata?: { name?: string; namespace?: string } };

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await yamlFiles(full)));
    else if (/\.ya?ml$/.test(entry.name)) out.push(full);
  }
  return out.sort();
}

async function docsOf(file: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await readFile(file, "utf8"));
  for (const d of docs) if (d.errors.length) throw new Error(`${path.relative(root, file)}: ${d.errors.map((e) => e.message).join("; ")}`);
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

async function crdValidator(): Promise<ValidateFunction> {
  const [crd] = await docsOf(path.join(deployDir, "crd/gameruntime.yaml"));
  const schema = (crd as { spec: { versions: { schema: { openAPIV3Schema: StructuralSchema } }[] } }).spec.versions[0]!.schema.openAPIV3Schema;
  return ajvValidator(schema);
}

describe("deploy/ manifests", () => {
  it("every YAML file parses; every Kubernetes manifest has apiVersion, kind and a name", async () => {
    const files = await yamlFiles(deployDir);
    const manifests = ["crd/gameruntime.yaml", RBAC, RBAC_CLUSTER_WIDE, "kustomize/base/deployment.yaml"];
    expect(files.map((f) => path.relative(deployDir, f))).toEqual(expect.arrayContaining(manifests));
    for (const file of files) {
      const docs = await docsOf(file);
      expect(docs.length, path.relative(root, file)).toBeGreaterThan(0);
      // Other YAML lives here too (compose, Prometheus): it must parse; only Kubernetes objects are checked further.
      const isManifest = manifests.includes(path.relative(deployDir, file)) || file.includes(`${path.sep}examples${path.sep}`);
      for (const d of docs) {
        // Grafana provisioning files carry a numeric apiVersion (1): not Kubernetes either.
        if (!isManifest && typeof d.apiVersion !== "string") continue;
        // kustomize's own files are not objects of the cluster (no metadata).
        if (d.kind === "Kustomization" || d.kind === "Component") continue;
        expect(typeof d.apiVersion, `${path.relative(root, file)}: apiVersion`).toBe("string");
        expect(typeof d.kind, `${path.relative(root, file)}: kind`).toBe("string");
        expect(typeof d.metadata?.name, `${path.relative(root, file)}: metadata.name`).toBe("string");
      }
    }
  });

  it("the examples validate against the CRD schema and RuntimeSpecSchema", async () => {
    const validate = await crdValidator();
    const examples = (await yamlFiles(path.join(deployDir, "examples"))).filter((f) => path.basename(f).startsWith("gameruntime-"));
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const file of examples) {
      for (const doc of await docsOf(file)) {
        const where = path.relative(root, file);
        expect(doc.apiVersion, where).toBe("galaxy.io/v1alpha1");
        expect(doc.kind, where).toBe("GameRuntime");
        const ok = validate(doc);
        expect(validate.errors ?? [], where).toEqual([]);
        expect(ok).toBe(true);
        const converted = specFromObject(doc.spec);
        expect(converted, where).toMatchObject({ ok: true });
        const spec = RuntimeSpecSchema.parse(converted.ok ? converted.value : doc.spec);
        // The CEL rules ajv cannot run.
        expect(doc.metadata?.name, `${where}: metadata.name == spec.gameId`).toBe(spec.gameId);
        for (const name of RESERVED_ENV) expect(Object.keys(spec.env ?? {}), where).not.toContain(name);
      }
    }
  });

  it("the CRD validator is not vacuous: bad objects fail it", async () => {
    const validate = await crdValidator();
    const good = { apiVersion: "galaxy.io/v1alpha1", kind: "GameRuntime", metadata: { name: "g1" }, spec: { gameId: "g1", imageRef: "galaxy/engine:1.0.0" } };
    expect(validate(good)).toBe(true);
    const bad = (spec: Record<string, unknown>) => validate({ ...good, spec: { ...good.spec, ...spec } });
    expect(bad({ imageRef: "Not A Ref" })).toBe(false);
    expect(bad({ gameId: "UPPER" })).toBe(false);
    expect(bad({ desiredState: "paused" })).toBe(false);
    // Quantities (int-or-string): a bare fraction, Docker's 512m and a negative size are refused.
    expect(bad({ resources: { cpus: 0.5 } })).toBe(false);
    expect(bad({ resources: { cpus: "500m", memory: "512Mi" } })).toBe(true);
    expect(bad({ resources: { memory: "512m" } })).toBe(false);
    expect(bad({ resources: { memory: "-1Gi" } })).toBe(false);
    expect(bad({ resources: { memroy: "1g" } })).toBe(false);
    expect(bad({ env: { A: 1 } })).toBe(false);
    expect(bad({ unknownField: true })).toBe(false);
    expect(validate({ ...good, spec: { gameId: "g1" } })).toBe(false);
  });

  // Which verbs the controller actually uses is derived from the test API server's request log in
  // test/integration/k8s.test.ts (end to end) and compared with these files there; here only their shape.
  it("RBAC: a ServiceAccount bound to a Role and a ClusterRole that never delete, and no finalizers subresource", async () => {
    const docs = await docsOf(path.join(deployDir, RBAC));
    const cluster = await docsOf(path.join(deployDir, RBAC_CLUSTER_WIDE));
    type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
    const sa = docs.find((d) => d.kind === "ServiceAccount");
    const role = docs.find((d) => d.kind === "Role") as { rules: Rule[] } | undefined;
    const binding = docs.find((d) => d.kind === "RoleBinding") as { subjects: { name: string }[]; roleRef: { name: string } } | undefined;
    const clusterRole = cluster.find((d) => d.kind === "ClusterRole") as { rules: Rule[] } | undefined;
    const clusterBinding = cluster.find((d) => d.kind === "ClusterRoleBinding") as { subjects: { name: string; namespace: string }[] } | undefined;
    expect(sa?.metadata?.name).toBe("rtmanager");
    expect(binding?.subjects[0]?.name).toBe("rtmanager");
    expect(clusterBinding?.subjects[0]).toMatchObject({ name: "rtmanager", namespace: sa?.metadata?.namespace });
    for (const r of [...role!.rules, ...clusterRole!.rules]) {
      expect(r.verbs).not.toContain("delete");
      expect(r.verbs).not.toContain("*");
      expect(r.resources).not.toContain("gameruntimes/finalizers");
    }
    // Leases: get/update only on the default Lease name (kustomize replaces it with RTMANAGER_LEASE_NAME);
    // create cannot be limited by name.
    const named = role!.rules.find((r) => r.resources.includes("leases") && r.resourceNames);
    expect(named?.resourceNames).toEqual([loadConfig({}).leaseName]);
    expect(loadConfig({}).leaseName).toBe(`${loadConfig({}).instanceId}-leader`);
    expect(clusterRole!.rules.some((r) => r.resources.includes("leases"))).toBe(false);
    expect(FINALIZER).toBe("galaxy.io/runtime-cleanup");
  });

  it("compose: rtmanager's image runs as its non-root user with no capability and no privilege gain; only state-init is root, with CHOWN alone", async () => {
    type Service = {
      image?: string;
      user?: string;
      entrypoint?: string[];
      cap_drop?: string[];
      cap_add?: string[];
      security_opt?: string[];
      read_only?: boolean;
      group_add?: string[];
      privileged?: boolean;
      volumes?: string[];
    };
    const [compose] = (await docsOf(path.join(deployDir, "compose.yaml"))) as unknown as [{ services: Record<string, Service> }];
    const ours = Object.entries(compose.services).filter(([, svc]) => svc.image?.startsWith("galaxy/rtmanager:"));
    expect(ours.map(([name]) => name).sort()).toEqual(["rtmanager", "state-init"]);
    for (const [name, svc] of ours) {
      expect(svc.cap_drop, name).toEqual(["ALL"]);
      expect(svc.security_opt, name).toEqual(["no-new-privileges:true"]);
      // Docker's default seccomp profile stays: nothing unconfined, nothing privileged.
      expect(svc.security_opt?.some((o) => /seccomp|apparmor/.test(o)), name).toBe(false);
      expect(svc.privileged ?? false, name).toBe(false);
      expect(svc.read_only, name).toBe(true);
    }
    const rtm = compose.services.rtmanager!;
    // No `user:`: the image's rtmanager (10001); the socket's group is added at run time.
    expect(rtm.user).toBeUndefined();
    expect(rtm.cap_add ?? []).toEqual([]);
    expect(rtm.group_add).toEqual(["${DOCKER_GID:-999}"]);
    const init = compose.services["state-init"]!;
    expect(init.user).toBe("0:0");
    expect(init.cap_add).toEqual(["CHOWN"]);
    // One chown of the state root that rtmanager mounts: nothing else runs as root.
    const stateRoot = "/var/lib/galaxy/state";
    expect(init.entrypoint).toEqual(["chown", "10001:10001", stateRoot]);
    expect(init.volumes).toEqual([`${stateRoot}:${stateRoot}`]);
    expect(rtm.volumes).toContain(`${stateRoot}:${stateRoot}`);
  });
});
