/**
 * Which failures a reconcile reports as a `reconcile_failed` event. An error
 * is reported each time. A hold is reported when the record does not show
 * it yet. A runtime's problem (a Pod the kubelet rejected: OutOfcpu, …) is
 * reported once per engine: the record shows only the latest message, and
 * each replacement Pod rejected for the same reason carries the same one,
 * so the message alone would report a run of rejected Pods once. Which
 * engine the reported problem belonged to is kept here, in memory, as the
 * reconciler keeps its reported orphans: after a restart the record's
 * message stands for the engine the controller finds.
 */
import type { RtmError } from "../model/errors.js";
import type { RuntimeRecord } from "../model/record.js";
import type { Plan, PlannedEvent } from "./plan.js";

export class FailureReports {
  /** By game: the engine whose problem the record's error reports. */
  private readonly problemEngine = new Map<string, string | null>();

  /**
   * The events for this reconcile's failure. `engine`: the engine the plan
   * looked at (its problem's); `record`: the record before the reconcile;
   * `recordsError`: whether the record it writes keeps an error.
   */
  eventsFor(gameId: string, engine: string | null, p: Plan, record: RuntimeRecord | null, error: RtmError | null, recordsError: boolean): PlannedEvent[] {
    const failure = error ?? (p.hold && record?.lastErrorCode !== p.hold.code ? p.hold : this.problemReport(gameId, engine, p, record));
    // Nothing wrong any more: the next problem is news whoever's it is.
    if (!recordsError) this.problemEngine.delete(gameId);
    return failure ? [failedEvent(failure, p)] : [];
  }

  /** The plan's problem when it is news: a new message, or the same one from another engine than the one reported. */
  private problemReport(gameId: string, engine: string | null, p: Plan, record: RuntimeRecord | null): Plan["problem"] {
    const problem = p.problem;
    if (!problem) return null;
    const shown = record?.lastErrorMessage === problem.message;
    const known = this.problemEngine.has(gameId);
    if (shown && (!known || this.problemEngine.get(gameId) === engine)) {
      // The record shows it already; without a memory of whose it was (a restart), it is taken as this engine's.
      if (!known) this.problemEngine.set(gameId, engine);
      return null;
    }
    this.problemEngine.set(gameId, engine);
    return problem;
  }
}

function failedEvent(f: { code: string; message: string }, p: Plan): PlannedEvent {
  return { type: "reconcile_failed", data: { code: f.code, message: f.message, kind: p.kind } };
}
