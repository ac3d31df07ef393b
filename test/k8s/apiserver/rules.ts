/**
 * Per-kind rules the real API server applies on create and update: the
 * defaults a controller reads back (pods, services, PVCs) and the pod spec's
 * immutability (only images, activeDeadlineSeconds and added tolerations may
 * change in place).
 */
import { randomInt } from "node:crypto";
import { HttpError, stable, type Obj, type ResourceDef } from "./types.js";

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

/** Fills what the API server defaults, so objects read back as on a real cluster. */
export function applyCreateDefaults(def: ResourceDef, obj: Obj): void {
  const spec = (obj.spec ?? {}) as Json;
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
