/** Enumerations shared by the store, the loop and the REST surface. */

/** The contract's `RuntimeRecord.status`. */
export const RUNTIME_STATUSES = ["running", "stopped", "removed"] as const;
export type RuntimeStatus = (typeof RUNTIME_STATUSES)[number];

/** What a declaration asks for; same words as the observed status. */
export const DESIRED_STATES = RUNTIME_STATUSES;
export type DesiredState = RuntimeStatus;

export const RESTART_POLICIES = ["always", "on-failure", "never"] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** The contract's `StopReason`. */
export const STOP_REASONS = ["orphan_cleanup", "cancelled", "finished", "admin_request", "timeout"] as const;
export type StopReason = (typeof STOP_REASONS)[number];

/**
 * Who caused an operation. `gm_rest` and `admin_rest` come from the contract;
 * the rest name the controller's own initiatives.
 */
export const OP_SOURCES = ["gm_rest", "admin_rest", "reconcile", "auto_ttl", "kubernetes", "sql"] as const;
export type OpSource = (typeof OP_SOURCES)[number];

/** The contract's lifecycle verbs (their routes and rules: src/model/verbs.ts); each is also an operation kind. */
export const VERB_NAMES = ["start", "stop", "restart", "patch", "cleanup"] as const;

export const OP_KINDS = [
  ...VERB_NAMES,
  "reconcile_adopt",
  "self_heal",
  "orphan_cleanup",
  "retention",
  "rollback",
  "record_exit",
] as const;
export type OpKind = (typeof OP_KINDS)[number];

export const OP_OUTCOMES = ["running", "success", "failure", "no_op", "interrupted"] as const;
export type OpOutcome = (typeof OP_OUTCOMES)[number];

export const EVENT_TYPES = [
  "declaration_changed",
  "container_created",
  "container_started",
  "container_stopped",
  "container_removed",
  "container_exited",
  "container_oom",
  "container_disappeared",
  "container_adopted",
  "image_updated",
  "probe_failed",
  "probe_recovered",
  "reconcile_failed",
  "crash_loop",
  "patch_rolled_back",
  "rollback_failed",
  "orphan_removed",
  "orphan_reported",
  /** The engine's node is lost: reported, not replaced (the Pod runtime). */
  "node_lost",
  /** The lost node came back, or the engine no longer runs there. */
  "node_lost_cleared",
  /** Patches to an image kept rolling back: it is refused until lifted (src/controller/quarantine.ts). */
  "image_quarantined",
  "image_quarantine_lifted",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** `X-Galaxy-Caller` -> op_source, as the contract spells it. */
export function opSourceFromCaller(header: string | undefined): OpSource {
  return header === "gm" ? "gm_rest" : "admin_rest";
}
