import path from "node:path";
import { z } from "zod";
import { RESOURCE_FLOORS } from "./model/declaration.js";
import { parseDuration, parseMemory } from "./model/duration.js";
import { GAME_ID_PATTERN } from "./model/gameId.js";
import { parseEngineHardening, type EngineHardening } from "./runtime/engineHardening.js";
import { HttpConfigError, loadHttpSettings, parseListenAddress, type HttpSettings } from "./httpConfig.js";

import { CONFIG_DOCS } from "./configDocs.js";

export { CONFIG_DOCS };

/** A Kubernetes object name such as a Lease's (RFC 1123 subdomain; the length is checked apart). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const duration = (env: string) =>
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === null) {
      ctx.addIssue({ code: "custom", message: `${env}: ${JSON.stringify(text)} is not a duration (e.g. 500ms, 30s, 5m, 30d)` });
      return z.NEVER;
    }
    return ms;
  });
const positiveInt = (env: string) =>
  z.string().transform((text, ctx) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) {
      ctx.addIssue({ code: "custom", message: `${env}: ${JSON.stringify(text)} is not a positive integer` });
      return z.NEVER;
    }
    return n;
  });
const bool = (env: string) =>
  z.string().transform((text, ctx) => {
    if (/^(true|1|yes)$/i.test(text)) return true;
    if (/^(false|0|no|)$/i.test(text)) return false;
    ctx.addIssue({ code: "custom", message: `${env}: ${JSON.stringify(text)} is not true or false` });
    return z.NEVER;
  });

export interface Config extends HttpSettings {
  databaseUrl: string | undefined;
  dataDir: string;
  source: "store" | "kubernetes";
  kubeNamespace: string;
  /** Where REST-created GameRuntime objects go; "" = the default (see src/crd/namespaces.ts). */
  kubeCreateNamespace: string;
  /** The pod's namespace (downward API), if known. */
  podNamespace: string | undefined;
  instanceId: string;
  httpHost: string | undefined;
  httpPort: number;
  /** Set when RTMANAGER_INTERNAL_HTTP_ADDR is `unix:/path`. */
  httpSocketPath: string | undefined;
  internalToken: string | undefined;
  dockerNetwork: string;
  stateRoot: string;
  imagePullPolicy: "always" | "if_not_present" | "never";
  stopTimeoutMs: number;
  retentionMs: number;
  resyncIntervalMs: number;
  concurrency: number;
  /** RTMANAGER_MAX_GAMES. */
  maxGames: number;
  defaultCpus: number;
  defaultMemoryBytes: number;
  defaultPidsLimit: number;
  probeIntervalMs: number;
  probeTimeoutMs: number;
  probeFailureThreshold: number;
  enginePublishHost: string | undefined;
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  crashLoopResetMs: number;
  retryBackoffBaseMs: number;
  retryBackoffMaxMs: number;
  opTimeoutMs: number;
  patchMinHealthyMs: number;
  patchHealthTimeoutMs: number;
  startWaitHealthy: boolean;
  quarantineAfter: number;
  quarantineWindowMs: number;
  patchCanaries: number;
  orphanGraceMs: number;
  orphanDryRun: boolean;
  /** Kubernetes mode: the leader Lease's name. */
  leaseName: string;
  leaseDurationMs: number;
  leaseRenewDeadlineMs: number;
  leaseRetryPeriodMs: number;
  watchSilenceLimitMs: number;
  logLevel: string;
  /** How every engine is confined, for whichever runtime runs it (RTMANAGER_ENGINE_*). */
  engineHardening: EngineHardening;
  eventRetentionMs: number;
  oplogRetentionMs: number;
  /** 0: no statement timeout. */
  sqlStatementTimeoutMs: number;
  kubeRequestTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Byte ceiling of a non-follow engine-log read. */
  logsMaxBytes: number;
  /** Bound of one followed engine-log stream. */
  logsFollowMaxMs: number;
  runtime: "docker" | "kubernetes";
  /** Pod runtime: the namespace of game objects (resolved: never empty). */
  gamePodNamespace: string;
  podStorageClass: string;
  /** RTMANAGER_POD_CLIENT_NAMESPACES: where each game also gets an ExternalName Service. */
  podClientNamespaces: string[];
  podClusterDomain: string;
  podStorageSize: string;
  podTemplateFile: string;
  podStartTimeoutMs: number;
  /** Pod runtime: delete a released claim after this long; 0: never. */
  podClaimRetentionMs: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function httpSettings(env: NodeJS.ProcessEnv, get: (name: string) => string) {
  try {
    const listen = parseListenAddress(get("RTMANAGER_INTERNAL_HTTP_ADDR"));
    return { listen, settings: loadHttpSettings(env, get, listen) };
  } catch (err) {
    if (err instanceof HttpConfigError) throw new ConfigError(`invalid configuration: ${err.message}`);
    throw err;
  }
}

/** Reads and validates the environment; a bad value throws naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const get = (name: string): string => {
    const v = env[name];
    if (v !== undefined) return v;
    return CONFIG_DOCS.find((s) => s.env === name)?.default ?? "";
  };
  const schema = z.object({
    RTMANAGER_SOURCE: z.enum(["store", "kubernetes"], { message: "RTMANAGER_SOURCE must be store or kubernetes" }),
    RTMANAGER_INSTANCE_ID: z.string().regex(GAME_ID_PATTERN, "RTMANAGER_INSTANCE_ID must be a DNS label (lowercase letters, digits, '-')"),
    RTMANAGER_DOCKER_NETWORK: z.string().min(1, "RTMANAGER_DOCKER_NETWORK must not be empty"),
    RTMANAGER_IMAGE_PULL_POLICY: z.enum(["always", "if_not_present", "never"], {
      message: "RTMANAGER_IMAGE_PULL_POLICY must be always, if_not_present or never",
    }),
    RTMANAGER_CONTAINER_STOP_TIMEOUT: duration("RTMANAGER_CONTAINER_STOP_TIMEOUT"),
    RTMANAGER_CONTAINER_RETENTION: duration("RTMANAGER_CONTAINER_RETENTION"),
    RTMANAGER_RESYNC_INTERVAL: duration("RTMANAGER_RESYNC_INTERVAL"),
    RTMANAGER_CONCURRENCY: positiveInt("RTMANAGER_CONCURRENCY"),
    RTMANAGER_MAX_GAMES: positiveInt("RTMANAGER_MAX_GAMES"),
    RTMANAGER_DEFAULT_CPUS: z.string().transform((t, ctx) => {
      const n = Number(t);
      if (!(n >= RESOURCE_FLOORS.cpus)) {
        ctx.addIssue({ code: "custom", message: `RTMANAGER_DEFAULT_CPUS: ${JSON.stringify(t)} is not a number of at least ${RESOURCE_FLOORS.cpus}` });
        return z.NEVER;
      }
      return n;
    }),
    RTMANAGER_DEFAULT_MEMORY: z.string().transform((t, ctx) => {
      const n = parseMemory(t);
      if (n === null || n < RESOURCE_FLOORS.memoryBytes) {
        ctx.addIssue({ code: "custom", message: `RTMANAGER_DEFAULT_MEMORY: ${JSON.stringify(t)} is not a size of at least 6m, such as 512m` });
        return z.NEVER;
      }
      return n;
    }),
    RTMANAGER_DEFAULT_PIDS_LIMIT: positiveInt("RTMANAGER_DEFAULT_PIDS_LIMIT"),
    RTMANAGER_PROBE_INTERVAL: duration("RTMANAGER_PROBE_INTERVAL"),
    RTMANAGER_PROBE_TIMEOUT: duration("RTMANAGER_PROBE_TIMEOUT"),
    RTMANAGER_PROBE_FAILURE_THRESHOLD: positiveInt("RTMANAGER_PROBE_FAILURE_THRESHOLD"),
    RTMANAGER_RESTART_BACKOFF_BASE: duration("RTMANAGER_RESTART_BACKOFF_BASE"),
    RTMANAGER_RESTART_BACKOFF_MAX: duration("RTMANAGER_RESTART_BACKOFF_MAX"),
    RTMANAGER_CRASHLOOP_RESET: duration("RTMANAGER_CRASHLOOP_RESET"),
    RTMANAGER_RETRY_BACKOFF_BASE: duration("RTMANAGER_RETRY_BACKOFF_BASE"),
    RTMANAGER_RETRY_BACKOFF_MAX: duration("RTMANAGER_RETRY_BACKOFF_MAX"),
    RTMANAGER_OP_TIMEOUT: duration("RTMANAGER_OP_TIMEOUT"),
    RTMANAGER_PATCH_MIN_HEALTHY: duration("RTMANAGER_PATCH_MIN_HEALTHY"),
    RTMANAGER_PATCH_HEALTH_TIMEOUT: duration("RTMANAGER_PATCH_HEALTH_TIMEOUT"),
    RTMANAGER_START_WAIT_HEALTHY: bool("RTMANAGER_START_WAIT_HEALTHY"),
    RTMANAGER_QUARANTINE_AFTER: positiveInt("RTMANAGER_QUARANTINE_AFTER"),
    RTMANAGER_QUARANTINE_WINDOW: duration("RTMANAGER_QUARANTINE_WINDOW"),
    RTMANAGER_PATCH_CANARIES: z.string().regex(/^[0-9]{1,6}$/, "RTMANAGER_PATCH_CANARIES must be 0 or a positive integer").transform(Number),
    RTMANAGER_ORPHAN_GRACE: duration("RTMANAGER_ORPHAN_GRACE"),
    RTMANAGER_ORPHAN_DRY_RUN: bool("RTMANAGER_ORPHAN_DRY_RUN"),
    RTMANAGER_LEASE_DURATION: duration("RTMANAGER_LEASE_DURATION"),
    RTMANAGER_LEASE_RENEW_DEADLINE: duration("RTMANAGER_LEASE_RENEW_DEADLINE"),
    RTMANAGER_LEASE_RETRY_PERIOD: duration("RTMANAGER_LEASE_RETRY_PERIOD"),
    RTMANAGER_WATCH_SILENCE_LIMIT: duration("RTMANAGER_WATCH_SILENCE_LIMIT"),
    RTMANAGER_EVENT_RETENTION: duration("RTMANAGER_EVENT_RETENTION"),
    RTMANAGER_OPLOG_RETENTION: duration("RTMANAGER_OPLOG_RETENTION"),
    RTMANAGER_SQL_STATEMENT_TIMEOUT: duration("RTMANAGER_SQL_STATEMENT_TIMEOUT"),
    RTMANAGER_KUBE_REQUEST_TIMEOUT: duration("RTMANAGER_KUBE_REQUEST_TIMEOUT"),
    RTMANAGER_SHUTDOWN_TIMEOUT: duration("RTMANAGER_SHUTDOWN_TIMEOUT"),
    RTMANAGER_LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"], {
      message: "RTMANAGER_LOG_LEVEL must be trace, debug, info, warn, error, fatal or silent",
    }),
    RTMANAGER_LOGS_MAX_BYTES: z.string().transform((t, ctx) => {
      const n = parseMemory(t);
      if (n === null) {
        ctx.addIssue({ code: "custom", message: `RTMANAGER_LOGS_MAX_BYTES: ${JSON.stringify(t)} is not a size such as 1m` });
        return z.NEVER;
      }
      return n;
    }),
    RTMANAGER_LOGS_FOLLOW_MAX: duration("RTMANAGER_LOGS_FOLLOW_MAX"),
     RTMANAGER_RUNTIME: z.enum(["docker", "kubernetes"], { message: "RTMANAGER_RUNTIME must be docker or kubernetes" }),
    RTMANAGER_POD_NAMESPACE: z.string().regex(/^$|^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "RTMANAGER_POD_NAMESPACE must be empty or a namespace name (a DNS label)"),
    RTMANAGER_POD_CLIENT_NAMESPACES: z
      .string()
      .transform((t) => t.split(",").map((n) => n.trim()).filter(Boolean))
      .refine((list) => list.every((n) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)), "RTMANAGER_POD_CLIENT_NAMESPACES must be a comma-separated list of namespace names (DNS labels)"),
    RTMANAGER_POD_CLUSTER_DOMAIN: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "RTMANAGER_POD_CLUSTER_DOMAIN must be a DNS domain such as cluster.local"),
    RTMANAGER_POD_STORAGE_SIZE: z.string().regex(/^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/, "RTMANAGER_POD_STORAGE_SIZE must be a Kubernetes quantity such as 1Gi"),
    RTMANAGER_POD_START_TIMEOUT: duration("RTMANAGER_POD_START_TIMEOUT"),
    RTMANAGER_POD_CLAIM_RETENTION: duration("RTMANAGER_POD_CLAIM_RETENTION"),
  });
  const raw = Object.fromEntries(Object.keys(schema.shape).map((k) => [k, get(k)]));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      `invalid configuration: ${parsed.error.issues.map((i) => (i.message.startsWith("RTMANAGER_") ? i.message : `${String(i.path[0])}: ${i.message}`)).join("; ")}`,
    );
  }
  const v = parsed.data;
  const { listen, settings: http } = httpSettings(env, get);
  if (v.RTMANAGER_LEASE_RENEW_DEADLINE >= v.RTMANAGER_LEASE_DURATION) {
    throw new ConfigError("invalid configuration: RTMANAGER_LEASE_RENEW_DEADLINE must be shorter than RTMANAGER_LEASE_DURATION");
  }
  const token = env.RTMANAGER_INTERNAL_TOKEN;
  const kubeNamespace = get("RTMANAGER_KUBE_NAMESPACE");
  const kubeCreateNamespace = get("RTMANAGER_KUBE_CREATE_NAMESPACE");
  const podNamespace = env.POD_NAMESPACE || undefined;
  for (const [name, value] of [
    ["RTMANAGER_KUBE_NAMESPACE", kubeNamespace],
    ["RTMANAGER_KUBE_CREATE_NAMESPACE", kubeCreateNamespace],
    ["POD_NAMESPACE", podNamespace ?? ""],
  ] as const) {
    if (value !== "" && !GAME_ID_PATTERN.test(value)) throw new ConfigError(`invalid configuration: ${name}: ${JSON.stringify(value)} is not a namespace name (a DNS label)`);
  }
  const leaseName = get("RTMANAGER_LEASE_NAME") || `${v.RTMANAGER_INSTANCE_ID}-leader`;
  if (leaseName.length > 253 || !DNS_SUBDOMAIN.test(leaseName)) {
    throw new ConfigError(`invalid configuration: RTMANAGER_LEASE_NAME: ${JSON.stringify(leaseName)} is not a Lease name (a DNS subdomain)`);
  }
  if (kubeNamespace !== "" && kubeCreateNamespace !== "" && kubeCreateNamespace !== kubeNamespace) {
    throw new ConfigError(
      "invalid configuration: RTMANAGER_KUBE_CREATE_NAMESPACE must be empty or equal to RTMANAGER_KUBE_NAMESPACE: objects created elsewhere would never be watched",
    );
  }
  const allowAny = get("RTMANAGER_ALLOW_ANY_IMAGE");
  if (!/^(true|false|)$/i.test(allowAny)) throw new ConfigError(`invalid configuration: RTMANAGER_ALLOW_ANY_IMAGE: ${JSON.stringify(allowAny)} is not true or false`);
  if (v.RTMANAGER_SOURCE === "kubernetes" && kubeNamespace === "" && http.imageAllowlist.length === 0 && !/^true$/i.test(allowAny)) {
    // Cluster-wide, whoever may create a GameRuntime in any namespace chooses an image the node's runtime runs.
    throw new ConfigError(
      "invalid configuration: cluster-wide Kubernetes mode (RTMANAGER_KUBE_NAMESPACE empty) needs RTMANAGER_IMAGE_ALLOWLIST: any namespace's GameRuntime would otherwise run any image; set RTMANAGER_ALLOW_ANY_IMAGE=true to accept that",
    );
  }
  const hardening = parseEngineHardening(get, process.getgid?.() ?? 0);
  if (!hardening.ok) throw new ConfigError(`invalid configuration: ${hardening.issues.join("; ")}`);
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: path.resolve(get("RTMANAGER_DATA_DIR")),
    source: v.RTMANAGER_SOURCE,
    kubeNamespace,
    kubeCreateNamespace,
    podNamespace,
    instanceId: v.RTMANAGER_INSTANCE_ID,
    ...http,
    httpHost: listen.host,
    httpPort: listen.port,
    httpSocketPath: listen.socketPath,
    internalToken: token ? token : undefined,
    dockerNetwork: v.RTMANAGER_DOCKER_NETWORK,
    // Docker bind mounts need an absolute host path.
    stateRoot: path.resolve(get("RTMANAGER_STATE_ROOT")),
    imagePullPolicy: v.RTMANAGER_IMAGE_PULL_POLICY,
    stopTimeoutMs: v.RTMANAGER_CONTAINER_STOP_TIMEOUT,
    retentionMs: v.RTMANAGER_CONTAINER_RETENTION,
    resyncIntervalMs: v.RTMANAGER_RESYNC_INTERVAL,
    concurrency: v.RTMANAGER_CONCURRENCY,
    maxGames: v.RTMANAGER_MAX_GAMES,
    defaultCpus: v.RTMANAGER_DEFAULT_CPUS,
    defaultMemoryBytes: v.RTMANAGER_DEFAULT_MEMORY,
    defaultPidsLimit: v.RTMANAGER_DEFAULT_PIDS_LIMIT,
    probeIntervalMs: v.RTMANAGER_PROBE_INTERVAL,
    probeTimeoutMs: v.RTMANAGER_PROBE_TIMEOUT,
    probeFailureThreshold: v.RTMANAGER_PROBE_FAILURE_THRESHOLD,
    enginePublishHost: env.RTMANAGER_ENGINE_PUBLISH_HOST || undefined,
    restartBackoffBaseMs: v.RTMANAGER_RESTART_BACKOFF_BASE,
    restartBackoffMaxMs: v.RTMANAGER_RESTART_BACKOFF_MAX,
    crashLoopResetMs: v.RTMANAGER_CRASHLOOP_RESET,
    retryBackoffBaseMs: v.RTMANAGER_RETRY_BACKOFF_BASE,
    retryBackoffMaxMs: v.RTMANAGER_RETRY_BACKOFF_MAX,
    opTimeoutMs: v.RTMANAGER_OP_TIMEOUT,
    patchMinHealthyMs: v.RTMANAGER_PATCH_MIN_HEALTHY,
    patchHealthTimeoutMs: v.RTMANAGER_PATCH_HEALTH_TIMEOUT,
    startWaitHealthy: v.RTMANAGER_START_WAIT_HEALTHY,
    quarantineAfter: v.RTMANAGER_QUARANTINE_AFTER,
    quarantineWindowMs: v.RTMANAGER_QUARANTINE_WINDOW,
    patchCanaries: v.RTMANAGER_PATCH_CANARIES,
    orphanGraceMs: v.RTMANAGER_ORPHAN_GRACE,
    orphanDryRun: v.RTMANAGER_ORPHAN_DRY_RUN,
    leaseName,
    leaseDurationMs: v.RTMANAGER_LEASE_DURATION,
    leaseRenewDeadlineMs: v.RTMANAGER_LEASE_RENEW_DEADLINE,
    leaseRetryPeriodMs: v.RTMANAGER_LEASE_RETRY_PERIOD,
    watchSilenceLimitMs: v.RTMANAGER_WATCH_SILENCE_LIMIT,
    logLevel: v.RTMANAGER_LOG_LEVEL,
    engineHardening: hardening.value,
    eventRetentionMs: v.RTMANAGER_EVENT_RETENTION,
    oplogRetentionMs: v.RTMANAGER_OPLOG_RETENTION,
    sqlStatementTimeoutMs: v.RTMANAGER_SQL_STATEMENT_TIMEOUT,
    kubeRequestTimeoutMs: v.RTMANAGER_KUBE_REQUEST_TIMEOUT,
    shutdownTimeoutMs: v.RTMANAGER_SHUTDOWN_TIMEOUT,
    logsMaxBytes: v.RTMANAGER_LOGS_MAX_BYTES,
    logsFollowMaxMs: v.RTMANAGER_LOGS_FOLLOW_MAX,
    runtime: v.RTMANAGER_RUNTIME,
    gamePodNamespace: v.RTMANAGER_POD_NAMESPACE || podNamespace || "default",
    podStorageClass: get("RTMANAGER_POD_STORAGE_CLASS"),
    podClientNamespaces: v.RTMANAGER_POD_CLIENT_NAMESPACES,
    podClusterDomain: v.RTMANAGER_POD_CLUSTER_DOMAIN,
    podStorageSize: v.RTMANAGER_POD_STORAGE_SIZE,
    podTemplateFile: get("RTMANAGER_POD_TEMPLATE_FILE"),
    podStartTimeoutMs: v.RTMANAGER_POD_START_TIMEOUT,
    podClaimRetentionMs: v.RTMANAGER_POD_CLAIM_RETENTION,
  };
}
