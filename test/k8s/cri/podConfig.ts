/**
 * A Pod's resources and security context in CRI terms, as the kubelet builds
 * them (pkg/kubelet/kuberuntime/kuberuntime_container_linux.go
 * generateLinuxContainerConfig / calculateLinuxResources,
 * security_context.go determineEffectiveSecurityContext and
 * convertToRuntimeSecurityContext, helpers.go getSeccompProfile, and
 * pkg/kubelet/qos GetContainerOOMScoreAdjust). Containerd enforces what comes
 * out: cgroup limits, uid/gid, capabilities, seccomp, no_new_privs.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { ContainerSpec, PodSpec, SeccompProfile } from "../kubelet/types.js";
import type { LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext, PodSandboxConfig, SecurityProfile } from "./client.js";

const CPU_PERIOD = 100_000;
const MIN_SHARES = 2;
const MIN_QUOTA = 1000;
/** The test Node's capacity (kubelet.ts readyNodeStatus), for Burstable OOM scores. */
const NODE_MEMORY = 8 * 1024 ** 3;

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** A resource.Quantity in base units (bytes, cores); NaN when it does not parse. */
export function quantity(q: string): number {
  const m = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  const unit = m[2];
  if (!unit) return n;
  if (unit === "m") return n / 1000;
  return n * (BINARY[unit] ?? DECIMAL[unit] ?? NaN);
}

/** kuberuntime calculateLinuxResources + qos.GetContainerOOMScoreAdjust. */
export function linuxResources(c: ContainerSpec): LinuxContainerResources {
  const limits = c.resources?.limits ?? {};
  const requests = { ...limits, ...(c.resources?.requests ?? {}) };
  const out: LinuxContainerResources = {};
  const cpuRequest = requests.cpu ? quantity(requests.cpu) : 0;
  const cpuLimit = limits.cpu ? quantity(limits.cpu) : 0;
  out.cpuShares = cpuRequest > 0 ? Math.max(MIN_SHARES, Math.floor(cpuRequest * 1024)) : MIN_SHARES;
  if (cpuLimit > 0) {
    out.cpuPeriod = CPU_PERIOD;
    out.cpuQuota = Math.max(MIN_QUOTA, Math.floor(cpuLimit * CPU_PERIOD));
  }
  const memLimit = limits.memory ? quantity(limits.memory) : 0;
  if (memLimit > 0) out.memoryLimitInBytes = Math.floor(memLimit);
  const memRequest = requests.memory ? quantity(requests.memory) : 0;
  const guaranteed = cpuLimit > 0 && memLimit > 0 && cpuRequest === cpuLimit && memRequest === memLimit;
  if (guaranteed) out.oomScoreAdj = -997;
  else if (cpuRequest === 0 && memRequest === 0) out.oomScoreAdj = 1000;
  else out.oomScoreAdj = Math.min(999, Math.max(2, 1000 - Math.floor((1000 * memRequest) / NODE_MEMORY)));
  return out;
}

/** getSeccompProfile: the container's profile over the pod's; none is Unconfined (the kubelet's --seccomp-default=false). */
function seccomp(profile: SeccompProfile | undefined): SecurityProfile {
  if (!profile) return { profileType: "Unconfined" };
  return profile.type === "Localhost" ? { profileType: "Localhost", localhostRef: profile.localhostProfile ?? "" } : { profileType: profile.type };
}

/** determineEffectiveSecurityContext (container over pod) then convertToRuntimeSecurityContext. */
export function linuxSecurityContext(pod: PodSpec, c: ContainerSpec): LinuxContainerSecurityContext {
  const p = pod.securityContext ?? {};
  const s = c.securityContext ?? {};
  const out: LinuxContainerSecurityContext = { seccomp: seccomp(s.seccompProfile ?? p.seccompProfile) };
  const uid = s.runAsUser ?? p.runAsUser;
  const gid = s.runAsGroup ?? p.runAsGroup;
  if (uid !== undefined) out.runAsUser = { value: uid };
  if (gid !== undefined) out.runAsGroup = { value: gid };
  const groups = [...(p.supplementalGroups ?? []), ...(p.fsGroup !== undefined ? [p.fsGroup] : [])];
  if (groups.length > 0) out.supplementalGroups = groups;
  if (s.capabilities) out.capabilities = { addCapabilities: s.capabilities.add ?? [], dropCapabilities: s.capabilities.drop ?? [] };
  if (s.privileged) out.privileged = true;
  if (s.readOnlyRootFilesystem) out.readonlyRootfs = true;
  // AddNoNewPrivileges: only an explicit allowPrivilegeEscalation=false sets it.
  if (s.allowPrivilegeEscalation === false) out.noNewPrivs = true;
  return out;
}

export function linuxContainerConfig(pod: PodSpec, c: ContainerSpec): LinuxContainerConfig {
  if ((c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) && (c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser) === 0) {
    // verifyRunAsNonRoot: the kubelet refuses before it creates anything (CreateContainerConfigError).
    throw new Error(`container's runAsUser breaks non-root policy (pod: ${c.name})`);
  }
  return { resources: linuxResources(c), securityContext: linuxSecurityContext(pod, c) };
}

/** The sandbox's security context (generatePodSandboxLinuxConfig). */
export function sandboxSecurityContext(pod: PodSpec): PodSandboxConfig["linux"]["securityContext"] {
  const p = pod.securityContext ?? {};
  const groups = [...(p.supplementalGroups ?? []), ...(p.fsGroup !== undefined ? [p.fsGroup] : [])];
  return {
    ...(p.runAsUser !== undefined ? { runAsUser: { value: p.runAsUser } } : {}),
    ...(p.runAsGroup !== undefined ? { runAsGroup: { value: p.runAsGroup } } : {}),
    ...(groups.length > 0 ? { supplementalGroups: groups } : {}),
    seccomp: seccomp(p.seccompProfile),
  };
}

/**
 * volume.SetVolumeOwnership, the kubelet's fsGroup for volumes it mounts:
 * every file's group becomes fsGroup, group rw (rwx for directories), and
 * directories setgid so new files keep the group.
 */
export async function volumeOwnership(pod: PodSpec, binds: string[]): Promise<void> {
  const gid = pod.securityContext?.fsGroup;
  if (gid === undefined) return;
  const walk = async (p: string): Promise<void> => {
    const st = await fs.lstat(p);
    if (st.isSymbolicLink()) return;
    await fs.chown(p, st.uid, gid);
    await fs.chmod(p, st.isDirectory() ? (st.mode & 0o7777) | 0o2070 : (st.mode & 0o7777) | 0o060);
    if (st.isDirectory()) for (const e of await fs.readdir(p)) await walk(path.join(p, e));
  };
  for (const b of binds) {
    const [hostPath, , mode] = b.split(":");
    if (hostPath && mode !== "ro") await walk(hostPath);
  }
}
