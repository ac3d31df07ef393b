/**
 * Docker's answers (container list entries and inspect results) as the
 * ObservedContainer the controller reasons about.
 */
import type Dockerode from "dockerode";
import type { EnginePhase, ObservedContainer } from "../../model/ports.js";
import { ENGINE_PORT as ENGINE_HTTP_PORT } from "../../model/engine.js";
import { ENGINE_PORT, LABELS, ownedBy } from "./labels.js";

/** Docker reports "never" as the zero time rather than leaving the field out. */
export function parseDockerTime(value: string | undefined | null): Date | null {
  if (!value || value.startsWith("0001-01-01")) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

function parseGeneration(value: string | undefined): number | null {
  if (value === undefined || !/^\d+$/.test(value)) return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Docker's container state as the port's phase. "restarting" and "paused"
 * still hold a live engine; "removing" and "dead" are as good as exited. The
 * API's list is closed, so an unknown word means a newer engine: exited, the
 * phase the controller replaces or restarts per policy.
 */
const PHASE_OF_STATE: Readonly<Record<string, EnginePhase>> = {
  created: "pending",
  running: "running",
  restarting: "running",
  paused: "running",
  removing: "exited",
  exited: "exited",
  dead: "exited",
};

export function phaseOf(status: string): EnginePhase {
  return PHASE_OF_STATE[status] ?? "exited";
}

/** What Docker never reports: it neither restarts (RestartPolicy "no"), probes, places nor explains an engine. */
const NOT_REPORTED = { restartCount: null, ready: null, restartPolicy: null, lostPlacement: null, problem: null } as const;

function publishedPort(info: Dockerode.ContainerInspectInfo): number | null {
  const bindings = info.NetworkSettings?.Ports?.[ENGINE_PORT];
  if (!bindings) return null;
  for (const b of bindings) {
    const port = Number(b.HostPort);
    if (Number.isInteger(port) && port > 0) return port;
  }
  return null;
}

/**
 * The observed container from a list entry alone (no inspect): the exit code
 * is read from Docker's status text ("Exited (137) 5 seconds ago"); OOM and
 * start/finish times are unknown.
 */
export function observedFromSummary(s: Dockerode.ContainerInfo, instance: string): ObservedContainer | null {
  const labels = s.Labels ?? {};
  if (!ownedBy(labels, instance)) return null;
  const phase = phaseOf(s.State);
  const exit = /^Exited \((-?\d+)\)/.exec(s.Status ?? "");
  const port = (s.Ports ?? []).find((p) => p.PrivatePort === ENGINE_HTTP_PORT && p.Type === "tcp" && p.PublicPort > 0);
  return {
    id: s.Id,
    name: (s.Names?.[0] ?? "").replace(/^\//, ""),
    gameId: labels[LABELS.gameId] as string,
    instance,
    generation: parseGeneration(labels[LABELS.generation]),
    imageRef: labels[LABELS.imageRef] || s.Image,
    restartToken: labels[LABELS.restartToken] || null,
    configHash: labels[LABELS.configHash] || null,
    phase,
    restarting: s.State === "restarting",
    exitCode: exit ? Number(exit[1]) : null,
    oomKilled: false,
    createdAt: new Date(s.Created * 1000),
    startedAt: null,
    finishedAt: null,
    publishedPort: phase === "running" && port ? port.PublicPort : null,
    networkAddresses: addressesOf(s.NetworkSettings?.Networks),
    ...NOT_REPORTED,
  };
}

/**
 * The observed container behind an inspect result, or null when it does not
 * belong to `instance` (so a caller can never act on someone else's container
 * even if a filter were wrong).
 */
export function observedFromInspect(info: Dockerode.ContainerInspectInfo, instance: string): ObservedContainer | null {
  const labels = info.Config?.Labels ?? {};
  if (!ownedBy(labels, instance)) return null;
  const phase = phaseOf(info.State.Status);
  const ended = phase === "exited";
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    gameId: labels[LABELS.gameId] as string,
    instance,
    generation: parseGeneration(labels[LABELS.generation]),
    imageRef: labels[LABELS.imageRef] || info.Config.Image,
    restartToken: labels[LABELS.restartToken] || null,
    configHash: labels[LABELS.configHash] || null,
    phase,
    restarting: info.State.Status === "restarting",
    // Docker keeps ExitCode 0 on a container that has not exited yet; a
    // "created" one with a non-zero code is a start that failed (127: no entrypoint).
    exitCode: ended || (phase === "pending" && info.State.ExitCode !== 0) ? info.State.ExitCode : null,
    oomKilled: info.State.OOMKilled === true,
    createdAt: parseDockerTime(info.Created) ?? new Date(0),
    startedAt: parseDockerTime(info.State.StartedAt),
    finishedAt: parseDockerTime(info.State.FinishedAt),
    publishedPort: publishedPort(info),
    networkAddresses: addressesOf(info.NetworkSettings?.Networks),
    ...NOT_REPORTED,
  };
}

/** Network name -> IPv4 address; Docker reports "" for a network of a container that is not running. */
function addressesOf(networks: Record<string, { IPAddress?: string }> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, n] of Object.entries(networks ?? {})) if (n.IPAddress) out[name] = n.IPAddress;
  return out;
}
