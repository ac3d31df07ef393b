/**
 * Cancellation of a reconcile's calls. Each reconcile runs under an
 * AbortSignal that fires when this replica loses leadership or shuts down
 * (src/controller/leader.ts, manager.ts); every runtime and store call the
 * reconcile makes takes it (CallOptions in ports.ts). An adapter stops
 * waiting when it fires and rejects with an AbortedError, never with a
 * RuntimeFailure or an RtmError: being told to stop is no verdict on the
 * engine, the image or the store, and the reconcile writes nothing after it.
 */

/** A call given up because its signal fired. `name` is "AbortError", as fetch and Node's own aborts say. */
export class AbortedError extends Error {
  override readonly name = "AbortError";
}

export function isAborted(err: unknown): err is AbortedError {
  return err instanceof AbortedError;
}

/** Why `signal` fired, as the error a call it cut short rejects with. */
export function abortReason(signal: AbortSignal): AbortedError {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortedError) return reason;
  const message = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : "the call was aborted";
  return new AbortedError(message, { cause: reason });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * Settles with `work`, or rejects with the abort reason as soon as `signal`
 * fires. `work` itself goes on (a statement already sent, a call whose client
 * ignores signals): its result is ignored, so it must be safe to finish
 * unobserved, as every runtime call and fenced write is.
 */
export async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    // The work was started by the caller already: keep its rejection from going unhandled.
    work.catch(() => undefined);
    throw abortReason(signal);
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener("abort", onAbort!);
    work.catch(() => undefined);
  }
}

/**
 * A controller that fires when `parent` does (or at once when it already
 * has). `dispose` unhooks it from the parent, so a long-lived parent (a term
 * of leadership) does not collect one listener per reconcile.
 */
export function childController(parent: AbortSignal | undefined): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  if (!parent) return { controller, dispose: () => undefined };
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { controller, dispose: () => undefined };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener("abort", onAbort) };
}
