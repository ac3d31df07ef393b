/**
 * What one reconcile calls the runtime, the store and the prober through. The
 * scope owns the reconcile's AbortSignal (a child of the term's, see
 * manager.ts) and hands it to every call, so lost leadership or a shutdown
 * cuts the call in flight short instead of being noticed after it.
 *
 * Before every runtime call (and every store write) it makes the fence check:
 * this replica must still be allowed to act (`mayAct`, the elector's renew
 * deadline). A runtime call cannot be fenced by the store's epoch, so this
 * check is what keeps a replica that lost its lease from starting another
 * engine call; when it fails it aborts the scope, and everything after sees
 * one fact, `signal.aborted`. Each call is also raced against the signal: an
 * adapter or fake that ignores it cannot hold the reconcile.
 */
import type { Logger } from "../log.js";
import { AbortedError, abortReason, childController, raceAbort, throwIfAborted } from "../model/abort.js";
import { RtmError } from "../model/errors.js";
import type { EveryMember } from "../model/members.js";
import type { CallOptions, DeclarationSource, HealthProber, RuntimePort, StateStore } from "../model/ports.js";
import type { Plan } from "./plan.js";
import type { ReconcileResult } from "./reconcileResult.js";
import type { RuntimeTurns } from "./runtimeTurns.js";

export interface ReconcileIo {
  signal: AbortSignal;
  runtime: RuntimePort;
  state: StateStore;
  prober: HealthProber;
  source: Pick<DeclarationSource, "get">;
}

export interface ScopeDeps {
  runtime: RuntimePort;
  state: StateStore;
  prober: HealthProber;
  source: Pick<DeclarationSource, "get">;
  /** False once this replica may no longer act; absent: it always may. */
  mayAct?: () => boolean;
  /** Fresh changes before rollout swaps at the runtime (runtimeTurns.ts); absent: no order. */
  turns?: RuntimeTurns;
}

export class ReconcileScope {
  readonly io: ReconcileIo;
  private readonly controller: AbortController;
  readonly dispose: () => void;
  /** Ends this reconcile's turn as a fresh change, once it has acted on the runtime. */
  private leaveFresh: (() => void) | null = null;

  /** `rolloutSwap`: the key was handed out of the queue's rollout lane, so its runtime calls give fresh changes the turn. */
  constructor(
    private readonly deps: ScopeDeps,
    parent?: AbortSignal,
    private readonly rolloutSwap = false,
  ) {
    const { controller, dispose } = childController(parent);
    this.controller = controller;
    this.dispose = () => {
      this.leaveFresh?.();
      dispose();
    };
    const signal = controller.signal;
    this.io = { signal, runtime: this.runtime(), state: this.state(), prober: this.prober(), source: this.source() };
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The fence check: throws (and aborts the scope) once this replica may no longer act. */
  fenceCheck(): void {
    if (this.deps.mayAct && !this.signal.aborted && !this.deps.mayAct()) {
      this.controller.abort(new AbortedError("this replica lost leadership mid-reconcile; the new leader finishes the job"));
    }
    throwIfAborted(this.signal);
  }

  /** A call that acts: fence check first, then the call with the signal, raced against it. */
  private act<T>(call: (o: CallOptions) => Promise<T>): Promise<T> {
    try {
      this.fenceCheck();
    } catch (err) {
      return Promise.reject(err);
    }
    return raceAbort(call({ signal: this.signal }), this.signal);
  }

  /** A call that changes an engine: in its turn (runtimeTurns.ts), then as `act`. */
  private async change<T>(call: (o: CallOptions) => Promise<T>): Promise<T> {
    const turns = this.deps.turns;
    if (turns && this.rolloutSwap) {
      const done = await turns.rolloutTurn(this.signal);
      try {
        return await this.act(call);
      } finally {
        done();
      }
    }
    if (turns) this.leaveFresh ??= turns.enterFresh();
    return this.act(call);
  }

  /** A read: no fence check (a read changes nothing), but it stops waiting when the scope aborts. */
  private read<T>(call: (o: CallOptions) => Promise<T>): Promise<T> {
    try {
      throwIfAborted(this.signal);
    } catch (err) {
      return Promise.reject(err);
    }
    return raceAbort(call({ signal: this.signal }), this.signal);
  }

  private runtime(): RuntimePort {
    const rt = this.deps.runtime;
    const { imageMetadata, updateImage } = rt;
    const scoped: EveryMember<RuntimePort> = {
      name: rt.name,
      verbs: rt.verbs,
      ping: () => rt.ping(),
      setupProblem: () => rt.setupProblem(),
      listManaged: (options) => this.act((o) => rt.listManaged({ ...options, ...o })),
      listForGame: (gameId) => this.act((o) => rt.listForGame(gameId, o)),
      // A pull waits on the registry, not on the engine's container work: outside the turns (a long pull would hold a rollout).
      ensureImage: (ref, policy) => this.act((o) => rt.ensureImage(ref, policy, o)),
      imageMetadata: imageMetadata && ((ref) => this.act((o) => imageMetadata.call(rt, ref, o))),
      create: (spec) => this.change((o) => rt.create(spec, o)),
      updateImage: updateImage && ((id, spec) => this.change((o) => updateImage.call(rt, id, spec, o))),
      start: (id) => this.change((o) => rt.start(id, o)),
      stop: (id, timeoutSeconds) => this.change((o) => rt.stop(id, timeoutSeconds, o)),
      remove: (id, options) => this.change((o) => rt.remove(id, { ...options, ...o })),
      watchEvents: (handlers) => rt.watchEvents(handlers),
      // The app's own, never the reconcile's: not scoped.
      close: rt.close?.bind(rt),
      pruneReleasedState: rt.pruneReleasedState?.bind(rt),
      logStream: (id, options) => rt.logStream(id, options),
      probeAddress: (engine) => rt.probeAddress(engine),
      recordLocation: rt.recordLocation?.bind(rt),
    };
    return scoped;
  }

  /** Store writes are fenced by the epoch as well; the check here keeps an aborted reconcile from sending one at all. */
  private state(): StateStore {
    const st = this.deps.state;
    return {
      ping: () => st.ping(),
      close: () => st.close(),
      getRecord: (gameId) => this.read((o) => st.getRecord(gameId, o)),
      listRecords: () => this.read(() => st.listRecords()),
      putRecord: (record, fence) => this.act((o) => st.putRecord(record, fence, o)),
      startOperation: (op, fence) => this.act((o) => st.startOperation(op, fence, o)),
      finishOperation: (id, result, fence) => this.act((o) => st.finishOperation(id, result, fence, o)),
      listOperations: (gameId, limit) => this.read(() => st.listOperations(gameId, limit)),
      markInterruptedOperations: (fence) => this.act(() => st.markInterruptedOperations(fence)),
      appendEvent: (event, fence) => this.act((o) => st.appendEvent(event, fence, o)),
      eventsAfter: (seq, query) => this.read(() => st.eventsAfter(seq, query)),
      eventBounds: () => this.read(() => st.eventBounds()),
      commitReconcile: (commit, fence) => this.act((o) => st.commitReconcile(commit, fence, o)),
    };
  }

  private prober(): HealthProber {
    const p = this.deps.prober;
    return { probe: (url, timeoutMs) => this.read((o) => p.probe(url, timeoutMs, o)) };
  }

  private source(): Pick<DeclarationSource, "get"> {
    const s = this.deps.source;
    return { get: (gameId) => this.read((o) => s.get(gameId, o)) };
  }
}

/**
 * The signal fired (leadership went, or a shutdown) mid-reconcile: what
 * happened is not known here, so nothing more is written (no events, no end
 * of the operation-log row, no record; a newer leader's epoch would refuse
 * them anyway). The row left `running` is marked interrupted by the next
 * leader, which reconciles the game afresh (and resumes a health gate from
 * its interim record); a REST call waiting here waits for that leader's
 * record, or answers 503 at its op timeout.
 */
export function abortedResult(gameId: string, p: Plan | null, signal: AbortSignal, log: Pick<Logger, "warn">): ReconcileResult {
  const why = abortReason(signal).message;
  log.warn({ gameId, kind: p?.kind ?? null, why }, "reconcile aborted; nothing more is written");
  return { gameId, plan: p, record: null, outcome: { type: "error", error: new RtmError("service_unavailable", why), terminal: false } };
}
