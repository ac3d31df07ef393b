import path from "node:path";
import { parseEngineHardening, type EngineHardening } from "./runtime/engineHardening.js";
import { HttpConfigError, loadHttpSettings, parseListenAddress, type HttpSettings } from "./httpConfig.js";
import { CONFIG_DOCS, SETTINGS, type SettingValues } from "./configDocs.js";
import { crossCheckProblems, readSettings } from "./configRead.js";

export { CONFIG_DOCS, SETTINGS };
export { configWarnings, unknownSettings } from "./configRead.js";

/** A Kubernetes object name such as a Lease's (RFC 1123 subdomain; the length is checked apart). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

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

function httpSettings(env: NodeJS.ProcessEnv, get: (name: string) => string, v: SettingValues) {
  try {
    const listen = parseListenAddress(get("RTMANAGER_INTERNAL_HTTP_ADDR"));
    return { listen, settings: loadHttpSettings(env, get, listen, v) };
  } catch (err) {
    if (err instanceof HttpConfigError) throw new ConfigError(`invalid configuration: ${err.message}`);
    throw err;
  }
}

const invalid = (problems: string[]) => new ConfigError(`invalid configuration: ${problems.join("; ")}`);

/** The Lease name, after the checks that only matter when Kubernetes is the source or the runtime. */
function checkedKubernetesSettings(v: SettingValues, http: HttpSettings): { leaseName: string } {
  const kubeNamespace = v.RTMANAGER_KUBE_NAMESPACE;
  const kubeCreateNamespace = v.RTMANAGER_KUBE_CREATE_NAMESPACE;
  const leaseName = v.RTMANAGER_LEASE_NAME || `${v.RTMANAGER_INSTANCE_ID}-leader`;
  if (leaseName.length > 253 || !DNS_SUBDOMAIN.test(leaseName)) {
    throw invalid([`RTMANAGER_LEASE_NAME: ${JSON.stringify(leaseName)} is not a Lease name (a DNS subdomain)`]);
  }
  if (kubeNamespace !== "" && kubeCreateNamespace !== "" && kubeCreateNamespace !== kubeNamespace) {
    throw invalid(["RTMANAGER_KUBE_CREATE_NAMESPACE must be empty or equal to RTMANAGER_KUBE_NAMESPACE: objects created elsewhere would never be watched"]);
  }
  if (v.RTMANAGER_SOURCE === "kubernetes" && kubeNamespace === "" && http.imageAllowlist.length === 0 && !v.RTMANAGER_ALLOW_ANY_IMAGE) {
    // Cluster-wide, whoever may create a GameRuntime in any namespace chooses an image the node's runtime runs.
    throw invalid([
      "cluster-wide Kubernetes mode (RTMANAGER_KUBE_NAMESPACE empty) needs RTMANAGER_IMAGE_ALLOWLIST: any namespace's GameRuntime would otherwise run any image; set RTMANAGER_ALLOW_ANY_IMAGE=true to accept that",
    ]);
  }
  return { leaseName };
}

type ReconcileSettings = Pick<
  Config,
  | "stopTimeoutMs" | "retentionMs" | "resyncIntervalMs" | "concurrency" | "maxGames" | "defaultCpus" | "defaultMemoryBytes"
  | "defaultPidsLimit" | "probeIntervalMs" | "probeTimeoutMs" | "probeFailureThreshold" | "restartBackoffBaseMs"
  | "restartBackoffMaxMs" | "crashLoopResetMs" | "retryBackoffBaseMs" | "retryBackoffMaxMs" | "opTimeoutMs"
  | "patchMinHealthyMs" | "patchHealthTimeoutMs" | "startWaitHealthy" | "quarantineAfter" | "quarantineWindowMs"
  | "patchCanaries" | "orphanGraceMs" | "orphanDryRun"
>;

/** The reconcile loop's limits, timings and back-offs. */
function reconcileSettings(v: SettingValues): ReconcileSettings {
  return {
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
  };
}

type PodSettings = Pick<
  Config,
  | "gamePodNamespace" | "podStorageClass" | "podClientNamespaces" | "podClusterDomain" | "podStorageSize"
  | "podTemplateFile" | "podStartTimeoutMs" | "podClaimRetentionMs"
>;

/** The Pod runtime's slice (RTMANAGER_POD_*). */
function podSettings(v: SettingValues): PodSettings {
  return {
    gamePodNamespace: v.RTMANAGER_POD_NAMESPACE || v.POD_NAMESPACE || "default",
    podStorageClass: v.RTMANAGER_POD_STORAGE_CLASS,
    podClientNamespaces: v.RTMANAGER_POD_CLIENT_NAMESPACES,
    podClusterDomain: v.RTMANAGER_POD_CLUSTER_DOMAIN,
    podStorageSize: v.RTMANAGER_POD_STORAGE_SIZE,
    podTemplateFile: v.RTMANAGER_POD_TEMPLATE_FILE,
    podStartTimeoutMs: v.RTMANAGER_POD_START_TIMEOUT,
    podClaimRetentionMs: v.RTMANAGER_POD_CLAIM_RETENTION,
  };
}

/** Reads and validates the environment (the rows of src/configDocs.ts); a bad value throws naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const get = (name: string): string => env[name] ?? (SETTINGS as Record<string, { default: string | undefined }>)[name]?.default ?? "";
  const read = readSettings(env);
  if (!read.ok) throw invalid(read.problems);
  const v = read.values;
  const crossed = crossCheckProblems(v);
  if (crossed.length > 0) throw invalid(crossed);
  const { listen, settings: http } = httpSettings(env, get, v);
  const { leaseName } = checkedKubernetesSettings(v, http);
  const hardening = parseEngineHardening(get, process.getgid?.() ?? 0);
  if (!hardening.ok) throw invalid(hardening.issues);
  return {
    databaseUrl: v.DATABASE_URL,
    dataDir: path.resolve(v.RTMANAGER_DATA_DIR),
    source: v.RTMANAGER_SOURCE,
    kubeNamespace: v.RTMANAGER_KUBE_NAMESPACE,
    kubeCreateNamespace: v.RTMANAGER_KUBE_CREATE_NAMESPACE,
    podNamespace: v.POD_NAMESPACE,
    instanceId: v.RTMANAGER_INSTANCE_ID,
    ...http,
    httpHost: listen.host,
    httpPort: listen.port,
    httpSocketPath: listen.socketPath,
    internalToken: v.RTMANAGER_INTERNAL_TOKEN,
    dockerNetwork: v.RTMANAGER_DOCKER_NETWORK,
    // Docker bind mounts need an absolute host path.
    stateRoot: path.resolve(v.RTMANAGER_STATE_ROOT),
    imagePullPolicy: v.RTMANAGER_IMAGE_PULL_POLICY,
    enginePublishHost: v.RTMANAGER_ENGINE_PUBLISH_HOST,
    ...reconcileSettings(v),
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
    ...podSettings(v),
  };
}
