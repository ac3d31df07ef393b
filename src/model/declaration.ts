import { createHash } from "node:crypto";
import { z } from "zod";
import { RtmError } from "./errors.js";
import { parseMemory } from "./duration.js";
import { GameIdSchema } from "./gameId.js";
import { IMAGE_REF_MAX_LENGTH, IMAGE_REF_PATTERN } from "./imageRef.js";
import { DESIRED_STATES, OP_SOURCES, RESTART_POLICIES, STOP_REASONS } from "./status.js";

/**
 * THE runtime declaration schema. Everything else is derived from it or
 * checked against it by a test:
 * - the SQL columns of `declarations` (test/unit/schema-derivation.test.ts),
 * - the GameRuntime CRD's openAPIV3Schema (src/crd/schema.ts generates it),
 * - HTTP validation of the extension endpoints (src/http parses with it).
 * Field names are camelCase here and in the CRD; SQL uses snake_case.
 */

export const MEMORY_PATTERN = /^[1-9][0-9]{0,11}[kmg]?$/;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Variables the controller sets itself; a declaration may not override them. */
export const RESERVED_ENV = ["GAME_STATE_PATH", "GAME_ID"] as const;

/**
 * The smallest limits a declaration, an image label or a setting may ask for.
 * Below 0.01 CPUs, Math.round(cpus * 1e9) can reach 0 nano-CPUs, which Docker
 * and the kubelet both read as "no limit"; 0.01 is also Docker's own lower
 * bound (moby daemon/daemon_unix.go verifyPlatformContainerResources, "Range
 * of CPUs is from 0.01"), and 6 MiB its memory minimum (linuxMinMemory). A
 * PID limit under 16 leaves an engine unable to start its own threads.
 */
export const RESOURCE_FLOORS = { cpus: 0.01, memoryBytes: 6 * 1024 ** 2, pidsLimit: 16 } as const;
export const RESOURCE_MAXIMA = { cpus: 64, pidsLimit: 1_000_000 } as const;

export const ResourcesSchema = z
  .object({
    memory: z
      .string()
      .regex(MEMORY_PATTERN, "memory must be a positive byte count with an optional k, m or g suffix, e.g. 512m")
      .refine((m) => (parseMemory(m) ?? 0) >= RESOURCE_FLOORS.memoryBytes, "memory must be at least 6m (6 MiB)")
      .optional(),
    cpus: z
      .number()
      .min(RESOURCE_FLOORS.cpus, `cpus must be at least ${RESOURCE_FLOORS.cpus}`)
      .max(RESOURCE_MAXIMA.cpus, `cpus must be at most ${RESOURCE_MAXIMA.cpus}`)
      .optional(),
    pidsLimit: z
      .number()
      .int()
      .min(RESOURCE_FLOORS.pidsLimit, `pidsLimit must be at least ${RESOURCE_FLOORS.pidsLimit}`)
      .max(RESOURCE_MAXIMA.pidsLimit)
      .optional(),
  })
  .strict();

export const EnvSchema = z
  .record(z.string().regex(ENV_NAME_PATTERN, "env names must match [A-Za-z_][A-Za-z0-9_]*"), z.string().max(4096))
  .refine((env) => Object.keys(env).length <= 64, "at most 64 env variables")
  .refine(
    (env) => RESERVED_ENV.every((name) => !(name in env)),
    `env may not set ${RESERVED_ENV.join(" or ")}: the controller sets them`,
  );

export const RuntimeSpecSchema = z
  .object({
    gameId: GameIdSchema,
    imageRef: z
      .string()
      .min(1, "imageRef must not be empty")
      .max(IMAGE_REF_MAX_LENGTH)
      .regex(IMAGE_REF_PATTERN, "imageRef must be a Docker reference such as registry/galaxy/engine:1.4.2"),
    desiredState: z.enum(DESIRED_STATES).default("running"),
    restartPolicy: z.enum(RESTART_POLICIES).default("on-failure"),
    resources: ResourcesSchema.optional(),
    env: EnvSchema.optional(),
    /** Why the runtime is desired stopped; recorded in the operation log. */
    stopReason: z.enum(STOP_REASONS).optional(),
    /**
     * Changing this token (REST restart, or an operator editing it) asks for
     * the container to be recreated with the same image, like
     * kubectl rollout restart's restartedAt annotation.
     */
    restartToken: z.string().max(64).optional(),
  })
  .strict();

export type RuntimeSpecInput = z.input<typeof RuntimeSpecSchema>;
export type RuntimeSpec = z.output<typeof RuntimeSpecSchema>;

/** A stored declaration: the spec plus what the store maintains. */
export interface Declaration extends RuntimeSpec {
  /** Bumped by the store on every change of the spec, plain SQL included. */
  generation: number;
  /** Op id and source of the last writer, so the loop can carry them on. */
  opId: string | null;
  opSource: (typeof OP_SOURCES)[number] | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Spec keys that become SQL columns (snake_case) of the declarations table. */
export const SPEC_KEYS = Object.keys(RuntimeSpecSchema.shape) as (keyof RuntimeSpec)[];

/** The spec part of a stored declaration, without what the store maintains. */
export function specOf(d: Declaration): RuntimeSpec {
  const spec: Partial<Record<keyof RuntimeSpec, unknown>> = {};
  for (const key of SPEC_KEYS) if (d[key] !== undefined) spec[key] = d[key];
  return spec as RuntimeSpec;
}

/**
 * The spec a declaration mutator returned, validated for a write to `gameId`:
 * it must pass the schema and name that game. Every declaration source
 * (SQL, Kubernetes) writes only what this returns.
 */
export function checkedSpecFor(gameId: string, next: RuntimeSpecInput): RuntimeSpec {
  const parsed = RuntimeSpecSchema.safeParse(next);
  if (!parsed.success) throw new RtmError("invalid_request", describeZodError(parsed.error), { gameId });
  if (parsed.data.gameId !== gameId) {
    throw new RtmError("invalid_request", `gameId: must be ${JSON.stringify(gameId)}, got ${JSON.stringify(parsed.data.gameId)}`);
  }
  return parsed.data;
}

export function toSnakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * A short digest of what a container is created from besides its image and
 * restart token: env and resources. It rides on the container as a label, so
 * a change of either recreates the engine, as a Kubernetes pod template would.
 */
export function configHash(spec: Pick<RuntimeSpec, "env" | "resources">): string {
  const sorted = (o: Record<string, unknown> | undefined) => (o ? Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b))) : null);
  return createHash("sha256")
    .update(JSON.stringify({ env: sorted(spec.env), resources: sorted(spec.resources) }))
    .digest("hex")
    .slice(0, 16);
}

/** A readable one-line summary of a zod failure, naming each bad field. */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .map((issue) => {
      const path = issue.path.length ? issue.path.join(".") : "(body)";
      return `${path}: ${issue.message}`;
    })
    .join("; ");
}
