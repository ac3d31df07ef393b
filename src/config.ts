import path from "node:path";
import { z } from "zod";
import { RESOURCE_FLOORS } from "./model/declaration.js";
import { parseDuration, parseMemory } from "./model/duration.js";
import { GAME_ID_PATTERN } from "./model/gameId.js";
import { parseEngineHardening, type EngineHardening } from "./runtime/engineHardening.js";
import { HttpConfigError, loadHttpSettings, parseListenAddress, type HttpSettings } from "./httpConfig.js";

/**
 * Every setting is an environment variable with a default. `CONFIG_DOCS`
 * is the table the README's configuration section is checked against.
 */
interface Setting {
  env: string;
  default: string | undefined;
  doc: string;
}

export const CONFIG_DOCS: Setting[] = [
  { env: "DATABASE_URL", default: undefined, doc: "PostgreSQL URL. Unset: embedded PGlite in RTMANAGER_DATA_DIR." },
  { env: "RTMANAGER_DATA_DIR", default: "./.rtmanager", doc: "Where PGlite keeps its data when DATABASE_URL is unset." },
  { env: "RTMANAGER_SOURCE", default: "store", doc: "Where declarations live: `store` (the declarations table) or `kubernetes` (GameRuntime objects)." },
  { env: "RTMANAGER_KUBE_NAMESPACE", default: "", doc: "Kubernetes mode: namespace to watch; empty watches all namespaces." },
  { env: "RTMANAGER_KUBE_CREATE_NAMESPACE", default: "", doc: "Kubernetes mode, cluster-wide: namespace where the REST API creates new GameRuntime objects. Empty: POD_NAMESPACE, else `default`. With RTMANAGER_KUBE_NAMESPACE set it must be empty or equal to it." },
  { env: "POD_NAMESPACE", default: undefined, doc: "Kubernetes mode: the pod's own namespace (deploy/kustomize/base/deployment.yaml sets it through the downward API). Holds the leader Lease when RTMANAGER_KUBE_NAMESPACE is empty; unset: `default`." },
  { env: "RTMANAGER_INSTANCE_ID", default: "rtmanager", doc: "Names this installation in container labels; two installations on one engine never touch each other's containers." },
  { env: "RTMANAGER_INTERNAL_HTTP_ADDR", default: "127.0.0.1:8096", doc: "Listen address of the REST API, probes and /metrics: `host:port`, `:port` (every interface) or `unix:/path/to.sock`. Loopback by default (the contract says `:8096`; see Security)." },
  { env: "RTMANAGER_INTERNAL_TOKEN", default: undefined, doc: "Optional shared bearer token required on every path but the probes." },
  { env: "RTMANAGER_DOCKER_NETWORK", default: "galaxy-net", doc: "Docker network the engines join; it must exist at start-up." },
  { env: "RTMANAGER_STATE_ROOT", default: "./.rtmanager/state", doc: "Host directory holding one state directory per game (never deleted)." },
  { env: "RTMANAGER_IMAGE_PULL_POLICY", default: "if_not_present", doc: "`always`, `if_not_present` or `never`." },
  { env: "RTMANAGER_CONTAINER_STOP_TIMEOUT", default: "30s", doc: "Grace period docker stop gives an engine before SIGKILL." },
  { env: "RTMANAGER_CONTAINER_RETENTION", default: "30d", doc: "A stopped runtime idle this long has its container removed (op_source auto_ttl)." },
  { env: "RTMANAGER_RESYNC_INTERVAL", default: "30s", doc: "Full re-list of declarations and containers, catching anything a watch missed; converged games are skipped except on every tenth pass (see Periodic resync triage)." },
  { env: "RTMANAGER_CONCURRENCY", default: "8", doc: "Games reconciled at once." },
  { env: "RTMANAGER_DEFAULT_CPUS", default: "1.0", doc: "CPU limit when neither the image labels nor the declaration set one." },
  { env: "RTMANAGER_DEFAULT_MEMORY", default: "512m", doc: "Memory limit default." },
  { env: "RTMANAGER_DEFAULT_PIDS_LIMIT", default: "512", doc: "PIDs limit default." },
  { env: "RTMANAGER_PROBE_INTERVAL", default: "15s", doc: "How often each running engine's GET /healthz is probed (at most 32 at once). Probing is most of an idle controller's CPU, and its cost scales with 1/interval (measurements in docs/BENCHMARKS.md)." },
  { env: "RTMANAGER_PROBE_TIMEOUT", default: "2s", doc: "Timeout of one health probe." },
  { env: "RTMANAGER_PROBE_FAILURE_THRESHOLD", default: "3", doc: "Failures in a row that make an engine unhealthy." },
  { env: "RTMANAGER_ENGINE_PUBLISH_HOST", default: undefined, doc: "Publish each engine's 8080 on this host address (e.g. 127.0.0.1) and probe it there: for development, and for a controller that cannot resolve engine names on the Docker network (the Kubernetes Deployment, which uses hostNetwork). Unset: nothing is published, and each engine is probed at its address on `RTMANAGER_DOCKER_NETWORK` as Docker's own listing reports it (no DNS lookup per probe, and always that exact container), or at `http://galaxy-game-{id}:8080` when Docker reports none. `engine_endpoint` stays the name either way." },
  { env: "RTMANAGER_RESTART_BACKOFF_BASE", default: "1s", doc: "First delay of the crash-loop backoff; doubles per restart." },
  { env: "RTMANAGER_RESTART_BACKOFF_MAX", default: "5m", doc: "Cap of the crash-loop backoff." },
  { env: "RTMANAGER_CRASHLOOP_RESET", default: "10m", doc: "Running this long resets the restart count." },
  { env: "RTMANAGER_RETRY_BACKOFF_BASE", default: "500ms", doc: "First delay before retrying a failed reconcile; doubles per failure." },
  { env: "RTMANAGER_RETRY_BACKOFF_MAX", default: "5m", doc: "Cap of the failed-reconcile backoff." },
  { env: "RTMANAGER_OP_TIMEOUT", default: "90s", doc: "How long a REST mutation waits for the loop before answering service_unavailable." },
  { env: "RTMANAGER_PATCH_MIN_HEALTHY", default: "5s", doc: "A patched engine must stay healthy this long to count as patched." },
  { env: "RTMANAGER_PATCH_HEALTH_TIMEOUT", default: "60s", doc: "A patch not healthy within this time is rolled back." },
  { env: "RTMANAGER_QUARANTINE_AFTER", default: "3", doc: "Patches to one image rolled back by the health gate within RTMANAGER_QUARANTINE_WINDOW that quarantine the image: further patches to it are refused with container_start_failed until `rtmctl quarantine lift` (see Patch)." },
  { env: "RTMANAGER_QUARANTINE_WINDOW", default: "10m", doc: "The window RTMANAGER_QUARANTINE_AFTER counts rollbacks in." },
  { env: "RTMANAGER_PATCH_CANARIES", default: "0", doc: "Patches to an image no game runs yet go to this many games first; the others wait (within RTMANAGER_OP_TIMEOUT) until one passes its health gate. 0: off." },
  { env: "RTMANAGER_START_WAIT_HEALTHY", default: "false", doc: "Gate start on health too." },
  { env: "RTMANAGER_ORPHAN_GRACE", default: "60s", doc: "A managed container without a declaration younger than this is left alone." },
  { env: "RTMANAGER_ORPHAN_DRY_RUN", default: "false", doc: "Only report orphans that would be removed." },
  { env: "RTMANAGER_LEASE_NAME", default: "", doc: "Kubernetes mode: name of the leader Lease (in the pod's namespace). Empty: `<RTMANAGER_INSTANCE_ID>-leader`. The RBAC Role must grant get/update on exactly this name (the kustomize base copies it there)." },
  { env: "RTMANAGER_LEASE_DURATION", default: "15s", doc: "Leader lease duration." },
  { env: "RTMANAGER_LEASE_RENEW_DEADLINE", default: "10s", doc: "A leader that cannot renew within this stops acting." },
  { env: "RTMANAGER_LEASE_RETRY_PERIOD", default: "2s", doc: "How often candidates try to take or renew the lease." },
  { env: "RTMANAGER_WATCH_SILENCE_LIMIT", default: "5m", doc: "A watch silent this long is re-established and everything re-listed." },
  { env: "RTMANAGER_LOG_LEVEL", default: "info", doc: "pino level: trace, debug, info, warn, error." },
  { env: "RTMANAGER_COMMIT", default: undefined, doc: "The commit this build was made from, shown by GET /api/v1/ext/version, `rtmctl version`, the start-up log line and `rtmanager_build_info`. The image has no git: set it there (an `ENV` at image build). Unset: `git rev-parse HEAD` of the checkout at start, else `unknown`." },
  { env: "RTMANAGER_ENGINE_CAP_ADD", default: "", doc: "Comma-separated Linux capabilities engines keep (e.g. `NET_BIND_SERVICE`); every other one is dropped. Empty: none. See docs/engine-hardening.md." },
  { env: "RTMANAGER_ENGINE_LOG_MAX_SIZE", default: "10m", doc: "An engine's log file is rotated at this size (json-file driver)." },
  { env: "RTMANAGER_ENGINE_LOG_MAX_FILES", default: "3", doc: "Log files kept per engine, the current one included." },
  { env: "RTMANAGER_ENGINE_READ_ONLY_ROOTFS", default: "false", doc: "Engines get a read-only root filesystem and a tmpfs on /tmp." },
  { env: "RTMANAGER_ENGINE_USER", default: undefined, doc: "`uid` or `uid:gid` engines run as. Unset: the image's user." },
  { env: "RTMANAGER_ENGINE_FS_GROUP", default: undefined, doc: "Numeric group that owns each game's state directory (mode 2770) and that every engine gets as a supplementary group. Unset: the controller's own group. A non-root controller must be a member of it." },
  { env: "RTMANAGER_EVENT_RETENTION", default: "30d", doc: "Runtime events older than this are deleted by the leader (every 10 min); the newest event is always kept. A stream cursor older than the oldest kept event gets a `cursor_expired` diagnostic." },
  { env: "RTMANAGER_OPLOG_RETENTION", default: "30d", doc: "Finished operation-log rows started longer ago than this are deleted by the leader; `running` rows are never deleted." },
  { env: "RTMANAGER_SQL_STATEMENT_TIMEOUT", default: "30s", doc: "PostgreSQL: `statement_timeout` and `idle_in_transaction_session_timeout` of every pooled connection; the client gives up 5 s later on a server that does not answer at all. Migrations run without it. 0 turns it off. PGlite: unused." },
  { env: "RTMANAGER_KUBE_REQUEST_TIMEOUT", default: "10s", doc: "Kubernetes mode: every API request (not watches, which have RTMANAGER_WATCH_SILENCE_LIMIT) is aborted after this long. 0 turns it off." },
  { env: "RTMANAGER_SHUTDOWN_TIMEOUT", default: "25s", doc: "On SIGTERM/SIGINT the process exits within this, even with the database or the Kubernetes API hanging. Keep it under the pod's terminationGracePeriodSeconds (30 s)." },
  { env: "RTMANAGER_LOGS_MAX_BYTES", default: "1m", doc: "Byte ceiling of one engine-log read without follow (GET .../logs); a smaller limitBytes wins. k, m, g are binary." },
  { env: "RTMANAGER_LOGS_FOLLOW_MAX", default: "1h", doc: "How long one followed engine-log stream (GET .../logs?follow=true) stays open at most." },
  { env: "RTMANAGER_INTERNAL_TOKEN_FILE", default: undefined, doc: "File holding the bearer token (instead of RTMANAGER_INTERNAL_TOKEN): one line, or two during a rotation (both valid). Re-read when it changes." },
  { env: "RTMANAGER_METRICS_TOKEN_FILE", default: undefined, doc: "File of one or two read-only bearer tokens (the RTMANAGER_INTERNAL_TOKEN_FILE format, re-read when it changes) that may only scrape GET /metrics: Prometheus' token, not Game Master's." },
  { env: "RTMANAGER_ALLOW_SHORT_TOKENS", default: "false", doc: "`true` accepts bearer tokens under 32 characters. The example Secret's `CHANGE-ME` placeholder is refused either way." },
  { env: "RTMANAGER_ALLOW_UNAUTHENTICATED", default: "false", doc: "Required (`true`) to listen on a non-loopback address without a token; start-up is refused otherwise." },
  { env: "RTMANAGER_ALLOWED_HOSTS", default: "", doc: "Comma-separated extra `Host` names accepted (e.g. a Service's `rtmanager.galaxy.svc`); `localhost`, this machine's name and IP literals always are; a leading `.` allows subdomains. Probes are exempt." },
  { env: "RTMANAGER_ALLOWED_ORIGINS", default: "", doc: "Comma-separated browser origins allowed to call the API; a request with any other `Origin`, or `Sec-Fetch-Site: cross-site`, gets 403." },
  { env: "RTMANAGER_IMAGE_ALLOWLIST", default: "", doc: "Comma-separated registry or repository prefixes images must come from (matched on `/` boundaries); empty allows every image." },
  { env: "RTMANAGER_ALLOW_ANY_IMAGE", default: "false", doc: "Cluster-wide Kubernetes mode (RTMANAGER_KUBE_NAMESPACE empty) refuses to start without RTMANAGER_IMAGE_ALLOWLIST unless this is `true`: a GameRuntime in any namespace would otherwise choose any image." },
  { env: "RTMANAGER_MAX_CPUS", default: "8", doc: "Ceiling on the CPUs an image label or declaration may ask for; past it: start_config_invalid." },
  { env: "RTMANAGER_MAX_MEMORY", default: "16g", doc: "Ceiling on the memory an image label or declaration may ask for." },
  { env: "RTMANAGER_MAX_PIDS_LIMIT", default: "4096", doc: "Ceiling on the PIDs limit an image label or declaration may ask for." },
  { env: "RTMANAGER_MAX_EVENT_STREAMS", default: "256", doc: "Open event streams (GET /api/v1/ext/events) at once; past it: 503 with Retry-After." },
  { env: "RTMANAGER_MAX_LOG_FOLLOWS", default: "64", doc: "Followed engine-log streams (GET .../logs?follow=true) open at once in this process; past it: 503 with Retry-After. Each holds a runtime stream for up to RTMANAGER_LOGS_FOLLOW_MAX." },
  { env: "RTMANAGER_MAX_LOG_FOLLOWS_PER_GAME", default: "4", doc: "Followed engine-log streams of one game open at once; past it: 503 with Retry-After." },
  { env: "RTMANAGER_MAX_GAMES", default: "10000", doc: "Games (declared or recorded) this installation holds; a REST start of a new game past it answers 409 conflict. Games already known are never refused; SQL and kubectl declarations are not counted against it at write time." },
  { env: "RTMANAGER_MAX_CONCURRENT_MUTATIONS", default: "512", doc: "REST mutations in flight at once; past it: 503 service_unavailable with Retry-After." },
  { env: "RTMANAGER_HTTP_REQUEST_TIMEOUT", default: "30s", doc: "Time a client has to send a whole request (headers and body)." },
  { env: "RTMANAGER_HTTP_IDLE_TIMEOUT", default: "60s", doc: "A socket silent this long mid-request is closed; mutations wait up to RTMANAGER_OP_TIMEOUT instead, event streams have keep-alives." },
  { env: "RTMANAGER_RUNTIME", default: "docker", doc: "What runs the engines: `docker` (containers on one Docker engine) or `kubernetes` (one Pod per game, with a Service and a claim; see docs/kubernetes.md). Independent of RTMANAGER_SOURCE." },
  { env: "RTMANAGER_POD_NAMESPACE", default: "", doc: "Pod runtime: namespace of the game Pods, Services and claims. Empty: POD_NAMESPACE, else `default`. With RTMANAGER_SOURCE=kubernetes each game's objects go to its GameRuntime's namespace instead." },
  { env: "RTMANAGER_POD_CLIENT_NAMESPACES", default: "", doc: "Pod runtime: comma-separated namespaces of clients (Game Master) outside the games' namespace; each game gets an ExternalName Service `galaxy-game-<id>` there, so `engine_endpoint` resolves in them too. Empty: none." },
  { env: "RTMANAGER_POD_CLUSTER_DOMAIN", default: "cluster.local", doc: "Pod runtime: the cluster's DNS domain, for the ExternalName Services of RTMANAGER_POD_CLIENT_NAMESPACES (`galaxy-game-<id>.<namespace>.svc.<domain>`)." },
  { env: "RTMANAGER_POD_STORAGE_CLASS", default: "", doc: "Pod runtime: storage class of each game's state claim; empty: the cluster's default class." },
  { env: "RTMANAGER_POD_STORAGE_SIZE", default: "1Gi", doc: "Pod runtime: size requested by each game's state claim (a Kubernetes quantity)." },
  { env: "RTMANAGER_POD_TEMPLATE_FILE", default: "", doc: "Pod runtime: a JSON or YAML file (a mounted ConfigMap) with the Pods' `nodeSelector`, `tolerations`, `priorityClassName`, `serviceAccountName` and `imagePullSecrets` (names); no other key is accepted." },
  { env: "RTMANAGER_POD_START_TIMEOUT", default: "30s", doc: "Pod runtime: how long after its Pod's creation an engine may take to run before its start fails with `container_start_failed` (nothing waits for it; the loop follows the Pod watch)." },
  { env: "RTMANAGER_POD_CLAIM_RETENTION", default: "0", doc: "Pod runtime: a game's state claim is deleted this long after its engine was removed (cleanup, or RTMANAGER_CONTAINER_RETENTION), unless an engine was created for it since. `0` (the default) keeps every claim, as the Docker runtime keeps state directories; applies to engines removed while it is set." },
];

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
