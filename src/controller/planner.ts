/**
 * The pure decision: (declaration, observed containers, record, health, now)
 * -> a Plan. No I/O here, ever: the planner is tested in milliseconds over a
 * table of cases (test/unit/planner.test.ts), and `rtmctl diff` runs it to
 * show what the loop would do now. What a declared-running game needs is in
 * planRunning.ts, one function per situation.
 */
import { declaredResources, imageRefused, resourcesRefused } from "../model/admission.js";
import { PERMANENT_CODES } from "../model/errors.js";
import type { Declaration } from "../model/declaration.js";
import type { ObservedContainer } from "../model/ports.js";
import type { RuntimeRecord } from "../model/record.js";
import { basePlan, finish, inVocabulary, isRunning, planTerminating, removeActions, splitContainers, type Plan, type PlannerInput } from "./plan.js";
import { nodeLossEvents, planRunning } from "./planRunning.js";

export {
  CRASH_LOOP_THRESHOLD,
  isRunning,
  ORPHAN_REPORT_REASONS,
  RESTART_CAUSES,
  removeActions,
  splitContainers,
  type Action,
  type HealthGate,
  type HealthObservation,
  type OrphanReport,
  type OrphanReportReason,
  type Plan,
  type PlannedEvent,
  type PlannerInput,
  type PlannerSettings,
  type RestartCause,
} from "./plan.js";

export function plan(input: PlannerInput): Plan {
  const p = decide(input);
  // Said in the runtime's vocabulary: a runtime that offers no pull gets none, in the plan or its rollback.
  p.actions = inVocabulary(p.actions, input.verbs);
  if (p.gate) p.gate.rollback = inVocabulary(p.gate.rollback, input.verbs);
  return p;
}

function decide(input: PlannerInput): Plan {
  const p = basePlan(input);
  const { declaration: d, record } = input;
  const { primary, extras } = splitContainers(input.gameId, input.containers);
  nodeLossEvents(p, record, primary);

  // Strays (a second container with this game's labels) never serve; remove them first.
  // One the runtime is deleting already is left to go (a second delete would only cost a call).
  for (const extra of extras) if (!extra.terminating) p.actions.push(...removeActions(extra, "orphan_cleanup"));

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

  // Whoever wrote it (REST, SQL, kubectl), a declaration this installation does not run is held before anything is pulled.
  const refused = d.desiredState === "running" ? admissionRefusal(d, input) : null;
  if (refused) {
    p.hold = { code: "start_config_invalid", message: refused };
    p.converges = false;
    p.reason = `${refused}; held until the declaration changes`;
    return finish(p);
  }

  switch (d.desiredState) {
    case "running":
      if (record && record.heldGeneration === d.generation) return planHeld(p, input, d, record, primary);
      return planRunning({ p, input, d, c: primary, generationChanged });
    case "stopped":
      return planStopped(p, input, d, primary, generationChanged);
    case "removed":
      if (planTerminating(p, primary)) return finish(p);
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

function admissionRefusal(d: Declaration, input: PlannerInput): string | null {
  const { imageAllowlist, resourceCeilings } = input.settings;
  return imageRefused(d.imageRef, imageAllowlist) ?? resourcesRefused(declaredResources(d.resources), resourceCeilings, `the declaration's resources`);
}

function planOrphan(p: Plan, input: PlannerInput, primary: ObservedContainer | null): Plan {
  if (!primary) {
    p.reason = "no declaration and no container";
    return finish(p);
  }
  if (planTerminating(p, primary)) return finish(p);
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
    planRunning({ p, input, d: { ...d, imageRef: restored }, c, generationChanged: false });
  }
  p.hold = held;
  p.converges = false;
  p.reason = `generation ${d.generation} (${d.imageRef}) was rolled back; ${p.reason}`;
  return finish(p);
}

function planStopped(p: Plan, input: PlannerInput, d: Declaration, c: ObservedContainer | null, generationChanged: boolean): Plan {
  p.stopReason = d.stopReason ?? null;
  if (!c) {
    p.reason = "declared stopped and no container exists";
    return finish(p);
  }
  // A stop's deletion (or anyone's) still under way: the game is stopped once the engine is gone.
  if (planTerminating(p, c)) return finish(p);
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
  // The record still believes it runs: the exit is news (a record that says stopped has seen it).
  if (generationChanged && input.record?.status === "running") {
    p.events.push({ type: "container_exited", data: { containerId: c.id, exitCode: c.exitCode } });
  }
  p.requeueAfterMs = input.settings.retentionMs - (input.now.getTime() - lastOp.getTime());
  p.reason = "stopped as declared";
  return finish(p);
}
