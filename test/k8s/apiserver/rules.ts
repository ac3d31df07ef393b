/**
 * Per-kind rules the real API server applies on create and update: the
 * defaults a controller reads back (pods, services, PVCs) and the pod spec's
 * immutability (only images, activeDeadlineSeconds and added tolerations may
 * change in place).
 */
import { randomInt } from "node:crypto";
import { HttpError, nowTime, stable, type Obj, type ResourceDef } from "./types.js";

type Json = Record<string, unknown>;

const PROBE_DEFAULTS = { timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 };

function defaultContainer(c: Json): void {
  const image = String(c.image ?? "");
  const tag = /:([^/:@]+)$/.exec(image)?.[1];
  c.imagePullPolicy ??= !image.includes("@") && (tag === undefined || tag === "latest") ? "Always" : "IfNotPresent";
  c.terminationMessagePath ??= "/dev/termination-log";
  c.terminationMessagePolicy ??= "File";
  for (const p of (c.ports as Json[] | undefined) ?? []) p.protocol ??= "TCP";
  for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) {
    const pr = c[probe] as Json | undefined;
    if (!pr) continue;
    for (const [k, v] of Object.entries(PROBE_DEFAULTS)) pr[k] ??= v;
    const http = pr.httpGet as Json | undefined;
    if (http) {
      http.scheme ??= "HTTP";
      http.path ??= "/";
    }
  }
}

/**
 * What every write (create and update) of these kinds goes through upstream:
 * a Secret's write-only `stringData` is merged into `data`, base64, and
 * dropped (pkg/apis/core/v1/conversion.go Convert_v1_Secret_To_core_Secret);
 * a Namespace always carries `kubernetes.io/metadata.name` (pkg/apis/core/v1
 * defaults.go SetDefaults_Namespace).
 */
export function applyWriteDefaults(def: ResourceDef, obj: Obj): void {
  if (def.key === "secrets") {
    const stringData = obj.stringData as Record<string, string> | undefined;
    if (stringData) {
      const data = { ...((obj.data ?? {}) as Record<string, string>) };
      for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(String(v), "utf8").toString("base64");
      obj.data = data;
      delete obj.stringData;
    }
    obj.type ??= "Opaque";
  } else if (def.key === "namespaces") {
    obj.metadata.labels = { ...(obj.metadata.labels ?? {}), "kubernetes.io/metadata.name": obj.metadata.name };
  }
}

/**
 * Deployment defaults (pkg/apis/apps/v1/defaults.go SetDefaults_Deployment)
 * and a CRD's names accepted and Established at once (apiextensions-apiserver's
 * NamingConditionController and EstablishingController do it within moments).
 */
function applyWorkloadDefaults(def: ResourceDef, obj: Obj, spec: Json): void {
  if (def.key === "deployments") {
    spec.replicas ??= 1;
    spec.revisionHistoryLimit ??= 10;
    spec.progressDeadlineSeconds ??= 600;
    spec.strategy ??= { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } };
    obj.spec = spec;
  } else if (def.key === "customresourcedefinitions") {
    const conditions = ["NamesAccepted", "Established"].map((type) => ({ type, status: "True", reason: type === "Established" ? "InitialNamesAccepted" : "NoConflicts", lastTransitionTime: nowTime() }));
    obj.status = { acceptedNames: spec.names ?? {}, storedVersions: ((spec.versions as Json[] | undefined) ?? []).filter((v) => v.storage).map((v) => v.name), conditions };
  } else if (def.key === "namespaces") {
    obj.spec = { finalizers: ["kubernetes"], ...spec };
    obj.status = { phase: "Active" };
  }
}

/** Fills what the API server defaults, so objects read back as on a real cluster. */
export function applyCreateDefaults(def: ResourceDef, obj: Obj): void {
  const spec = (obj.spec ?? {}) as Json;
  applyWriteDefaults(def, obj);
  applyWorkloadDefaults(def, obj, spec);
  if (def.key === "pods") {
    spec.restartPolicy ??= "Always";
    spec.terminationGracePeriodSeconds ??= 30;
    spec.dnsPolicy ??= "ClusterFirst";
    spec.schedulerName ??= "default-scheduler";
    spec.enableServiceLinks ??= true;
    for (const c of [...((spec.containers as Json[] | undefined) ?? []), ...((spec.initContainers as Json[] | undefined) ?? [])]) defaultContainer(c);
    if (!Array.isArray(spec.containers) || spec.containers.length === 0) throw new HttpError(422, "Invalid", `Pod "${obj.metadata.name}" is invalid: spec.containers: Required value`);
    obj.spec = spec;
    obj.status = { phase: "Pending", qosClass: "BestEffort" };
  } else if (def.key === "services") {
    spec.type ??= "ClusterIP";
    spec.sessionAffinity ??= "None";
    if (spec.clusterIP === undefined) spec.clusterIP = `10.96.${randomInt(0, 255)}.${randomInt(1, 254)}`;
    spec.clusterIPs ??= [spec.clusterIP];
    for (const p of (spec.ports as Json[] | undefined) ?? []) {
      p.protocol ??= "TCP";
      p.targetPort ??= p.port;
    }
    obj.spec = spec;
    obj.status = { loadBalancer: {} };
  } else if (def.key === "persistentvolumeclaims") {
    spec.volumeMode ??= "Filesystem";
    obj.spec = spec;
    obj.status = { phase: "Pending" };
  }
}

/** The pod spec fields an update may change (pkg/apis/core/validation ValidatePodUpdate). */
export function validatePodUpdate(existing: Obj, next: Obj): void {
  const before = structuredClone((existing.spec ?? {}) as Json);
  const after = structuredClone((next.spec ?? {}) as Json);
  for (const s of [before, after]) {
    delete s.activeDeadlineSeconds;
    delete s.tolerations;
    for (const list of ["containers", "initContainers"]) for (const c of (s[list] as Json[] | undefined) ?? []) delete c.image;
  }
  const oldTol = stable(((existing.spec as Json | undefined)?.tolerations as unknown[] | undefined) ?? []);
  const newTol = ((next.spec as Json | undefined)?.tolerations as unknown[] | undefined) ?? [];
  const tolerationsKept = (((existing.spec as Json | undefined)?.tolerations as unknown[] | undefined) ?? []).every((t) => newTol.some((n) => stable(n) === stable(t)));
  if (stable(before) !== stable(after) || (!tolerationsKept && oldTol !== "[]")) {
    throw new HttpError(
      422,
      "Invalid",
      `Pod "${existing.metadata.name}" is invalid: spec: Forbidden: pod updates may not change fields other than \`spec.containers[*].image\`,\`spec.initContainers[*].image\`,\`spec.activeDeadlineSeconds\`,\`spec.tolerations\` (only additions to existing tolerations)`,
    );
  }
}
