/**
 * What an installation accepts to run, whoever declared it (REST, SQL,
 * kubectl): the image allow-list and the resource ceilings. Pure checks; the
 * REST edge, the planner and the executor each call them where they first
 * know the values, and refuse with start_config_invalid.
 */
import { RESOURCE_FLOORS } from "./declaration.js";
import { parseMemory } from "./duration.js";
import { parseImageRef } from "./imageRef.js";

export interface ResourceCeilings {
  cpus: number;
  memoryBytes: number;
  pidsLimit: number;
}

/** Resources as numbers, from a declaration or image labels; absent means "not asked for". */
export interface AskedResources {
  cpus?: number;
  memoryBytes?: number;
  pidsLimit?: number;
}

const isRegistry = (component: string): boolean => component.includes(".") || component.includes(":") || component === "localhost";

/** A repository with its registry spelled out, as Docker resolves it: `galaxy/x` is `docker.io/galaxy/x`. */
function qualify(repository: string, officialLibrary: boolean): string {
  const parts = repository.split("/");
  if (parts.length > 1 && isRegistry(parts[0]!)) return repository;
  if (officialLibrary && parts.length === 1) return `docker.io/library/${repository}`;
  return `docker.io/${repository}`;
}

/**
 * Entries are registry or repository prefixes (`registry.example.com`,
 * `galaxy/engine`, `docker.io/library/nginx`); a tag or digest has no place
 * in one. Throws on an entry that cannot be a prefix.
 */
export function normaliseAllowlist(entries: readonly string[]): string[] {
  return entries.map((raw) => {
    const entry = raw.replace(/\/+$/, "");
    if (!/^[a-z0-9][a-z0-9._:/-]*$/.test(entry) || entry.includes("//") || entry.includes("@")) {
      throw new Error(`${JSON.stringify(raw)} is not a registry or repository prefix (lowercase, e.g. registry.example.com/galaxy)`);
    }
    const parts = entry.split("/");
    // A ':' after the registry component would be a tag.
    if (parts.slice(isRegistry(parts[0]!) ? 1 : 0).some((p) => p.includes(":")) || (parts.length === 1 && entry.includes(":") && !isRegistry(entry))) {
      throw new Error(`${JSON.stringify(raw)} carries a tag; list repositories, not images`);
    }
    return parts.length === 1 && isRegistry(entry) ? entry : qualify(entry, false);
  });
}

/** null when allowed (or no allow-list), else why not. Prefixes match on path boundaries only. */
export function imageRefused(imageRef: string, allowlist: readonly string[] | undefined): string | null {
  if (!allowlist || allowlist.length === 0) return null;
  const repository = qualify(parseImageRef(imageRef).repository, true);
  for (const entry of allowlist) {
    if (repository === entry || repository.startsWith(`${entry}/`)) return null;
  }
  return `image ${JSON.stringify(imageRef)} is not in RTMANAGER_IMAGE_ALLOWLIST (${allowlist.join(", ")})`;
}

/** null when within the ceilings, else a message naming what is too much and where it came from. */
export function resourcesRefused(asked: AskedResources, ceilings: ResourceCeilings | undefined, source: string): string | null {
  if (!ceilings) return null;
  const over: string[] = [];
  if (asked.cpus !== undefined && asked.cpus > ceilings.cpus) over.push(`cpus ${asked.cpus} > RTMANAGER_MAX_CPUS ${ceilings.cpus}`);
  if (asked.memoryBytes !== undefined && asked.memoryBytes > ceilings.memoryBytes) {
    over.push(`memory ${asked.memoryBytes} bytes > RTMANAGER_MAX_MEMORY ${ceilings.memoryBytes} bytes`);
  }
  if (asked.pidsLimit !== undefined && asked.pidsLimit > ceilings.pidsLimit) over.push(`pidsLimit ${asked.pidsLimit} > RTMANAGER_MAX_PIDS_LIMIT ${ceilings.pidsLimit}`);
  return over.length === 0 ? null : `${source} asks for more than this installation allows: ${over.join("; ")}`;
}

/** A declaration's `resources` as numbers (memory strings are already schema-checked). */
export function declaredResources(resources: { cpus?: number; memory?: string; pidsLimit?: number } | undefined): AskedResources {
  if (!resources) return {};
  const memoryBytes = resources.memory ? (parseMemory(resources.memory) ?? undefined) : undefined;
  return { cpus: resources.cpus, memoryBytes, pidsLimit: resources.pidsLimit };
}

/** null when every asked limit is at or above its floor, else a message naming what would round to no limit. */
export function resourcesBelowFloor(asked: AskedResources, source: string): string | null {
  const under: string[] = [];
  if (asked.cpus !== undefined && !(asked.cpus >= RESOURCE_FLOORS.cpus)) under.push(`cpus ${asked.cpus} < ${RESOURCE_FLOORS.cpus}`);
  if (asked.memoryBytes !== undefined && !(asked.memoryBytes >= RESOURCE_FLOORS.memoryBytes)) {
    under.push(`memory ${asked.memoryBytes} bytes < ${RESOURCE_FLOORS.memoryBytes} bytes`);
  }
  if (asked.pidsLimit !== undefined && !(asked.pidsLimit >= RESOURCE_FLOORS.pidsLimit)) under.push(`pidsLimit ${asked.pidsLimit} < ${RESOURCE_FLOORS.pidsLimit}`);
  return under.length === 0 ? null : `${source} asks for less than any limit can be (it would round to none): ${under.join("; ")}`;
}

export const RESOURCE_LABELS = { cpus: "com.galaxy.cpu_quota", memory: "com.galaxy.memory", pidsLimit: "com.galaxy.pids_limit" } as const;

/**
 * The com.galaxy.* resource labels of an image as numbers. An absent or empty
 * label is "not asked for"; any other value that is not a number (a size for
 * memory, an integer for PIDs) is refused rather than skipped, so a label that
 * means "tiny" can never fall back to a larger declaration or default.
 */
export function labelResources(labels: Readonly<Record<string, string>>): { asked: AskedResources; refused: string | null } {
  const text = (key: string): string | undefined => {
    const v = labels[key]?.trim();
    return v ? v : undefined;
  };
  const bad: string[] = [];
  const cpuText = text(RESOURCE_LABELS.cpus);
  const memText = text(RESOURCE_LABELS.memory);
  const pidsText = text(RESOURCE_LABELS.pidsLimit);
  const cpus = cpuText === undefined ? undefined : Number(cpuText);
  const memoryBytes = memText === undefined ? undefined : parseMemory(memText);
  const pidsLimit = pidsText === undefined ? undefined : Number(pidsText);
  if (cpus !== undefined && !Number.isFinite(cpus)) bad.push(`${RESOURCE_LABELS.cpus}=${JSON.stringify(cpuText)} is not a number`);
  if (memoryBytes === null) bad.push(`${RESOURCE_LABELS.memory}=${JSON.stringify(memText)} is not a size such as 512m`);
  if (pidsLimit !== undefined && !Number.isInteger(pidsLimit)) bad.push(`${RESOURCE_LABELS.pidsLimit}=${JSON.stringify(pidsText)} is not an integer`);
  const asked: AskedResources = { cpus, memoryBytes: memoryBytes ?? undefined, pidsLimit };
  return { asked, refused: bad.length > 0 ? `the image's labels are unusable: ${bad.join("; ")}` : null };
}
