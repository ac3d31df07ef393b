/** What one reconcile ends with: the queue's next step for the key, and what the loop's observers see. */
import type { RtmError } from "../model/errors.js";
import type { RuntimeRecord } from "../model/record.js";
import type { Plan } from "./plan.js";
import type { Lane } from "./queue.js";

export type ReconcileOutcome =
  | { type: "done" }
  /** Nothing failed; look again after this long (a crash-loop backoff, an orphan grace, retention, an open health gate: lane "gate"). */
  | { type: "requeue"; afterMs: number; lane?: Lane }
  /** `terminal`: retrying the same declaration cannot help (controller-runtime's TerminalError). */
  | { type: "error"; error: RtmError; terminal: boolean };

export interface ReconcileResult {
  gameId: string;
  /** Null when the reconcile failed before it could plan (the runtime or the store did not answer). */
  plan: Plan | null;
  record: RuntimeRecord | null;
  outcome: ReconcileOutcome;
}
