/** EngineHardening as Docker's create options. */
import { createHash } from "node:crypto";
import type Dockerode from "dockerode";
import type { EngineHardening } from "../engineHardening.js";

/** Writable scratch space when the root filesystem is read-only. Its pages count against the engine's memory limit. */
export const READ_ONLY_TMPFS = { "/tmp": "rw,nosuid,nodev,mode=1777" } as const;

/** Docker's json-file takes sizes as a number with a k, m or g suffix (powers of 1024). */
export function dockerSize(bytes: number): string {
  for (const [suffix, unit] of [["g", 1024 ** 3], ["m", 1024 ** 2], ["k", 1024]] as const) {
    if (bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return String(bytes);
}

export type HardenedHostConfig = Pick<Dockerode.HostConfig, "CapDrop" | "CapAdd" | "SecurityOpt" | "LogConfig" | "ReadonlyRootfs" | "Tmpfs" | "GroupAdd">;

export function hardenedHostConfig(h: EngineHardening): HardenedHostConfig {
  return {
    CapDrop: ["ALL"],
    CapAdd: h.capAdd.length > 0 ? [...h.capAdd] : undefined,
    // Always on: a setuid binary or file capabilities in an image never gain
    // anything. No setting turns it off (docs/engine-hardening.md says why).
    SecurityOpt: ["no-new-privileges"],
    // Whatever the daemon's default driver: json-file keeps `docker logs`
    // (and the API's logs) working, and the cap keeps a chatty engine from
    // filling the host's disk.
    LogConfig: { Type: "json-file", Config: { "max-size": dockerSize(h.logMaxSizeBytes), "max-file": String(h.logMaxFiles) } },
    ReadonlyRootfs: h.readOnlyRootFilesystem,
    Tmpfs: h.readOnlyRootFilesystem ? { ...READ_ONLY_TMPFS } : undefined,
    // The state directory's group (stateDir.ts): an engine of any uid writes its state through it.
    GroupAdd: [String(h.fsGroup)],
  };
}

/** Config.User: "uid" or "uid:gid"; undefined keeps the image's user. */
export function engineUser(h: EngineHardening): string | undefined {
  if (!h.user) return undefined;
  return h.user.gid === null ? String(h.user.uid) : `${h.user.uid}:${h.user.gid}`;
}

/**
 * A short digest of the hardening an engine was created with. It rides on the
 * container as a label for operators (which engines predate a change); it is
 * deliberately not part of the config hash, so a changed setting never
 * recreates every engine at once (docs/engine-hardening.md).
 */
export function hardeningDigest(h: EngineHardening): string {
  const canonical = [[...h.capAdd].sort(), h.logMaxSizeBytes, h.logMaxFiles, h.readOnlyRootFilesystem, h.user?.uid ?? null, h.user?.gid ?? null, h.fsGroup];
  return createHash("sha256").update(JSON.stringify(canonical)).digest("hex").slice(0, 12);
}
