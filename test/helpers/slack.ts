/**
 * How much slower than a quiet 2-core machine this one may be. Integration
 * tests multiply their wall-clock bounds (waitFor deadlines, "within N s")
 * by it, so a loaded CI runner sets RTMANAGER_TEST_SLACK=2 instead of anyone
 * loosening an assertion. Unit tests never need it: they run on fake timers.
 */
function readSlack(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 1;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 1) throw new Error(`RTMANAGER_TEST_SLACK must be a number >= 1, got ${JSON.stringify(raw)}`);
  return n;
}

export const TEST_SLACK = readSlack(process.env.RTMANAGER_TEST_SLACK);

/** A wall-clock bound for an integration test, scaled by RTMANAGER_TEST_SLACK. */
export function slack(ms: number): number {
  return Math.round(ms * TEST_SLACK);
}

/** Settles like `work`, or rejects after `ms` (scaled) naming `what`, so a wedged call fails the test instead of hanging it. */
export async function withTimeout<T>(what: string, work: Promise<T>, ms: number): Promise<T> {
  const limit = slack(ms);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${limit} ms`)), limit);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
