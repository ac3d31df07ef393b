/**
 * THE settings table: one row per environment variable, holding its default,
 * its parser and its documentation. Everything else is derived from it:
 * loadConfig (src/config.ts) reads every row with its parser, the README's
 * configuration table is generated from the docs (scripts/config-table.ts),
 * and an RTMANAGER_* variable that is not a row is named in a start-up
 * warning. Rows parsed as `text` are checked by the module that reads them
 * (src/httpConfig.ts, src/runtime/engineHardening.ts) or in loadConfig.
 */
import {
  bool,
  cpus,
  dnsDomain,
  duration,
  instanceId,
  kubeQuantity,
  memory,
  namespaceList,
  namespaceOrEmpty,
  namespaceOrUnset,
  nonEmpty,
  nonNegativeInt,
  oneOf,
  optionalText,
  positiveInt,
  strictBool,
  text,
  type Parser,
} from "./configParsers.js";
import { RESOURCE_FLOORS } from "./model/declaration.js";

export interface SettingRow<T> {
  /** undefined: unset unless the environment sets it (shown as "(unset)"). */
  default: string | undefined;
  parse: Parser<T>;
  doc: string;
}

function row<T>(def: string | undefined, parse: Parser<T>, doc: string): SettingRow<T> {
  return { default: def, parse, doc };
}

export const SETTINGS = {
  DATABASE_URL: row(undefined, optionalText, "PostgreSQL URL. Unset: embedded PGlite in RTMANAGER_DATA_DIR."),
  RTMANAGER_DATA_DIR: row("./.rtmanager", text, "Where PGlite keeps its data when DATABASE_URL is unset."),
  RTMANAGER_SOURCE: row("store", oneOf(["store", "kubernetes"]), "Where declarations live: `store` (the declarations table) or `kubernetes` (GameRuntime objects)."),
  RTMANAGER_KUBE_NAMESPACE: row("", namespaceOrEmpty, "Kubernetes mode: namespace to watch; empty watches all namespaces."),
  RTMANAGER_KUBE_CREATE_NAMESPACE: row("", namespaceOrEmpty, "Kubernetes mode, cluster-wide: namespace where the REST API creates new GameRuntime objects. Empty: POD_NAMESPACE, else `default`. With RTMANAGER_KUBE_NAMESPACE set it must be empty or equal to it."),
  POD_NAMESPACE: row(undefined, namespaceOrUnset, "Kubernetes mode: the pod's own namespace (deploy/kustomize/base/deployment.yaml sets it through the downward API). Holds the leader Lease when RTMANAGER_KUBE_NAMESPACE is empty; unset: `default`."),
  RTMANAGER_INSTANCE_ID: row("rtmanager", instanceId, "Names this installation in container labels; two installations on one engine never touch each other's containers."),
  RTMANAGER_INTERNAL_HTTP_ADDR: row("127.0.0.1:8096", text, "Listen address of the REST API, probes and /metrics: `host:port`, `:port` (every interface) or `unix:/path/to.sock`. Loopback by default (the contract says `:8096`; see Security)."),
  RTMANAGER_INTERNAL_TOKEN: row(undefined, optionalText, "Shared bearer token required on every path but the probes. Required to listen beyond loopback (or RTMANAGER_INTERNAL_TOKEN_FILE; see RTMANAGER_ALLOW_UNAUTHENTICATED); the kustomize Deployment mounts it from the Secret `rtmanager-token`, which must exist."),
  RTMANAGER_DOCKER_NETWORK: row("galaxy-net", nonEmpty, "Docker network the engines join; it must exist at start-up."),
  RTMANAGER_STATE_ROOT: row("./.rtmanager/state", text, "Host directory holding one state directory per game (never deleted)."),
  RTMANAGER_IMAGE_PULL_POLICY: row("if_not_present", oneOf(["always", "if_not_present", "never"]), "`always`, `if_not_present` or `never`."),
  RTMANAGER_CONTAINER_STOP_TIMEOUT: row("30s", duration({ min: 0 }), "Grace period docker stop gives an engine before SIGKILL."),
  RTMANAGER_CONTAINER_RETENTION: row("30d", duration({ min: 60_000 }), "A stopped runtime idle this long has its container removed (op_source auto_ttl)."),
  RTMANAGER_RESYNC_INTERVAL: row("30s", duration({ min: 1000 }), "Full re-list of declarations and containers, catching anything a watch missed; converged games are skipped except on every tenth pass (see Periodic resync triage)."),
  RTMANAGER_CONCURRENCY: row("8", positiveInt, "Games reconciled at once."),
  RTMANAGER_DEFAULT_CPUS: row("1.0", cpus, "CPU limit when neither the image labels nor the declaration set one."),
  RTMANAGER_DEFAULT_MEMORY: row("512m", memory(RESOURCE_FLOORS.memoryBytes), "Memory limit default."),
  RTMANAGER_DEFAULT_PIDS_LIMIT: row("512", positiveInt, "PIDs limit default."),
  RTMANAGER_PROBE_INTERVAL: row("15s", duration({ min: 100 }), "How often each running engine's GET /healthz is probed (at most 32 at once). Probing is most of an idle controller's CPU, and its cost scales with 1/interval (measurements in docs/BENCHMARKS.md)."),
  RTMANAGER_PROBE_TIMEOUT: row("2s", duration({ min: 100 }), "Timeout of one health probe."),
  RTMANAGER_PROBE_FAILURE_THRESHOLD: row("3", positiveInt, "Failures in a row that make an engine unhealthy."),
  RTMANAGER_ENGINE_PUBLISH_HOST: row(undefined, optionalText, "Publish each engine's 8080 on this host address (e.g. 127.0.0.1) and probe it there: for development, and for a controller that cannot resolve engine names on the Docker network (the Kubernetes Deployment, which uses hostNetwork). Unset: nothing is published, and each engine is probed at its address on `RTMANAGER_DOCKER_NETWORK` as Docker's own listing reports it (no DNS lookup per probe, and always that exact container), or at `http://galaxy-game-{id}:8080` when Docker reports none. `engine_endpoint` stays the name either way."),
  RTMANAGER_RESTART_BACKOFF_BASE: row("1s", duration({ min: 10 }), "First delay of the crash-loop backoff; doubles per restart. At most RTMANAGER_RESTART_BACKOFF_MAX."),
  RTMANAGER_RESTART_BACKOFF_MAX: row("5m", duration({ min: 10 }), "Cap of the crash-loop backoff."),
  RTMANAGER_CRASHLOOP_RESET: row("10m", duration({ min: 1000 }), "Running this long resets the restart count."),
  RTMANAGER_RETRY_BACKOFF_BASE: row("500ms", duration({ min: 10 }), "First delay before retrying a failed reconcile; doubles per failure. At most RTMANAGER_RETRY_BACKOFF_MAX."),
  RTMANAGER_RETRY_BACKOFF_MAX: row("5m", duration({ min: 10 }), "Cap of the failed-reconcile backoff."),
  RTMANAGER_OP_TIMEOUT: row("90s", duration({ min: 1000 }), "How long a REST mutation waits for the loop before answering service_unavailable."),
  RTMANAGER_PATCH_MIN_HEALTHY: row("5s", duration({ min: 0 }), "A patched engine must stay healthy this long to count as patched. Must be shorter than RTMANAGER_PATCH_HEALTH_TIMEOUT."),
  RTMANAGER_PATCH_HEALTH_TIMEOUT: row("60s", duration({ min: 1000 }), "A patch not healthy within this time is rolled back."),
  RTMANAGER_QUARANTINE_AFTER: row("3", positiveInt, "Patches to one image rolled back by the health gate within RTMANAGER_QUARANTINE_WINDOW that quarantine the image: further patches to it are refused with container_start_failed until `rtmctl quarantine lift` (see Patch)."),
  RTMANAGER_QUARANTINE_WINDOW: row("10m", duration({ min: 1000 }), "The window RTMANAGER_QUARANTINE_AFTER counts rollbacks in."),
  RTMANAGER_PATCH_CANARIES: row("0", nonNegativeInt, "Patches to an image no game runs yet go to this many games first; the others wait (within RTMANAGER_OP_TIMEOUT) until one passes its health gate. 0: off."),
  RTMANAGER_START_WAIT_HEALTHY: row("false", bool, "Gate start on health too."),
  RTMANAGER_ORPHAN_GRACE: row("60s", duration({ min: 0 }), "A managed container without a declaration younger than this is left alone."),
  RTMANAGER_ORPHAN_DRY_RUN: row("false", bool, "Only report orphans that would be removed."),
  RTMANAGER_LEASE_NAME: row("", text, "Kubernetes mode: name of the leader Lease (in the pod's namespace). Empty: `<RTMANAGER_INSTANCE_ID>-leader`. The RBAC Role must grant get/update on exactly this name (the kustomize base copies it there)."),
  RTMANAGER_LEASE_DURATION: row("15s", duration({ min: 1000 }), "Leader lease duration."),
  RTMANAGER_LEASE_RENEW_DEADLINE: row("10s", duration({ min: 100 }), "A leader that cannot renew within this stops acting. Must be shorter than RTMANAGER_LEASE_DURATION and longer than 1.2 x RTMANAGER_LEASE_RETRY_PERIOD (client-go's rules)."),
  RTMANAGER_LEASE_RETRY_PERIOD: row("2s", duration({ min: 100 }), "How often candidates try to take or renew the lease."),
  RTMANAGER_WATCH_SILENCE_LIMIT: row("5m", duration({ min: 1000 }), "A watch silent this long is re-established and everything re-listed."),
  RTMANAGER_LOG_LEVEL: row("info", oneOf(["trace", "debug", "info", "warn", "error", "fatal", "silent"]), "pino level: trace, debug, info, warn, error."),
  RTMANAGER_COMMIT: row(undefined, optionalText, "The commit this build was made from, shown by GET /api/v1/ext/version, `rtmctl version`, the start-up log line and `rtmanager_build_info`. The image has no git: set it there (an `ENV` at image build). Unset: `git rev-parse HEAD` of the checkout at start, else `unknown`."),
  RTMANAGER_ENGINE_CAP_ADD: row("", text, "Comma-separated Linux capabilities engines keep (e.g. `NET_BIND_SERVICE`); every other one is dropped. Empty: none. See docs/engine-hardening.md."),
  RTMANAGER_ENGINE_LOG_MAX_SIZE: row("10m", text, "An engine's log file is rotated at this size (json-file driver)."),
  RTMANAGER_ENGINE_LOG_MAX_FILES: row("3", text, "Log files kept per engine, the current one included."),
  RTMANAGER_ENGINE_READ_ONLY_ROOTFS: row("false", text, "Engines get a read-only root filesystem and a tmpfs on /tmp."),
  RTMANAGER_ENGINE_USER: row(undefined, text, "`uid` or `uid:gid` engines run as. Unset: the image's user."),
  RTMANAGER_ENGINE_FS_GROUP: row(undefined, text, "Numeric group that owns each game's state directory (mode 2770) and that every engine gets as a supplementary group. Unset: the controller's own group. A non-root controller must be a member of it."),
  RTMANAGER_EVENT_RETENTION: row("30d", duration({ min: 60_000 }), "Runtime events older than this are deleted by the leader (every 10 min); the newest event is always kept. A stream cursor older than the oldest kept event gets a `cursor_expired` diagnostic."),
  RTMANAGER_OPLOG_RETENTION: row("30d", duration({ min: 60_000 }), "Finished operation-log rows started longer ago than this are deleted by the leader; `running` rows are never deleted."),
  RTMANAGER_SQL_STATEMENT_TIMEOUT: row("30s", duration({ min: 100, zeroMeansOff: true }), "PostgreSQL: `statement_timeout` and `idle_in_transaction_session_timeout` of every pooled connection; the client gives up 5 s later on a server that does not answer at all. Migrations run without it. 0 turns it off. PGlite: unused."),
  RTMANAGER_KUBE_REQUEST_TIMEOUT: row("10s", duration({ min: 100, zeroMeansOff: true }), "Kubernetes mode: every API request (not watches, which have RTMANAGER_WATCH_SILENCE_LIMIT) is aborted after this long. 0 turns it off."),
  RTMANAGER_SHUTDOWN_TIMEOUT: row("25s", duration({ min: 1000 }), "On SIGTERM/SIGINT the process exits within this, even with the database or the Kubernetes API hanging. Keep it under the pod's terminationGracePeriodSeconds (30 s)."),
  RTMANAGER_LOGS_MAX_BYTES: row("1m", memory(), "Byte ceiling of one engine-log read without follow (GET .../logs); a smaller limitBytes wins. k, m, g are binary."),
  RTMANAGER_LOGS_FOLLOW_MAX: row("1h", duration({ min: 1000 }), "How long one followed engine-log stream (GET .../logs?follow=true) stays open at most."),
  RTMANAGER_INTERNAL_TOKEN_FILE: row(undefined, optionalText, "File holding the bearer token (instead of RTMANAGER_INTERNAL_TOKEN): one line, or two during a rotation (both valid). Re-read when it changes."),
  RTMANAGER_METRICS_TOKEN_FILE: row(undefined, optionalText, "File of one or two read-only bearer tokens (the RTMANAGER_INTERNAL_TOKEN_FILE format, re-read when it changes) that may only scrape GET /metrics: Prometheus' token, not Game Master's."),
  RTMANAGER_ALLOW_SHORT_TOKENS: row("false", strictBool, "`true` accepts bearer tokens under 32 characters. The example Secret's `CHANGE-ME` placeholder is refused either way."),
  RTMANAGER_ALLOW_UNAUTHENTICATED: row("false", strictBool, "Required (`true`) to listen on a non-loopback address without a token; start-up is refused otherwise."),
  RTMANAGER_ALLOWED_HOSTS: row("", text, "Comma-separated extra `Host` names accepted (e.g. a Service's `rtmanager.galaxy.svc`); `localhost`, this machine's name and IP literals always are; a leading `.` allows subdomains. Probes are exempt."),
  RTMANAGER_ALLOWED_ORIGINS: row("", text, "Comma-separated browser origins allowed to call the API; a request with any other `Origin`, or `Sec-Fetch-Site: cross-site`, gets 403."),
  RTMANAGER_IMAGE_ALLOWLIST: row("", text, "Comma-separated registry or repository prefixes images must come from (matched on `/` boundaries); empty allows every image."),
  RTMANAGER_ALLOW_ANY_IMAGE: row("false", strictBool, "Cluster-wide Kubernetes mode (RTMANAGER_KUBE_NAMESPACE empty) refuses to start without RTMANAGER_IMAGE_ALLOWLIST unless this is `true`: a GameRuntime in any namespace would otherwise choose any image."),
  RTMANAGER_MAX_CPUS: row("8", cpus, "Ceiling on the CPUs an image label or declaration may ask for; past it: start_config_invalid."),
  RTMANAGER_MAX_MEMORY: row("16g", memory(), "Ceiling on the memory an image label or declaration may ask for."),
  RTMANAGER_MAX_PIDS_LIMIT: row("4096", positiveInt, "Ceiling on the PIDs limit an image label or declaration may ask for."),
  RTMANAGER_MAX_EVENT_STREAMS: row("256", positiveInt, "Open event streams (GET /api/v1/ext/events) at once; past it: 503 with Retry-After."),
  RTMANAGER_MAX_LOG_FOLLOWS: row("64", positiveInt, "Followed engine-log streams (GET .../logs?follow=true) open at once in this process; past it: 503 with Retry-After. Each holds a runtime stream for up to RTMANAGER_LOGS_FOLLOW_MAX."),
  RTMANAGER_MAX_LOG_FOLLOWS_PER_GAME: row("4", positiveInt, "Followed engine-log streams of one game open at once; past it: 503 with Retry-After."),
  RTMANAGER_MAX_GAMES: row("10000", positiveInt, "Games (declared or recorded) this installation holds; a REST start of a new game past it answers 409 conflict. Games already known are never refused; SQL and kubectl declarations are not counted against it at write time."),
  RTMANAGER_MAX_CONCURRENT_MUTATIONS: row("2048", positiveInt, "REST mutations in flight at once (a fleet patch is one per game, all at once); past it: 503 service_unavailable with Retry-After."),
  RTMANAGER_HTTP_REQUEST_TIMEOUT: row("30s", duration({ min: 1000 }), "Time a client has to send a whole request (headers and body)."),
  RTMANAGER_HTTP_IDLE_TIMEOUT: row("60s", duration({ min: 1000 }), "A socket silent this long mid-request is closed; mutations wait up to RTMANAGER_OP_TIMEOUT instead, event streams have keep-alives."),
  RTMANAGER_RUNTIME: row("docker", oneOf(["docker", "kubernetes"]), "What runs the engines: `docker` (containers on one Docker engine) or `kubernetes` (one Pod per game, with a Service and a claim; see docs/kubernetes.md). Independent of RTMANAGER_SOURCE."),
  RTMANAGER_POD_NAMESPACE: row("", namespaceOrEmpty, "Pod runtime: namespace of the game Pods, Services and claims. Empty: POD_NAMESPACE, else `default`. With RTMANAGER_SOURCE=kubernetes each game's objects go to its GameRuntime's namespace instead."),
  RTMANAGER_POD_CLIENT_NAMESPACES: row("", namespaceList, "Pod runtime: comma-separated namespaces of clients (Game Master) outside the games' namespace; each game gets an ExternalName Service `galaxy-game-<id>` there, so `engine_endpoint` resolves in them too. Empty: none."),
  RTMANAGER_POD_CLUSTER_DOMAIN: row("cluster.local", dnsDomain, "Pod runtime: the cluster's DNS domain, for the ExternalName Services of RTMANAGER_POD_CLIENT_NAMESPACES (`galaxy-game-<id>.<namespace>.svc.<domain>`)."),
  RTMANAGER_POD_STORAGE_CLASS: row("", text, "Pod runtime: storage class of each game's state claim; empty: the cluster's default class."),
  RTMANAGER_POD_STORAGE_SIZE: row("1Gi", kubeQuantity, "Pod runtime: size requested by each game's state claim (a Kubernetes quantity)."),
  RTMANAGER_POD_TEMPLATE_FILE: row("", text, "Pod runtime: a JSON or YAML file (a mounted ConfigMap) with the Pods' `nodeSelector`, `tolerations`, `priorityClassName`, `serviceAccountName` and `imagePullSecrets` (names); no other key is accepted."),
  RTMANAGER_POD_START_TIMEOUT: row("30s", duration({ min: 1000 }), "Pod runtime: how long after its Pod's creation an engine may take to run before its start fails with `container_start_failed` (nothing waits for it; the loop follows the Pod watch)."),
  RTMANAGER_POD_CLAIM_RETENTION: row("0", duration({ min: 1_000, zeroMeansOff: true }), "Pod runtime: a game's state claim is deleted this long after its engine was removed (cleanup, or RTMANAGER_CONTAINER_RETENTION), unless an engine was created for it since. `0` (the default) keeps every claim, as the Docker runtime keeps state directories; applies to engines removed while it is set."),
} as const;

export type SettingName = keyof typeof SETTINGS;
/** Each setting's parsed value, typed by its row's parser. */
export type SettingValues = { [K in SettingName]: ReturnType<(typeof SETTINGS)[K]["parse"]> };

/** A row as documented (README table, scripts/config-table.ts). */
export interface Setting {
  env: string;
  default: string | undefined;
  doc: string;
}

export const CONFIG_DOCS: Setting[] = Object.entries(SETTINGS).map(([env, s]) => ({
  env,
  default: s.default,
  doc: s.parse.rule ? `${s.doc} ${s.parse.rule}` : s.doc,
}));
