/**
 * A GameRuntime's resources are written as Kubernetes writes them
 * (`memory: 512Mi`, `cpus: 500m`); the declaration, SQL and REST keep the
 * contract's form (`memory: 512m` = 512 MiB, `cpus: 0.5`). Pure functions
 * converting between the two at the object boundary, so the rest of the loop
 * only ever sees the contract's form:
 * - reading an object: quantities (src/model/quantity.ts) to the contract;
 * - writing one (REST, in Kubernetes mode): the contract to quantities, in
 *   the same unit, so reading it back gives exactly what was written.
 * `512m` memory in an object is refused: Kubernetes reads it as 0.512 bytes.
 */
import { RESOURCE_FLOORS } from "../model/declaration.js";
import { isWhole, parseQuantity, wholeValue, type Quantity } from "../model/quantity.js";

/** Binary quantity suffix <-> the contract's (Docker's) binary suffix. */
const TO_CONTRACT: Record<string, string> = { Ki: "k", Mi: "m", Gi: "g" };
const TO_QUANTITY: Record<string, string> = { k: "Ki", m: "Mi", g: "Gi" };
/** The contract's memory is at most 12 digits and a suffix (MEMORY_PATTERN). */
const MAX_DIGITS = 12;

export type Converted<T> = { ok: true; value: T } | { ok: false; problem: string };

function contractMemory(bytes: bigint): string | null {
  for (const [suffix, size] of [["g", 1024n ** 3n], ["m", 1024n ** 2n], ["k", 1024n], ["", 1n]] as const) {
    if (bytes % size === 0n && String(bytes / size).length <= MAX_DIGITS) return `${bytes / size}${suffix}`;
  }
  return null;
}

/**
 * An object's `resources.memory` (quantity string or integer) in the
 * contract's form. `restWritten`: the object's current generation was written
 * by this controller's REST API; before quantities it wrote the contract's
 * form (`512m`), which is read as it was meant. It writes `512Mi` now, so a
 * `512m` of its own can only be such an old one.
 */
export function memoryFromQuantity(raw: unknown, restWritten = false): Converted<string> {
  const text = typeof raw === "number" && Number.isSafeInteger(raw) ? String(raw) : raw;
  if (typeof text !== "string") return { ok: false, problem: "resources.memory must be a Kubernetes quantity such as 512Mi" };
  if (restWritten && /^[1-9][0-9]{0,11}[mg]$/.test(text)) return { ok: true, value: text };
  if (/^[0-9.]+[mg]$/.test(text)) {
    const hint = `${text.slice(0, -1)}${text.endsWith("m") ? "Mi" : "Gi"}`;
    return { ok: false, problem: `resources.memory ${JSON.stringify(text)} is not a Kubernetes size (m is milli there): write ${hint}` };
  }
  const q = parseQuantity(text);
  if (q === null || !isWhole(q)) return { ok: false, problem: `resources.memory ${JSON.stringify(text)} is not a whole number of bytes as a Kubernetes quantity (e.g. 512Mi, 1Gi)` };
  const bytes = wholeValue(q);
  if (bytes < BigInt(RESOURCE_FLOORS.memoryBytes)) return { ok: false, problem: `resources.memory ${JSON.stringify(text)} is below the minimum of 6Mi` };
  // Same unit when it has one, so a REST-written 1024Mi reads back as 1024m, not 1g.
  const m = /^([0-9]+)(Ki|Mi|Gi)?$/.exec(text);
  const value = m && String(BigInt(m[1]!)).length <= MAX_DIGITS ? `${BigInt(m[1]!)}${m[2] ? TO_CONTRACT[m[2]] : ""}` : contractMemory(bytes);
  if (value === null) return { ok: false, problem: `resources.memory ${JSON.stringify(text)} is too large` };
  return { ok: true, value };
}

/** An object's `resources.cpus` (a number, or a quantity string such as 500m) as a number of CPUs. */
export function cpusFromQuantity(raw: unknown): Converted<number> {
  if (typeof raw === "number") return { ok: true, value: raw };
  const q: Quantity | null = typeof raw === "string" ? parseQuantity(raw) : null;
  if (q === null) return { ok: false, problem: `resources.cpus ${JSON.stringify(raw)} is not a number of CPUs or a Kubernetes quantity such as 500m` };
  return { ok: true, value: Number(q.num) / Number(q.den) };
}

/**
 * The spec of an object with its resources in the contract's form, for
 * RuntimeSpecSchema; a quantity that cannot be converted is a problem to
 * report (start_config_invalid), not a value for the schema to misread.
 */
export function specFromObject(spec: unknown, restWritten = false): Converted<unknown> {
  if (typeof spec !== "object" || spec === null) return { ok: true, value: spec };
  const resources = (spec as { resources?: unknown }).resources;
  if (typeof resources !== "object" || resources === null) return { ok: true, value: spec };
  const out: Record<string, unknown> = { ...(resources as Record<string, unknown>) };
  if (out.memory !== undefined) {
    const memory = memoryFromQuantity(out.memory, restWritten);
    if (!memory.ok) return memory;
    out.memory = memory.value;
  }
  if (out.cpus !== undefined) {
    const cpus = cpusFromQuantity(out.cpus);
    if (!cpus.ok) return cpus;
    out.cpus = cpus.value;
  }
  return { ok: true, value: { ...spec, resources: out } };
}

/** A canonical spec (contract form) with its resources as the object carries them. */
export function specForObject(spec: Record<string, unknown>): Record<string, unknown> {
  const resources = spec.resources as { memory?: string; cpus?: number } | undefined;
  if (!resources) return spec;
  const out: Record<string, unknown> = { ...resources };
  if (resources.memory !== undefined) {
    const m = /^([0-9]+)([kmg]?)$/i.exec(resources.memory);
    out.memory = m ? `${m[1]}${m[2] ? TO_QUANTITY[m[2].toLowerCase()] : ""}` : resources.memory;
  }
  // int-or-string: a whole number stays a number, a fraction becomes its exact decimal string.
  if (resources.cpus !== undefined && !Number.isInteger(resources.cpus)) out.cpus = String(resources.cpus);
  return { ...spec, resources: out };
}
