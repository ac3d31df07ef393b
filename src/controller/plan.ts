/**
 * What the planner hands the loop: an ordered list of idempotent actions and
 * everything else the reconcile does because of them (events, the health
 * gate and its rollback, the cause of a restart, a hold, a requeue). The
 * reconciler carries a plan out as planned. The rollout adds only what its
 * health gate learns later: it recreates an engine that an in-place update
 * left stopped (rollout.ts `recreate`), and its verdict adds the rollback's
 * events.
 */
import type { ResourceCeilings } from "../model/admission.js";
import type { Declaration } from "../model/declaration.js";
import type { ErrorCode, RtmError } from "../model/errors.js";
import { containerName } from "../model/gameId.js";
import { isDeclarative, type ObservedContainer, type RuntimeVerb, type RuntimeVerbs } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { EventType, OpKind, OpSource, StopReason } from "../model/status.js";
import type { FleetView } from "./quarantine.js";

export type Action =
  /** Make the image available locally, per the pull policy ("never" for a rollback target: it must be local). */
  | { type: "ensureImage"; imageRef: string; policy?: "never" }
  /** Create the game's container from the declaration, on `imageRef`. */
  | { type: "create"; imageRef: string }
  /** Start a container: an existing one by id, or the one `create` just made. */
  | { type: "start"; containerId: string | "created" }
  | { type: "stop"; containerId: string; reason: StopReason | null }
  | { type: "remove"; containerId: string }
  /** Swap the image of a running engine in place (a runtime with `updatesImageInPlace`: a Pod's container image). */
  | { type: "updateImage"; containerId: string; imageRef: string }
  /**
   * Stop and remove every container of the game as the runtime shows it when
   * the action runs: a rollback does not know the id of the engine the failed
   * rollout created when it is planned.
   */
  | { type: "removeAll"; reason: StopReason | null };

/**
 * Why an engine is restarted or recreated. `exit`, `oom`, `unhealthy`,
 * `disappeared` and `start_failed` are the restart policy at work;
 * `restart_requested` (a new restart token) and `config_changed` (env or
 * resources) answer a declaration change.
 */
export const RESTART_CAUSES = ["exit", "oom", "unhealthy", "disappeared", "start_failed", "restart_requested", "config_changed"] as const;
export type RestartCause = (typeof RESTART_CAUSES)[number];

export interface PlannedEvent {
  type: EventType;
  data: Record<string, unknown>;
}

export interface HealthGate {
  minHealthyMs: number;
  timeoutMs: number;
  /** The image a failed gate restores; null when there is nothing to go back to (a restart). */
  rollbackTo: string | null;
  /** What restores it, in order; empty when `rollbackTo` is null. */
  rollback: Action[];
  /** The gate was opened by an earlier reconcile (its record says so): this one checks it once more. */
  resumed: boolean;
}

export interface Plan {
  /** What the operation log calls this; null when there is nothing to do. */
  kind: OpKind | null;
  opSource: OpSource;
  /** The declaration writer's op id, when the plan answers a declaration change. */
  opId: string | null;
  actions: Action[];
  /** Events to append whether or not actions follow (an exit, a disappearance). */
  events: PlannedEvent[];
  /** Reconcile again after this long (a crash-loop backoff, an orphan grace). */
  requeueAfterMs: number | null;
  /** A problem recorded without acting: it will not go away until the declaration changes. */
  hold: { code: ErrorCode; message: string } | null;
  /**
   * Why the runtime cannot run the engine, as it said (a Pod's
   * CreateContainerConfigError, Unschedulable, OutOfcpu): recorded as the
   * record's error and reported once, while the loop goes on.
   */
  problem: { code: ErrorCode; message: string } | null;
  /** Whether the result brings the record to the declaration's generation. */
  converges: boolean;
  /**
   * After the actions, the engine must pass /healthz and stay healthy for
   * `minHealthyMs` within `timeoutMs`; when it does not, `rollback` runs.
   * Each reconcile checks an open gate once (rollout.ts) and requeues until
   * the verdict.
   */
  gate: HealthGate | null;
  /** Set when the actions restart or recreate a running (or exited) engine. */
  restartCause: RestartCause | null;
  /** Restart count to record after this plan. */
  restartCount: number;
  stopReason: StopReason | null;
  imageRef: string | null;
  /** One line for logs and `rtmctl diff`. */
  reason: string;
  /** An orphan container left in place (dry run, or a store that never recorded it): report it. */
  orphanReport: OrphanReport | null;
}

export const ORPHAN_REPORT_REASONS = ["dry_run", "unrecorded"] as const;
export type OrphanReportReason = (typeof ORPHAN_REPORT_REASONS)[number];

export interface OrphanReport {
  containerId: string;
  containerName: string;
  imageRef: string;
  /** `dry_run`: RTMANAGER_ORPHAN_DRY_RUN keeps it; `unrecorded`: this store never recorded the game. */
  why: OrphanReportReason;
}

export interface HealthObservation {
  consecutiveFailures: number;
  healthy: boolean;
  lastProbeAt: Date;
}

export interface PlannerSettings {
  retentionMs: number;
  restartBackoffBaseMs: number;
  restartBackoffMaxMs: number;
  crashLoopResetMs: number;
  orphanGraceMs: number;
  orphanDryRun: boolean;
  probeFailureThreshold: number;
  /** 0 turns the patch and restart health gate off. */
  patchHealthTimeoutMs: number;
  patchMinHealthyMs: number;
  startWaitHealthy: boolean;
  /** RTMANAGER_POD_START_TIMEOUT: how long an engine a runtime accepted (a Pod) may take to run before its start fails; default 30 s. */
  podStartTimeoutMs?: number;
  /** RTMANAGER_IMAGE_ALLOWLIST (normalised prefixes); empty or absent allows every image. */
  imageAllowlist?: readonly string[];
  /** RTMANAGER_MAX_*: a declaration asking for more is held with start_config_invalid. */
  resourceCeilings?: ResourceCeilings;
}

export interface PlannerInput {
  gameId: string;
  declaration: Declaration | null;
  /** Set when the stored declaration exists but fails the schema. */
  declarationError: RtmError | null;
  /** This installation's containers labelled with this game. */
  containers: ObservedContainer[];
  record: RuntimeRecord | null;
  health: HealthObservation | null;
  now: Date;
  settings: PlannerSettings;
  /** The actions the engine runtime offers: the planner plans in this vocabulary, and a declarative runtime starts, restarts and updates engines itself. */
  verbs: RuntimeVerbs;
  /** Quarantined images and canaries (planFleet.ts); absent: no fleet holds. */
  fleet?: FleetView;
  /** A replace an earlier reconcile split (splitReplaces.ts): the engine it deleted is gone, its new one is created as it. */
  replacing?: SplitReplace | null;
}

/** What a split replace was, for the reconcile that creates its new engine. */
export interface SplitReplace {
  generation: number;
  /** The engine the first half deleted: once its Pod is gone it may still show as its last state (a tombstone). */
  replacedId: string | null;
  kind: OpKind;
  restartCause: RestartCause | null;
  gate: HealthGate | null;
}

/** Restarts in a row after which a runtime is reported as crash-looping. */
export const CRASH_LOOP_THRESHOLD = 3;

export function isRunning(c: ObservedContainer): boolean {
  return c.phase === "running";
}

/**
 * An engine a declarative runtime accepted and starts by itself (being
 * scheduled or pulled), not running yet; not one whose image it says it
 * cannot pull: that start has failed already.
 */
export function isAccepted(c: ObservedContainer, verbs: RuntimeVerbs): boolean {
  return c.phase === "pending" && isDeclarative(verbs) && c.problem?.kind !== "pull_failed";
}

/** How often a reconcile looks again at an engine the runtime accepted (to run it, or to delete it); the runtime's watch wakes it sooner. */
export const ACCEPTED_RECHECK_MS = 2000;

/**
 * The runtime is deleting the engine (a Pod in its grace period): nothing can
 * be done with it, or with its name, until it is gone, so the plan is to look
 * again, not converged (a stop's REST call answers once the engine is gone).
 * No worker waits for it: the runtime's watch wakes the game, the recheck is
 * the fallback. As controller-runtime reconcilers do with an object whose
 * deletionTimestamp is set and whose finalizers are not theirs.
 */
export function planTerminating(p: Plan, c: ObservedContainer | null): Plan | null {
  if (!c?.terminating) return null;
  p.converges = false;
  p.requeueAfterMs = ACCEPTED_RECHECK_MS;
  p.reason = `the runtime is deleting engine ${c.id}; looking again once it is gone`;
  return p;
}

export function basePlan(input: PlannerInput): Plan {
  return blankPlan(input.record?.restartCount ?? 0, input.declaration?.imageRef ?? null);
}

/** A plan that does nothing and converges: the start of every plan. */
export function blankPlan(restartCount: number, imageRef: string | null): Plan {
  return {
    kind: null,
    opSource: "reconcile",
    opId: null,
    actions: [],
    events: [],
    requeueAfterMs: null,
    hold: null,
    problem: null,
    converges: true,
    gate: null,
    restartCause: null,
    restartCount,
    stopReason: null,
    imageRef,
    reason: "in sync",
    orphanReport: null,
  };
}

/** The container that is the game's runtime, and any strays beside it. */
export function splitContainers(gameId: string, containers: readonly ObservedContainer[]): { primary: ObservedContainer | null; extras: ObservedContainer[] } {
  const name = containerName(gameId);
  const sorted = [...containers].sort((a, b) => {
    const byName = Number(b.name === name) - Number(a.name === name);
    return byName !== 0 ? byName : b.createdAt.getTime() - a.createdAt.getTime();
  });
  return { primary: sorted[0] ?? null, extras: sorted.slice(1) };
}

export function removeActions(c: ObservedContainer, reason: StopReason | null): Action[] {
  return isRunning(c) ? [{ type: "stop", containerId: c.id, reason }, { type: "remove", containerId: c.id }] : [{ type: "remove", containerId: c.id }];
}

/** A new container on `imageRef`: the image first, so nothing is torn down for an image that cannot be had. */
export function createActions(imageRef: string): Action[] {
  return [{ type: "ensureImage", imageRef }, { type: "create", imageRef }, { type: "start", containerId: "created" }];
}

/** Replace `c` by a new container on `imageRef`, pulling before the old one is touched. */
export function replaceActions(c: ObservedContainer, imageRef: string): Action[] {
  return [{ type: "ensureImage", imageRef }, ...removeActions(c, null), { type: "create", imageRef }, { type: "start", containerId: "created" }];
}

/**
 * Restores `target`. In place when the runtime can (the same engine, its
 * image set back); otherwise by replacing whatever runs then, with an image
 * that must still be local: a rollback never pulls.
 */
export function rollbackActions(target: string, inPlace: { containerId: string } | null): Action[] {
  if (inPlace) return [{ type: "updateImage", containerId: inPlace.containerId, imageRef: target }];
  return [
    { type: "ensureImage", imageRef: target, policy: "never" },
    { type: "removeAll", reason: null },
    { type: "create", imageRef: target },
    { type: "start", containerId: "created" },
  ];
}

/**
 * `actions` in a runtime's vocabulary. The steps are named as an imperative
 * runtime takes them; a declarative one takes create (+ start) and
 * updateImage as apply, stop and remove as delete, and pulls by itself, so a
 * pull is dropped where "pull" is not offered. The executor refuses a step
 * whose verb the runtime lacks (verbOf).
 */
export function inVocabulary(actions: Action[], verbs: RuntimeVerbs): Action[] {
  return (verbs as readonly string[]).includes("pull") ? actions : actions.filter((a) => a.type !== "ensureImage");
}

const IMPERATIVE_VERB: Record<Action["type"], RuntimeVerb> = { ensureImage: "pull", create: "create", start: "start", stop: "stop", remove: "remove", removeAll: "remove", updateImage: "apply" };
const DECLARATIVE_VERB: Record<Action["type"], RuntimeVerb | null> = { ensureImage: null, create: "apply", start: "apply", stop: "delete", remove: "delete", removeAll: "delete", updateImage: "apply" };

/** The verb `action` asks of a runtime offering `verbs`, or null when that runtime has no such verb. */
export function verbOf(action: Action, verbs: RuntimeVerbs): RuntimeVerb | null {
  const verb = isDeclarative(verbs) ? DECLARATIVE_VERB[action.type] : IMPERATIVE_VERB[action.type];
  return verb !== null && (verbs as readonly string[]).includes(verb) ? verb : null;
}

/** Every plan leaves the planner through here: acting without a named kind is cleaning up strays. */
export function finish(p: Plan): Plan {
  if (p.kind === null && p.actions.length > 0) p.kind = "orphan_cleanup";
  return p;
}
