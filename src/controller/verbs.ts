/**
 * What each lifecycle verb does to the desired state: the controller's half
 * of the verb table (the wire half, route and body, is src/model/verbs.ts).
 * A verb is a declaration write plus a wait (operations.ts runs every row
 * the same way); the loop then reconciles the new generation like any other
 * change, so a verb needs no planner case of its own.
 */
import { specOf, type Declaration, type RuntimeSpec } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";
import { GameIdSchema } from "../model/gameId.js";
import { assertPatchAllowed, IMAGE_REF_MAX_LENGTH, IMAGE_REF_PATTERN } from "../model/imageRef.js";
import type { DeclarationSource, StateStore } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { VerbBody, VerbName } from "../model/verbs.js";
import { admitNewGame } from "./growth.js";
import { quarantineError, type Quarantine } from "./quarantine.js";
import type { Lane } from "./queue.js";

/** What a rule may read besides the declaration and the record. */
export interface VerbEnv {
  source: DeclarationSource;
  state: StateStore;
  quarantines?: { find(imageRef: string): Promise<Quarantine | null> };
  maxGames?: number;
}

/** What `prepare` read, handed to `decide`. */
export interface Prepared {
  quarantine: Quarantine | null;
}

export interface VerbCall<B> {
  gameId: string;
  body: B;
  opId: string;
  prepared: Prepared;
}

export interface VerbRule<B> {
  /** A malformed path game id: 400 where the contract has a 400 for the verb, else 404 (no such runtime can exist). */
  badGameIdAs: "invalid_request" | "not_found";
  /** Checks of the body before anything is read (the image_ref rule). */
  validate?(body: B): void;
  /** Refusals decided before the request's budget starts (RTMANAGER_MAX_GAMES); logged as refused. */
  admit?(env: VerbEnv, gameId: string, body: B): Promise<void>;
  /** Reads within the budget, after the runtime's ping and the record, before the write. */
  prepare?(env: VerbEnv, body: B): Promise<Prepared>;
  /** The next spec, null for "nothing to change", or throws to refuse. Runs inside the store's write. */
  decide(call: VerbCall<B>, d: Declaration | null, r: RuntimeRecord | null): RuntimeSpec | null;
  /**
   * An unchanged declaration whose generation the loop finished is a replay
   * only when this also holds of the record (default: always).
   */
  settled?(r: RuntimeRecord): boolean;
  /** A record whose declaration is gone (plain SQL, a deleted GameRuntime) and is not running: a replay, not a 404. */
  replayWithoutDeclaration?: boolean;
  /** After the wait: the write was needed, but the engine was already where the verb takes it (logged as a replay). */
  alreadyDone?(r: RuntimeRecord | null): boolean;
  /** The queue lane the loop takes the game from after the write (default high: a fresh change). */
  wakeLane?: Lane;
}

/** Validates a path game id: 400 for verbs whose contract has a 400, else 404 (no such runtime can exist). */
export function checkGameId(gameId: string, invalidAs: "invalid_request" | "not_found"): void {
  const parsed = GameIdSchema.safeParse(gameId);
  if (!parsed.success) {
    const why = parsed.error.issues[0]?.message ?? "invalid game_id";
    throw invalidAs === "not_found" ? new RtmError("not_found", `runtime record not found (${why})`) : new RtmError("invalid_request", why);
  }
}

export function checkImageRef(imageRef: string): void {
  if (imageRef.length === 0 || imageRef.length > IMAGE_REF_MAX_LENGTH || !IMAGE_REF_PATTERN.test(imageRef)) {
    throw new RtmError("invalid_request", `image_ref ${JSON.stringify(imageRef.slice(0, 300))} is not an image reference such as registry/galaxy/engine:1.4.2`);
  }
}

export const notFound = (gameId: string) => new RtmError("not_found", `runtime record not found for game ${gameId}`);
const noQuarantine: Prepared = { quarantine: null };

export const VERB_RULES: { [V in VerbName]: VerbRule<VerbBody<V>> } = {
  start: {
    badGameIdAs: "invalid_request",
    validate: (body) => checkImageRef(body.image_ref),
    admit: (env, gameId) => (env.maxGames === undefined ? Promise.resolve() : admitNewGame(gameId, env.maxGames, env.source, env.state)),
    decide: ({ gameId, body }, d, r) => {
      const imageRef = body.image_ref;
      if (d?.desiredState === "running" && d.imageRef === imageRef) return null;
      if (r?.status === "running" && r.currentImageRef && r.currentImageRef !== imageRef) {
        throw new RtmError("conflict", `runtime is running ${r.currentImageRef}; use patch to change the image, or stop it first`);
      }
      return {
        gameId,
        imageRef,
        desiredState: "running",
        restartPolicy: d?.restartPolicy ?? "on-failure",
        resources: d?.resources,
        env: d?.env,
        restartToken: d?.restartToken,
      };
    },
  },
  stop: {
    badGameIdAs: "invalid_request",
    decide: ({ gameId, body }, d, r) => {
      if (!d && !r) throw notFound(gameId);
      if (!d || d.desiredState !== "running") return null;
      return { ...specOf(d), desiredState: "stopped", stopReason: body.reason };
    },
    // A stopped declaration with the engine still running is the loop's work in progress, not a replay.
    settled: (r) => r.status !== "running",
    replayWithoutDeclaration: true,
    // An engine that already exited: the declaration still changes (so the loop will not
    // restart it), but there was nothing to stop.
    alreadyDone: (r) => r !== null && r.status !== "running",
  },
  restart: {
    badGameIdAs: "not_found",
    decide: ({ gameId, opId }, d, r) => {
      if (!d || !r) throw notFound(gameId);
      if (r.status === "removed" || d.desiredState === "removed") {
        throw new RtmError("conflict", "runtime has no container to restart (status removed); start it instead");
      }
      // A fresh token is what asks the loop to recreate the container.
      return { ...specOf(d), desiredState: "running", stopReason: undefined, restartToken: opId.slice(0, 64) };
    },
  },
  patch: {
    badGameIdAs: "invalid_request",
    // Always a swap of a running engine: straight to the rollout lane, so a fleet patch's keys never wait in front of fresh starts.
    wakeLane: "rollout",
    validate: (body) => checkImageRef(body.image_ref),
    prepare: async (env, body) => (env.quarantines ? { quarantine: await env.quarantines.find(body.image_ref) } : noQuarantine),
    decide: ({ gameId, body, prepared }, d, r) => {
      if (!d || !r) throw notFound(gameId);
      if (r.status !== "running" || d.desiredState !== "running") {
        throw new RtmError("conflict", `runtime is ${r.status}; patch replaces a running engine, start it with the new image instead`);
      }
      assertPatchAllowed(r.currentImageRef ?? d.imageRef, body.image_ref);
      if (d.imageRef === body.image_ref) return null;
      // Refused at once, without a gate: the image already failed it on enough games.
      if (prepared.quarantine) throw quarantineError(prepared.quarantine);
      return { ...specOf(d), imageRef: body.image_ref };
    },
  },
  cleanup: {
    badGameIdAs: "not_found",
    decide: ({ gameId }, d, r) => {
      if (!d && !r) throw notFound(gameId);
      if (r?.status === "running" || (d?.desiredState === "running" && r?.status !== "removed")) {
        throw new RtmError("conflict", "runtime is running; stop it before removing its container");
      }
      if (r?.status === "removed" && (!d || d.desiredState === "removed")) return null;
      const base = d ? specOf(d) : { gameId, imageRef: r?.currentImageRef ?? "unknown:0.0.0", restartPolicy: "on-failure" as const };
      return { ...base, desiredState: "removed" };
    },
    replayWithoutDeclaration: true,
  },
};
