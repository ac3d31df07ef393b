/**
 * The Pod, Service and claim of one game, from an EngineSpec: pure, so
 * test/unit/pod-spec.test.ts checks every field without an API server.
 */
import type { V1PersistentVolumeClaim, V1Pod, V1Service, V1Toleration } from "@kubernetes/client-node";
import { ENGINE_PORT } from "../../model/engine.js";
import type { Placement } from "../../kube/placement.js";
import type { EngineSpec, ImagePullPolicy } from "../../model/ports.js";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import type { RestartPolicy } from "../../model/status.js";
import { claimName, ENGINE_CONTAINER, podName, podNameProblem, POD_ANNOTATIONS, POD_LABELS, serviceName, STATE_VOLUME } from "./names.js";

/** Mount point of the game's state inside the engine, as in Docker mode. */
export const GAME_STATE_PATH = "/var/lib/galaxy-game";
/**
 * A non-root uid/gid for engines whose image does not name one; fsGroup makes
 * the claim writable to it. The `restricted` Pod Security level requires
 * runAsNonRoot, so an image that insists on root cannot run as a Pod.
 */
export const ENGINE_UID = 65532;

/** Scheduling settings an operator may set (RTMANAGER_POD_TEMPLATE_FILE); everything else is the controller's. */
export interface PodTemplateOverrides {
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  priorityClassName?: string;
  serviceAccountName?: string;
  imagePullSecrets?: string[];
}

export interface PodManifestSettings {
  instance: string;
  imagePullPolicy: ImagePullPolicy;
  /** Grace period of a deleted Pod (RTMANAGER_CONTAINER_STOP_TIMEOUT). */
  terminationGraceSeconds: number;
  template: PodTemplateOverrides;
  /** The readiness probe on /healthz:8080 (RTMANAGER_PROBE_INTERVAL / _TIMEOUT / _FAILURE_THRESHOLD). */
  readiness: { periodSeconds: number; timeoutSeconds: number; failureThreshold: number };
  /** RTMANAGER_POD_CLIENT_NAMESPACES and the cluster's DNS domain: where `engine_endpoint` must resolve too. */
  clients?: { namespaces: string[]; clusterDomain: string };
}

export interface ClaimSettings {
  /** Empty: the cluster's default storage class. */
  storageClass: string;
  size: string;
  /** RTMANAGER_POD_CLAIM_RETENTION; 0 or absent: claims are kept (and never marked released). */
  retentionMs?: number;
}


const RESTART_POLICY: Record<RestartPolicy, "Always" | "OnFailure" | "Never"> = {
  always: "Always",
  "on-failure": "OnFailure",
  never: "Never",
};
const PULL_POLICY: Record<ImagePullPolicy, "Always" | "IfNotPresent" | "Never"> = {
  always: "Always",
  if_not_present: "IfNotPresent",
  never: "Never",
};

export function podRestartPolicy(policy: RestartPolicy | undefined): "Always" | "OnFailure" | "Never" {
  return RESTART_POLICY[policy ?? "on-failure"];
}

/** Refuses, as a permanent config error, a game whose Service name would not fit. */
export function assertPodNames(gameId: string): void {
  const problem = podNameProblem(gameId);
  if (problem) throw new RuntimeFailure("config_refused", "create", problem, { gameId });
}

function commonLabels(gameId: string, instance: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": "galaxy-game",
    "app.kubernetes.io/managed-by": "rtmanager",
    [POD_LABELS.managed]: "true",
    [POD_LABELS.instance]: instance,
    [POD_LABELS.gameId]: gameId,
  };
}

/** Requests equal to limits: Guaranteed QoS, the last class the kubelet evicts under node pressure. */
function resourcesOf(spec: EngineSpec): { requests: Record<string, string>; limits: Record<string, string> } {
  const values: Record<string, string> = {};
  if (spec.resources.cpus > 0) values.cpu = `${Math.max(1, Math.round(spec.resources.cpus * 1000))}m`;
  if (spec.resources.memoryBytes > 0) values.memory = String(spec.resources.memoryBytes);
  return { requests: { ...values }, limits: { ...values } };
}

function healthProbe(s: PodManifestSettings) {
  return {
    httpGet: { path: "/healthz", port: ENGINE_PORT },
    periodSeconds: s.readiness.periodSeconds,
    timeoutSeconds: s.readiness.timeoutSeconds,
    failureThreshold: s.readiness.failureThreshold,
    successThreshold: 1,
  };
}

export function podManifest(spec: EngineSpec, placement: Placement, s: PodManifestSettings): V1Pod {
  assertPodNames(spec.gameId);
  const labels = { ...commonLabels(spec.gameId, s.instance), [POD_LABELS.generation]: String(spec.generation), [POD_LABELS.configHash]: spec.configHash };
  const annotations: Record<string, string> = { [POD_ANNOTATIONS.imageRef]: spec.imageRef, [POD_ANNOTATIONS.safeToEvict]: "false" };
  if (spec.restartToken !== null) annotations[POD_ANNOTATIONS.restartToken] = spec.restartToken;
  const env = { ...spec.env, GAME_STATE_PATH, GAME_ID: spec.gameId };
  const t = s.template;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: podName(spec.gameId),
      namespace: placement.namespace,
      labels,
      annotations,
      ...(placement.owner ? { ownerReferences: [placement.owner] } : {}),
    },
    spec: {
      restartPolicy: podRestartPolicy(spec.restartPolicy),
      terminationGracePeriodSeconds: s.terminationGraceSeconds,
      // Hundreds of game Services in one namespace would otherwise become env variables of every engine.
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: ENGINE_UID,
        runAsGroup: ENGINE_UID,
        fsGroup: ENGINE_UID,
        seccompProfile: { type: "RuntimeDefault" },
      },
      containers: [
        {
          name: ENGINE_CONTAINER,
          image: spec.imageRef,
          imagePullPolicy: PULL_POLICY[s.imagePullPolicy],
          env: Object.entries(env).map(([name, value]) => ({ name, value })),
          ports: [{ name: "http", containerPort: ENGINE_PORT }],
          resources: resourcesOf(spec),
          // Readiness only: an engine failing /healthz is taken out of its Service and reported, not killed
          // (a liveness kill of an engine that exits 0 on SIGTERM would end an OnFailure Pod for good).
          readinessProbe: healthProbe(s),
          volumeMounts: [{ name: STATE_VOLUME, mountPath: GAME_STATE_PATH }],
          securityContext: {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
            seccompProfile: { type: "RuntimeDefault" },
          },
        },
      ],
      volumes: [{ name: STATE_VOLUME, persistentVolumeClaim: { claimName: claimName(spec.gameId) } }],
      ...(t.nodeSelector ? { nodeSelector: t.nodeSelector } : {}),
      ...(t.tolerations ? { tolerations: t.tolerations } : {}),
      ...(t.priorityClassName ? { priorityClassName: t.priorityClassName } : {}),
      ...(t.serviceAccountName ? { serviceAccountName: t.serviceAccountName } : {}),
      ...(t.imagePullSecrets ? { imagePullSecrets: t.imagePullSecrets.map((name) => ({ name })) } : {}),
    },
  };
}

/**
 * A ClusterIP Service named like the engine, so `http://galaxy-game-{id}:8080`
 * resolves inside the cluster. ClusterIP rather than headless: the name keeps
 * one virtual IP while the Pod behind it is recreated with a new IP, so a
 * client that cached the DNS answer (Game Master's HTTP keep-alive pool)
 * still reaches the engine; a headless name would point at the dead Pod's IP
 * until the cache expires.
 */
export function serviceManifest(gameId: string, placement: Placement, instance: string): V1Service {
  assertPodNames(gameId);
  const labels = commonLabels(gameId, instance);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: {
      name: serviceName(gameId),
      namespace: placement.namespace,
      labels,
      ...(placement.owner ? { ownerReferences: [placement.owner] } : {}),
    },
    spec: {
      type: "ClusterIP",
      selector: { [POD_LABELS.managed]: "true", [POD_LABELS.instance]: instance, [POD_LABELS.gameId]: gameId },
      ports: [{ name: "http", port: ENGINE_PORT, targetPort: ENGINE_PORT, protocol: "TCP" }],
    },
  };
}

/**
 * `galaxy-game-{id}` in a client's namespace (Game Master's), as a DNS alias
 * (CNAME) of the game's Service: the contract's short `engine_endpoint`
 * resolves there through the client's own search list. No owner reference (an
 * owner cannot be in another namespace); labelled like the game's objects.
 */
export function aliasServiceManifest(gameId: string, clientNamespace: string, gamesNamespace: string, instance: string, clusterDomain: string): V1Service {
  assertPodNames(gameId);
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: serviceName(gameId), namespace: clientNamespace, labels: commonLabels(gameId, instance) },
    spec: { type: "ExternalName", externalName: `${serviceName(gameId)}.${gamesNamespace}.svc.${clusterDomain}` },
  };
}

/** The game's state. No owner reference: deleting the GameRuntime (or cleanup) never deletes state, as in Docker mode. */
export function claimManifest(gameId: string, placement: Placement, instance: string, s: ClaimSettings): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: claimName(gameId), namespace: placement.namespace, labels: commonLabels(gameId, instance) },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: s.size } },
      ...(s.storageClass ? { storageClassName: s.storageClass } : {}),
    },
  };
}
