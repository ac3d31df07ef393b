/**
 * How every engine is confined, whatever runs it. One object, named after
 * what it means rather than after Docker's fields: the Docker runtime maps it
 * onto a container's HostConfig (src/runtime/docker/hardening.ts), a Pod
 * runtime onto a Pod's securityContext (docs/engine-hardening.md has the
 * mapping).
 */
import { parseMemory } from "../model/duration.js";

export interface EngineUser {
  uid: number;
  /** Null: the image's (or the runtime's) primary group for that uid. */
  gid: number | null;
}

export interface EngineHardening {
  /** Capabilities an engine keeps; every other one is dropped. Upper case, without `CAP_`. */
  capAdd: readonly string[];
  /** Size at which an engine's log file is rotated, in bytes. */
  logMaxSizeBytes: number;
  /** Rotated log files kept per engine, the current one included. */
  logMaxFiles: number;
  /** Root filesystem mounted read-only, with a writable tmpfs on /tmp. */
  readOnlyRootFilesystem: boolean;
  /** Null: the image's own user. */
  user: EngineUser | null;
  /**
   * The group that owns every game's state directory (mode 2770) and that
   * every engine gets as a supplementary group, as Kubernetes' fsGroup does:
   * an engine of any uid, with no capability to bypass file permissions,
   * can write its state.
   */
  fsGroup: number;
}

/**
 * The capabilities a container can be given (capabilities(7), Linux 5.9+).
 * A name outside it is refused at start-up, not at each game's create.
 */
export const LINUX_CAPABILITIES: ReadonlySet<string> = new Set([
  "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
  "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
  "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE",
  "NET_BROADCAST", "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN",
  "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO",
  "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
]);

export const ENGINE_HARDENING_ENV = {
  capAdd: "RTMANAGER_ENGINE_CAP_ADD",
  logMaxSize: "RTMANAGER_ENGINE_LOG_MAX_SIZE",
  logMaxFiles: "RTMANAGER_ENGINE_LOG_MAX_FILES",
  readOnlyRootFilesystem: "RTMANAGER_ENGINE_READ_ONLY_ROOTFS",
  user: "RTMANAGER_ENGINE_USER",
  fsGroup: "RTMANAGER_ENGINE_FS_GROUP",
} as const;

export type HardeningParse = { ok: true; value: EngineHardening } | { ok: false; issues: string[] };

/** A uid or gid: Linux ids are unsigned 32-bit, and 2^32-1 means "no id". */
function parseId(text: string): number | null {
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n < 4294967295 ? n : null;
}

function parseCapabilities(text: string, issues: string[]): string[] {
  const names = text
    .split(",")
    .map((s) => s.trim().toUpperCase().replace(/^CAP_/, ""))
    .filter((s) => s !== "");
  for (const name of names) {
    if (name === "ALL") issues.push(`${ENGINE_HARDENING_ENV.capAdd}: ALL would give engines every capability; list the ones an engine needs`);
    else if (!LINUX_CAPABILITIES.has(name)) issues.push(`${ENGINE_HARDENING_ENV.capAdd}: ${JSON.stringify(name)} is not a Linux capability`);
  }
  return [...new Set(names)].sort();
}

function parseUser(text: string, issues: string[]): EngineUser | null {
  if (text === "") return null;
  const [uidText, gidText, extra] = text.split(":");
  const uid = parseId(uidText ?? "");
  const gid = gidText === undefined ? null : parseId(gidText);
  if (uid === null || (gidText !== undefined && gid === null) || extra !== undefined) {
    // Numeric only: a name means nothing outside the image, and a Pod's runAsUser takes a number.
    issues.push(`${ENGINE_HARDENING_ENV.user}: ${JSON.stringify(text)} is not uid or uid:gid (numbers)`);
    return null;
  }
  return { uid, gid };
}

/**
 * Reads the engine hardening settings. `read` gives a variable's value or its
 * documented default; `controllerGid` is the default fsGroup (the
 * controller's own group, so it can always hand its directories to it).
 */
export function parseEngineHardening(read: (env: string) => string, controllerGid: number): HardeningParse {
  const issues: string[] = [];
  const env = ENGINE_HARDENING_ENV;
  const capAdd = parseCapabilities(read(env.capAdd), issues);
  const logMaxSizeBytes = parseMemory(read(env.logMaxSize));
  if (logMaxSizeBytes === null) issues.push(`${env.logMaxSize}: ${JSON.stringify(read(env.logMaxSize))} is not a size such as 10m`);
  const filesText = read(env.logMaxFiles);
  const logMaxFiles = /^[1-9][0-9]{0,3}$/.test(filesText) ? Number(filesText) : null;
  if (logMaxFiles === null) issues.push(`${env.logMaxFiles}: ${JSON.stringify(filesText)} is not a whole number from 1 to 9999`);
  const rootfsText = read(env.readOnlyRootFilesystem);
  const readOnly = /^(true|1|yes)$/i.test(rootfsText) ? true : /^(false|0|no|)$/i.test(rootfsText) ? false : null;
  if (readOnly === null) issues.push(`${env.readOnlyRootFilesystem}: ${JSON.stringify(rootfsText)} is not true or false`);
  const user = parseUser(read(env.user), issues);
  const fsGroupText = read(env.fsGroup);
  const fsGroup = fsGroupText === "" ? controllerGid : parseId(fsGroupText);
  if (fsGroup === null) issues.push(`${env.fsGroup}: ${JSON.stringify(fsGroupText)} is not a numeric group id`);
  if (issues.length > 0 || logMaxSizeBytes === null || logMaxFiles === null || readOnly === null || fsGroup === null) return { ok: false, issues };
  return { ok: true, value: { capAdd, logMaxSizeBytes, logMaxFiles, readOnlyRootFilesystem: readOnly, user, fsGroup } };
}

/** The defaults, for runtimes built without a configuration (tests, tools). */
export function defaultEngineHardening(controllerGid: number = process.getgid?.() ?? 0): EngineHardening {
  return { capAdd: [], logMaxSizeBytes: 10 * 1024 * 1024, logMaxFiles: 3, readOnlyRootFilesystem: false, user: null, fsGroup: controllerGid };
}
