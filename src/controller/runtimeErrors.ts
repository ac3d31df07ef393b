/**
 * The one place where a runtime's failure becomes a contract error. The
 * runtime says what happened (RuntimeFailure.kind); which code the user sees,
 * and so whether the loop retries (PERMANENT_CODES), is decided here.
 */
import { RUNTIME_UNAVAILABLE, RtmError, toRtmError, type ErrorCode } from "../model/errors.js";
import { isAborted } from "../model/abort.js";
import type { CallOptions, RemoveOptions, RuntimePort } from "../model/ports.js";
import type { EveryMember } from "../model/members.js";
import { EngineStillTerminating, RuntimeFailure, type RuntimeFailureKind } from "../model/runtimeFailure.js";

export const CODE_BY_FAILURE_KIND: Readonly<Record<RuntimeFailureKind, ErrorCode>> = {
  unavailable: RUNTIME_UNAVAILABLE,
  // The controller ensures the image before creating, so a missing one means the pull did not take.
  image_not_found: "image_pull_failed",
  pull_failed: "image_pull_failed",
  // A refused config fails the same way until the declaration changes: permanent.
  config_refused: "start_config_invalid",
  // Retried, so a transient code: 503 service_unavailable, the contract's "an upstream dependency is
  // unavailable" (here the cluster's capacity), which Game Master retries like any 503.
  refused_for_now: "service_unavailable",
  start_failed: "container_start_failed",
  not_found: "not_found",
  conflict: "conflict",
  failed: "internal_error",
};

/** A RuntimeFailure as the contract error it stands for; anything else as toRtmError does. */
export function contractError(err: unknown): RtmError {
  if (err instanceof RuntimeFailure) {
    return new RtmError(CODE_BY_FAILURE_KIND[err.kind], err.message, { operation: err.operation, ...err.details }, { cause: err });
  }
  return toRtmError(err);
}

function mapped<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return (...args) =>
    fn(...args).catch((err: unknown) => {
      // Cut short by the caller's signal, or stopped short of a wait (the executor defers the rest):
      // no failure of the runtime's, so no contract error either.
      throw isAborted(err) || err instanceof EngineStillTerminating ? err : contractError(err);
    });
}

/** A failure in the middle of a stream is a contract error too. */
async function* mappedStream<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* source;
  } catch (err) {
    throw contractError(err);
  }
}

/**
 * The same runtime, with every failure already a contract error: what the
 * controller, the REST operations and the readiness check are given.
 */
export function withContractErrors(runtime: RuntimePort): RuntimePort {
  const optional = <A extends unknown[], R>(fn: ((...args: A) => Promise<R>) | undefined) => (fn ? mapped(fn.bind(runtime)) : undefined);
  const decorated: EveryMember<RuntimePort> = {
    name: runtime.name,
    verbs: runtime.verbs,
    ping: mapped(() => runtime.ping()),
    setupProblem: mapped(() => runtime.setupProblem()),
    listManaged: mapped((options?: { inspect?: boolean } & CallOptions) => runtime.listManaged(options)),
    listForGame: mapped((gameId: string, o?: CallOptions) => runtime.listForGame(gameId, o)),
    ensureImage: mapped((ref: string, policy: Parameters<RuntimePort["ensureImage"]>[1], o?: CallOptions) => runtime.ensureImage(ref, policy, o)),
    imageMetadata: optional(runtime.imageMetadata),
    create: mapped((spec: Parameters<RuntimePort["create"]>[0], o?: CallOptions) => runtime.create(spec, o)),
    updateImage: optional(runtime.updateImage),
    start: mapped((id: string, o?: CallOptions) => runtime.start(id, o)),
    stop: mapped((id: string, timeoutSeconds: number, o?: CallOptions) => runtime.stop(id, timeoutSeconds, o)),
    remove: mapped((id: string, o?: RemoveOptions) => runtime.remove(id, o)),
    watchEvents: (handlers) => runtime.watchEvents(handlers),
    logStream: async (id, options) => mappedStream(await mapped(() => runtime.logStream(id, options))()),
    probeAddress: (engine) => runtime.probeAddress(engine),
    recordLocation: runtime.recordLocation?.bind(runtime),
    close: runtime.close?.bind(runtime),
    pruneReleasedState: optional(runtime.pruneReleasedState),
  };
  return decorated;
}
