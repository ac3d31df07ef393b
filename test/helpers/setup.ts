/**
 * vitest setupFiles (vitest.config.ts): every fetch a test file makes (and
 * the in-process app code it runs) without a signal of its own is bounded,
 * so a server that never answers fails that test instead of hanging the run.
 * A fetch that passes its own signal (a stream the test aborts itself) is left as it is.
 */
import { slack } from "./slack.js";

/** Longer than any operation a test waits for (RTMANAGER_OP_TIMEOUT is at most 30 s in tests). */
export const FETCH_TIMEOUT_MS = 90_000;

const unbounded = globalThis.fetch;
globalThis.fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  if (init?.signal || (input instanceof Request && input.signal)) return unbounded(input, init);
  return unbounded(input, { ...init, signal: AbortSignal.timeout(slack(FETCH_TIMEOUT_MS)) });
};
