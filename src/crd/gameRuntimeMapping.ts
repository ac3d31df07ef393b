/**
 * GameRuntime object <-> runtime declaration: pure functions, no I/O.
 *
 * The loop's generation of a declaration is the object's metadata.generation
 * plus the generation base annotation (see api.ts). An object that is being
 * deleted is declared `removed`, whatever its spec says, so a broken object can
 * still be cleaned up and let go.
 */
import { describeZodError, RuntimeSpecSchema, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { OP_SOURCES, type OpSource } from "../model/status.js";
import { specForObject, specFromObject } from "./resources.js";

export { specForObject };
import { ANNOTATION_GENERATION_BASE, ANNOTATION_OP_GENERATION, ANNOTATION_OP_ID, ANNOTATION_OP_SOURCE, FINALIZER, type GameRuntimeObject } from "./api.js";

function isOpSource(value: unknown): value is OpSource {
  return typeof value === "string" && (OP_SOURCES as readonly string[]).includes(value);
}

export function toDate(value: unknown): Date | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value;
  if (typeof value === "string" || typeof value === "number") {
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}

/** The generation base annotation, or undefined when the object has none yet. */
export function annotatedGenerationBase(obj: GameRuntimeObject): number | undefined {
  const raw = obj.metadata.annotations?.[ANNOTATION_GENERATION_BASE];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** The generation base annotation, or 0. */
export function generationBaseOf(obj: GameRuntimeObject): number {
  return annotatedGenerationBase(obj) ?? 0;
}

export function isDeleting(obj: GameRuntimeObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined && obj.metadata.deletionTimestamp !== null;
}

export function hasFinalizer(obj: GameRuntimeObject): boolean {
  return (obj.metadata.finalizers ?? []).includes(FINALIZER);
}

/** Carries our finalizer and a generation base: nothing left for ensureFinalizer to write. */
export function isAdopted(obj: GameRuntimeObject): boolean {
  return hasFinalizer(obj) && annotatedGenerationBase(obj) !== undefined;
}

/** What changes the loop's view of an object; status-only and unrelated metadata writes do not wake it. */
export function fingerprint(obj: GameRuntimeObject): string {
  return JSON.stringify([
    obj.metadata.uid ?? "",
    obj.metadata.generation ?? 0,
    obj.metadata.annotations?.[ANNOTATION_GENERATION_BASE] ?? "",
    isDeleting(obj),
    hasFinalizer(obj),
  ]);
}

/** The object's current generation was written by this controller's REST API (not kubectl). */
export function writtenByRest(obj: GameRuntimeObject): boolean {
  return obj.metadata.annotations?.[ANNOTATION_OP_GENERATION] === String(obj.metadata.generation ?? 1);
}

/** The spec as the loop sees it: undefined fields dropped, so two specs compare by JSON. */
export function canonicalSpec(spec: RuntimeSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(RuntimeSpecSchema.shape).sort()) {
    const value = (spec as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      const obj = value as Record<string, unknown>;
      out[key] = Object.fromEntries(
        Object.keys(obj)
          .sort()
          .filter((k) => obj[k] !== undefined)
          .map((k) => [k, obj[k]]),
      );
    } else out[key] = value;
  }
  return out;
}

export function sameSpec(a: RuntimeSpec, b: RuntimeSpec): boolean {
  return JSON.stringify(canonicalSpec(a)) === JSON.stringify(canonicalSpec(b));
}

/**
 * The declaration an object stands for. `base` is the generation base to use
 * when the object carries none yet (default 0): the reader passes the floor
 * that ensureFinalizer would write, so the generation does not jump when it does.
 * A spec that fails the schema (or names another game than the object) is
 * start_config_invalid, except while the object is being deleted.
 */
export function declarationOf(obj: GameRuntimeObject, base = 0): Declaration {
  const name = obj.metadata.name;
  const where = `GameRuntime ${obj.metadata.namespace}/${name}`;
  const annotations = obj.metadata.annotations ?? {};
  const objectGeneration = obj.metadata.generation ?? 1;
  const generation = objectGeneration + (annotatedGenerationBase(obj) ?? base);
  const createdAt = toDate(obj.metadata.creationTimestamp) ?? new Date(0);
  const managedTimes = (obj.metadata.managedFields ?? []).map((f) => toDate(f.time)?.getTime() ?? 0);
  const updatedAt = new Date(Math.max(createdAt.getTime(), ...managedTimes));
  const deleting = isDeleting(obj);

  const converted = specFromObject(obj.spec, writtenByRest(obj));
  const parsed = RuntimeSpecSchema.safeParse(converted.ok ? converted.value : obj.spec);
  let problem: string | null = null;
  if (!converted.ok) problem = converted.problem;
  else if (!parsed.success) problem = `spec does not pass the schema: ${describeZodError(parsed.error)}`;
  else if (parsed.data.gameId !== name) problem = `spec.gameId ${JSON.stringify(parsed.data.gameId)} must equal metadata.name ${JSON.stringify(name)}`;

  if (problem !== null && !deleting) {
    throw new RtmError("start_config_invalid", `${where}: ${problem}`, { gameId: name, namespace: obj.metadata.namespace });
  }
  // The REST writer's op id counts only for the generation it wrote; a later
  // change (kubectl edit, apply) is the cluster's.
  const byLastWriter = writtenByRest(obj) && !deleting;
  const opSource: OpSource = byLastWriter && isOpSource(annotations[ANNOTATION_OP_SOURCE]) ? (annotations[ANNOTATION_OP_SOURCE] as OpSource) : "kubernetes";
  const meta = {
    generation,
    opId: byLastWriter ? (annotations[ANNOTATION_OP_ID] ?? null) : null,
    opSource,
    createdAt,
    updatedAt,
  };
  if (parsed.success && problem === null) {
    return { ...parsed.data, ...(deleting ? { desiredState: "removed" as const } : {}), ...meta };
  }
  const raw = (typeof obj.spec === "object" && obj.spec !== null ? obj.spec : {}) as { imageRef?: unknown };
  return {
    gameId: name,
    imageRef: typeof raw.imageRef === "string" ? raw.imageRef : "unknown:0.0.0",
    desiredState: "removed",
    restartPolicy: "never",
    ...meta,
  };
}
