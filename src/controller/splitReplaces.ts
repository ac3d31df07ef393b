/**
 * Replaces this process split across reconciles (actions.ts): the old engine
 * deleted, its runtime still deleting it, the new engine not created yet.
 * What the replace was (a restart, a patch, a self-heal, its cause and health
 * gate) is kept here, by game, so the reconcile that creates the new engine
 * once the old one is gone carries it out as that replace (planMissing reads
 * it through PlannerInput.replacing) rather than as a plain start. In memory
 * only, as an open gate's window is (rollout.ts); no record or migration
 * carries it. After a restart or a failover between the halves the new
 * leader sees the old engine's last state (a Pod's tombstone: the replace's
 * remove kept it) and the declaration's newer generation, and recreates it
 * as a start (planRecreateStopped): on the declared image and env, gated
 * only under RTMANAGER_START_WAIT_HEALTHY, with no rollback target, its
 * operation row a `start`. A patch split so is not rolled back if the new
 * image fails; the crash-loop backoff and restart policy apply as to any
 * start. A stop declared in between leaves the game stopped.
 */
import type { Declaration } from "../model/declaration.js";
import type { Plan, SplitReplace } from "./plan.js";

export class SplitReplaces {
  private readonly byGame = new Map<string, SplitReplace>();

  /** The replace split for this declaration's generation, if any. */
  get(gameId: string, d: Declaration | null): SplitReplace | null {
    const r = this.byGame.get(gameId);
    return r && d && r.generation === d.generation ? r : null;
  }

  /**
   * Whether this generation's replace was split (and its second half has not
   * succeeded): its first half deleted the old engine, so a failure of the
   * second half is rolled back as the same replace unsplit would be.
   */
  touchedOld(gameId: string, d: Declaration | null): boolean {
    return this.get(gameId, d) !== null;
  }

  /** A verdict rolled the replace back: nothing of it is left to carry out. */
  drop(gameId: string): void {
    this.byGame.delete(gameId);
  }

  /**
   * After a reconcile's actions: a replace left before its create is kept;
   * one whose create ran (or a newer declaration) is done with. A reconcile
   * that only waited (no actions) keeps what it found.
   */
  after(gameId: string, d: Declaration | null, p: Plan, deferred: boolean): void {
    if (deferred && d && p.kind) {
      const replaced = p.actions.find((a) => a.type === "stop" || a.type === "remove" || a.type === "updateImage");
      const replacedId = replaced && "containerId" in replaced ? replaced.containerId : null;
      this.byGame.set(gameId, { generation: d.generation, replacedId, kind: p.kind, restartCause: p.restartCause, gate: p.gate });
    } else if (p.actions.length > 0 || !this.get(gameId, d)) {
      this.byGame.delete(gameId);
    }
  }
}
