/** /readyz: whether this replica's dependencies answer (the store, and the engine runtime with its own setup). */
import type { ReadinessFailure } from "./http/server.js";
import { toRtmError } from "./model/errors.js";
import type { RuntimePort } from "./model/ports.js";
import { withTimeout } from "./model/timeout.js";
import type { SqlStore } from "./store/index.js";

/** Each readiness check's bound, under the Deployment's 2 s probe timeout: a hanging probe is worse than a "no". */
export const READINESS_CHECK_TIMEOUT_MS = 1_500;

/** A readable reason when a dependency is missing, or null when ready. The checks run side by side. */
export async function readiness(store: SqlStore, runtime: RuntimePort): Promise<ReadinessFailure | null> {
  // The reason names the dependency and is served; the detail can carry addresses and goes to the log only.
  const check = async (what: string, work: () => Promise<ReadinessFailure | null>): Promise<ReadinessFailure | null> => {
    try {
      return await withTimeout(work(), READINESS_CHECK_TIMEOUT_MS, () => new Error(`no answer within ${READINESS_CHECK_TIMEOUT_MS} ms`));
    } catch (err) {
      return { reason: `${what} unavailable`, detail: toRtmError(err).message };
    }
  };
  const reasons = await Promise.all([
    check("store", async () => {
      await store.ping();
      return null;
    }),
    check(runtime.name, async () => {
      await runtime.ping();
      const problem = await runtime.setupProblem();
      return problem === null ? null : { reason: problem };
    }),
  ]);
  return reasons.find((r) => r !== null) ?? null;
}
