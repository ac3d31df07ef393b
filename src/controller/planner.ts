/**
 * The pure decision: (declaration, observed containers, record, health, now)
 * -> an ordered list of idempotent actions. No I/O here, ever: the planner is
 * tested in milliseconds over a table of cases (test/unit/planner.test.ts),
 * and `rtmctl diff` runs it to show what the loop would do now.
 */
import { PERMANENT_CODES, RtmError, type ErrorCode } from "../model/errors.js";
import { configHash, type Declaration } from "../model/declaration.js";
import { containerName } from "../model/gameId.js";
import { assertPatchAllowed } from "../model/imageRef.js";
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import type { EventType, OpKind, OpSource, StopReason } from "../model/status.js";
import { backoffDelay } from "../model/backoff.js";

export type Action =
  /** Make the image available locally, per the pull policy ("never" for a rollback target: it must be local). */
  | { type: "ensureImage"; imageRef: string; policy?: "never" }
  /** Create the game's container from the declaration, on `imageRef`. */
  | { type: "create"; imageRef: string }
  /** Start a container: an existing one by id, or the one `create` just made. */
  | { type: "start"; containerId: string | "created" }
  | { type: "stop"; containerId: string; reason: StopReason | null }
  | { type: "remove"; containerId: string };

export interface PlannedEvent {
  type: EventType;
  data: Record<string, unknown>;
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
  /** Whether the result brings the record to the declaration's generation. */
  converges: boolean;
  /**
   * After the actions, the engine must pass /healthz and stay healthy for
   * `minHealthyMs` within `timeoutMs`; when it does not and `rollbackTo` is
   * set, the previous image is restored.
   */
  gate: HealthGate | null;
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

export interface HealthGate {
  minHealthyMs: number;
  timeoutMs: number;
  rollbackTo: string | null;
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
}

/** Restarts in a row after which a runtime is reported as crash-looping. */
export const CRASH_LOOP_THRESHOLD = 3;

const RUNNING_STATES = new Set(["running", "restarting", "paused"]);

export function isRunning(c: ObservedContainer): boolean {
  return RUNNING_STATES.has(c.state);
}

function basePlan(input: PlannerInput): Plan {
  return {
    kind: null,
    opSource: "reconcile",
    opId: null,
    actions: [],
    events: [],
    requeueAfterMs: null,
    hold: null,
    converges: true,
    gate: null,
    restartCount: input.record?.restartCount ?? 0,
    stopReason: null,
    imageRef: input.declaration?.imageRef ?? null,
    reason: "in sync",
    orphanReport: null,
  };
}

/** The container that is the game's runtime, and any strays beside it. */
export function splitContainers(gameId: string, containers: ObservedContainer[]): { primary: ObservedContainer | null; extras: ObservedContainer[] } {
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

function createActions(imageRef: string): Action[] {
  return [{ type: "ensureImage", imageRef }, { type: "create", imageRef }, { type: "start", containerId: "created" }];
}

/** An exit not yet recorded: the record still believes it runs, or the exit is newer than the last one seen. */
function isNewExit(c: ObservedContainer, record: RuntimeRecord | null): boolean {
  if (!record) return true;
  if (record.currentContainerId !== c.id) return true;
  if (record.status === "running") return true;
  return !!c.finishedAt && !!record.stoppedAt && c.finishedAt.getTime() > record.stoppedAt.getTime();
}

export function plan(input: PlannerInput): Plan {
  const p = basePlan(input);
  const { declaration: d, record } = input;
  const { primary, extras } = splitContainers(input.gameId, input.containers);

  // Strays (a second container with this game's labels) never serve; remove them first.
  for (const extra of extras) p.actions.push(...removeActions(extra, "orphan_cleanup"));

  if (input.declarationError) {
    p.hold = { code: input.declarationError.code, message: input.declarationError.message };
    p.converges = false;
    p.reason = `declaration is invalid: ${input.declarationError.message}`;
    return finish(p);
  }

  if (!d) return planOrphan(p, input, primary);

  const generationChanged = !record || record.observedGeneration < d.generation;
  if (generationChanged) {
    p.opSource = d.opSource ?? "reconcile";
    p.opId = d.opId;
  }
  // A permanent failure of this generation stays recorded until the declaration changes.
  if (record && record.lastErrorGeneration === d.generation && record.lastErrorCode && PERMANENT_CODES.has(record.lastErrorCode)) {
    p.hold = { code: record.lastErrorCode, message: record.lastErrorMessage ?? record.lastErrorCode };
    p.converges = false;
    p.reason = `generation ${d.generation} failed with ${record.lastErrorCode}; waiting for a new declaration`;
    return finish(p);
  }

  switch (d.desiredState) {
    case "running":
      if (record && record.heldGeneration === d.generation) return planHeld(p, input, d, record, primary);
      return planRunning(p, input, d, primary, generationChanged);
    case "stopped":
      return planStopped(p, input, d, primary, generationChanged);
    case "removed":
      if (primary) {
        p.actions.push(...removeActions(primary, d.stopReason ?? null));
        p.kind = "cleanup";
        p.reason = "declared removed: removing the container";
      } else {
        p.reason = "declared removed and no container exists";
      }
      return finish(p);
  }
}

function planOrphan(p: Plan, input: PlannerInput, primary: ObservedContainer | null): Plan {
  if (!primary) {
    p.reason = "no declaration and no container";
    return finish(p);
  }
  const age = input.now.getTime() - primary.createdAt.getTime();
  if (age < input.settings.orphanGraceMs) {
    p.requeueAfterMs = input.settings.orphanGraceMs - age;
    p.reason = `orphan younger than the grace period; looking again in ${Math.ceil(p.requeueAfterMs / 1000)}s`;
    return finish(p);
  }
  // A store that never recorded this game did not create it: most likely the store was
  // lost or replaced. Removing every engine then would turn a database incident into an
  // outage, so such containers are only reported until someone declares or removes them.
  const report = { containerId: primary.id, containerName: primary.name, imageRef: primary.imageRef };
  if (!input.record) {
    p.orphanReport = { ...report, why: "unrecorded" };
    p.reason = `container ${primary.name} has no declaration and no record in this store (was the store replaced?): left running; declare the game to adopt it, or remove the container by hand`;
    return finish(p);
  }
  if (input.settings.orphanDryRun) {
    p.orphanReport = { ...report, why: "dry_run" };
    p.reason = `orphan container ${primary.name} would be removed (dry run)`;
    return finish(p);
  }
  p.actions.push(...removeActions(primary, "orphan_cleanup"));
  p.kind = "orphan_cleanup";
  p.stopReason = "orphan_cleanup";
  p.imageRef = primary.imageRef;
  p.events.push({ type: "orphan_removed", data: { containerId: primary.id, imageRef: primary.imageRef } });
  p.reason = "container has no declaration: stopping and removing it (orphan_cleanup)";
  return finish(p);
}

/**
 * This generation's patch was rolled back. Keep the restored engine alive
 * (self-healing as usual, on the image that runs) but never retry the failed
 * image until a new declaration arrives.
 */
function planHeld(p: Plan, input: PlannerInput, d: Declaration, record: RuntimeRecord, c: ObservedContainer | null): Plan {
  const restored = c?.imageRef ?? record.currentImageRef;
  const held = { code: record.lastErrorCode ?? ("container_start_failed" as const), message: record.lastErrorMessage ?? "patch rolled back" };
  if (restored && restored !== d.imageRef) {
    planRunning(p, input, { ...d, imageRef: restored }, c, false);
  }
  p.hold = held;
  p.converges = false;
  p.reason = `generation ${d.generation} (${d.imageRef}) was rolled back; ${p.reason}`;
  return finish(p);
}

function gateFor(settings: PlannerSettings, rollbackTo: string | null): HealthGate | null {
  if (settings.patchHealthTimeoutMs <= 0) return null;
  return { minHealthyMs: settings.patchMinHealthyMs, timeoutMs: settings.patchHealthTimeoutMs, rollbackTo };
}

function planRunning(p: Plan, input: PlannerInput, d: Declaration, c: ObservedContainer | null, generationChanged: boolean): Plan {
  const { record, now, settings } = input;
  const wasRunningImage = record?.status === "running" ? record.currentImageRef : null;

  // A patch or restart was waiting for health when the controller stopped: resume the wait.
  if (c && isRunning(c) && record?.rolloutStartedAt && generationChanged && c.imageRef === d.imageRef) {
    const elapsed = now.getTime() - record.rolloutStartedAt.getTime();
    const rollbackTo = record.previousImageRef && record.previousImageRef !== d.imageRef ? record.previousImageRef : null;
    p.kind = rollbackTo ? "patch" : "restart";
    p.gate = { minHealthyMs: settings.patchMinHealthyMs, timeoutMs: Math.max(0, settings.patchHealthTimeoutMs - elapsed), rollbackTo };
    p.reason = `resuming the health gate of ${d.imageRef} (${Math.round(elapsed / 1000)}s elapsed)`;
    return finish(p);
  }

  if (!c) {
    if (record?.status === "running" && record.currentContainerId) {
      p.events.push({ type: "container_disappeared", data: { containerId: record.currentContainerId } });
    }
    if (wasRunningImage && wasRunningImage !== d.imageRef) {
      const refused = checkPatch(wasRunningImage, d.imageRef);
      if (refused) return holdPlan(p, refused);
    }
    p.actions.push(...createActions(d.imageRef));
    p.kind = generationChanged ? (wasRunningImage && wasRunningImage !== d.imageRef ? "patch" : "start") : "self_heal";
    if (p.kind === "start" && settings.startWaitHealthy) p.gate = gateFor(settings, null);
    p.reason = record?.currentContainerId && record.status === "running" ? "container disappeared: recreating it" : "no container: creating and starting it";
    return finish(p);
  }

  const tokenDiffers = (c.restartToken ?? null) !== (d.restartToken ?? null);

  if (isRunning(c)) {
    if (c.imageRef !== d.imageRef) {
      const refused = checkPatch(c.imageRef, d.imageRef);
      if (refused) return holdPlan(p, refused);
      // Pull first: the old engine serves until the new image is local.
      p.actions.push({ type: "ensureImage", imageRef: d.imageRef }, ...removeActions(c, null), { type: "create", imageRef: d.imageRef }, {
        type: "start",
        containerId: "created",
      });
      p.kind = "patch";
      p.gate = gateFor(settings, c.imageRef);
      p.reason = `patching ${c.imageRef} -> ${d.imageRef}`;
      return finish(p);
    }
    const configChanged = c.configHash !== null && c.configHash !== configHash(d);
    if (tokenDiffers || configChanged) {
      p.actions.push({ type: "ensureImage", imageRef: d.imageRef }, ...removeActions(c, null), ...createActions(d.imageRef).slice(1));
      p.kind = "restart";
      p.gate = gateFor(settings, null);
      p.reason = tokenDiffers
        ? "restart requested: recreating the container on the same image"
        : "env or resources changed: recreating the container on the same image";
      return finish(p);
    }
    const unhealthy = input.health && input.health.consecutiveFailures >= settings.probeFailureThreshold;
    if (unhealthy && d.restartPolicy !== "never") {
      const delay = restartDelay(input, c.startedAt);
      if (delay > 0) {
        p.requeueAfterMs = delay;
        p.reason = `engine unhealthy; restart in ${Math.ceil(delay / 1000)}s (backoff)`;
        return finish(p);
      }
      p.actions.push({ type: "ensureImage", imageRef: d.imageRef }, ...removeActions(c, null), ...createActions(d.imageRef).slice(1));
      p.kind = "self_heal";
      p.restartCount = (record?.restartCount ?? 0) + 1;
      if (p.restartCount >= CRASH_LOOP_THRESHOLD) p.events.push({ type: "crash_loop", data: { restartCount: p.restartCount, cause: "unhealthy" } });
      p.reason = `engine failed ${input.health?.consecutiveFailures} probes in a row: restarting it`;
      return finish(p);
    }
    if (!record || record.currentContainerId !== c.id) {
      p.kind = "reconcile_adopt";
      p.opSource = "reconcile";
      p.events.push({ type: "container_adopted", data: { containerId: c.id } });
      p.reason = "running container matches the declaration: adopting it";
    } else {
      p.reason = unhealthy ? "engine unhealthy; restart policy never: reporting only" : "running as declared";
    }
    // Running long enough resets the crash-loop count, as Kubernetes does after ten minutes.
    if (c.startedAt && now.getTime() - c.startedAt.getTime() >= settings.crashLoopResetMs) p.restartCount = 0;
    return finish(p);
  }

  // The container exists but does not run.
  if (c.state === "created" && c.imageRef === d.imageRef && !tokenDiffers) {
    // A crash between create and start: finish the job.
    p.actions.push({ type: "start", containerId: c.id });
    p.kind = generationChanged ? "start" : "self_heal";
    p.reason = "container was created but never started: starting it";
    return finish(p);
  }

  const exitedOnItsOwn = !generationChanged && c.imageRef === d.imageRef && !tokenDiffers && record?.currentContainerId === c.id;
  if (!exitedOnItsOwn) {
    // A new intent (start after stop, new image, restart): a fresh container.
    p.actions.push({ type: "ensureImage", imageRef: d.imageRef }, { type: "remove", containerId: c.id }, ...createActions(d.imageRef).slice(1));
    p.kind = "start";
    if (settings.startWaitHealthy) p.gate = gateFor(settings, null);
    p.reason = "declared running: recreating the stopped container";
    return finish(p);
  }

  const newExit = isNewExit(c, record);
  if (newExit) {
    p.events.push(
      c.oomKilled
        ? { type: "container_oom", data: { containerId: c.id, exitCode: c.exitCode } }
        : { type: "container_exited", data: { containerId: c.id, exitCode: c.exitCode } },
    );
  }
  const cleanExit = c.exitCode === 0 && !c.oomKilled;
  if (d.restartPolicy === "never" || (d.restartPolicy === "on-failure" && cleanExit)) {
    if (newExit) p.kind = "record_exit";
    p.reason = `engine exited with code ${c.exitCode}; restart policy ${d.restartPolicy} leaves it stopped`;
    return finish(p);
  }
  const delay = restartDelay(input, c.finishedAt);
  if (delay > 0) {
    if (newExit) p.kind = "record_exit";
    p.requeueAfterMs = delay;
    p.reason = `engine exited with code ${c.exitCode}; restarting in ${Math.ceil(delay / 1000)}s (restart ${(record?.restartCount ?? 0) + 1}, backoff)`;
    return finish(p);
  }
  // Docker can refuse to start a container again (after a daemon restart:
  // "task already exists"); once a start has failed, recreate instead.
  const startFailedBefore =
    record?.lastErrorCode === "container_start_failed" && record.lastErrorGeneration === d.generation && record.heldGeneration !== d.generation;
  p.actions.push(
    ...(startFailedBefore
      ? [{ type: "ensureImage", imageRef: d.imageRef } as const, { type: "remove", containerId: c.id } as const, ...createActions(d.imageRef).slice(1)]
      : [{ type: "start", containerId: c.id } as const]),
  );
  p.kind = "self_heal";
  p.restartCount = (record?.restartCount ?? 0) + 1;
  if (p.restartCount >= CRASH_LOOP_THRESHOLD) p.events.push({ type: "crash_loop", data: { restartCount: p.restartCount, exitCode: c.exitCode } });
  p.reason = `engine exited with code ${c.exitCode}; restart policy ${d.restartPolicy} restarts it`;
  return finish(p);
}

/** Remaining crash-loop backoff, measured from when the engine last went down. */
function restartDelay(input: PlannerInput, since: Date | null): number {
  const n = input.record?.restartCount ?? 0;
  if (n === 0) return 0;
  const delay = backoffDelay(n - 1, { baseMs: input.settings.restartBackoffBaseMs, maxMs: input.settings.restartBackoffMaxMs });
  const elapsed = since ? input.now.getTime() - since.getTime() : delay;
  return Math.max(0, delay - elapsed);
}

function planStopped(p: Plan, input: PlannerInput, d: Declaration, c: ObservedContainer | null, generationChanged: boolean): Plan {
  p.stopReason = d.stopReason ?? null;
  if (!c) {
    p.reason = "declared stopped and no container exists";
    return finish(p);
  }
  if (isRunning(c)) {
    p.actions.push({ type: "stop", containerId: c.id, reason: d.stopReason ?? null });
    p.kind = "stop";
    p.reason = `declared stopped (${d.stopReason ?? "no reason given"}): stopping the container`;
    return finish(p);
  }
  const lastOp = input.record?.lastOpAt ?? c.finishedAt ?? c.createdAt;
  if (input.now.getTime() - lastOp.getTime() >= input.settings.retentionMs) {
    p.actions.push({ type: "remove", containerId: c.id });
    p.kind = "retention";
    p.opSource = "auto_ttl";
    p.opId = null;
    p.reason = "stopped longer than the retention period: removing the container (state directory kept)";
    return finish(p);
  }
  if (generationChanged && input.record?.status === "running" && isNewExit(c, input.record)) {
    p.events.push({ type: "container_exited", data: { containerId: c.id, exitCode: c.exitCode } });
  }
  p.requeueAfterMs = input.settings.retentionMs - (input.now.getTime() - lastOp.getTime());
  p.reason = "stopped as declared";
  return finish(p);
}

function checkPatch(fromRef: string, toRef: string): RtmError | null {
  try {
    assertPatchAllowed(fromRef, toRef);
    return null;
  } catch (err) {
    if (err instanceof RtmError) return err;
    throw err;
  }
}

function holdPlan(p: Plan, err: RtmError): Plan {
  p.actions = p.actions.filter((a) => a.type === "stop" || a.type === "remove");
  p.hold = { code: err.code, message: err.message };
  p.kind = "patch";
  p.converges = false;
  p.reason = `refused: ${err.message}`;
  return finish(p);
}

function finish(p: Plan): Plan {
  if (p.kind === null && p.actions.length > 0) p.kind = "orphan_cleanup";
  return p;
}
