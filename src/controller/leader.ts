/**
 * Leader election over any lease that can be taken or renewed atomically
 * (a SQL row, or a coordination.k8s.io Lease). client-go's rules: try every
 * retry period; a leader that has not renewed within the renew deadline steps
 * down, which is before the lease (longer) can expire and another replica can
 * take it, so two leaders never act at once.
 *
 * Every lease call is bounded (client-go bounds renewals by the renew
 * deadline): a leader's renewal gets what is left of its deadline, a
 * candidate's attempt the whole deadline. A call past its bound is aborted
 * (its AbortSignal fires) and counts as failed, so an API server or database
 * that hangs cannot keep a leader that has lost its lease acting. Time is
 * measured on the monotonic clock (performance.now): a wall-clock jump
 * neither extends nor cuts a leader's term.
 *
 * Each term has an AbortSignal (`signal`) that fires the moment this replica
 * may no longer act: at the renew deadline (a timer, and `mayAct` itself when
 * it finds the deadline past after a pause that held the timer back), on a
 * step-down and on shutdown. The loop's calls take it, so lost leadership
 * cuts a slow runtime or store call short instead of being noticed after it
 * (client-go's leaderelection cancels its context the same way, `OnStoppedLeading`
 * after `le.renew` gives up; controller-runtime's Manager then cancels the
 * context of every leader runnable).
 */
import type { Logger } from "../log.js";
import { AbortedError } from "../model/abort.js";
import type { Lease } from "../model/ports.js";
import { withTimeout } from "../model/timeout.js";

export interface LeaderCallbacks {
  /** Starts the leader's work. When it throws, the elector steps down (and tries again on its next retry). */
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void | Promise<void>;
}

export interface LeaderSettings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

class LeaseCallTimeout extends Error {
  override readonly name = "LeaseCallTimeout";
}

/** Runs `call` with a signal that aborts after `ms`; rejects at `ms` even if the call ignores the signal. */
function bounded<T>(ms: number, what: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  return withTimeout(call(controller.signal), ms, () => {
    const err = new LeaseCallTimeout(`${what} got no answer within ${Math.round(ms)} ms`);
    controller.abort(err);
    return err;
  });
}

const monotonicNow = (): number => performance.now();

export class LeaderElector {
  private leading = false;
  /** performance.now() when the last successful renewal started. */
  private lastRenew = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private tick: Promise<void> = Promise.resolve();
  /** The current term's; a fresh, already aborted one outside a term. */
  private term: AbortController = aborted("not leading");
  private deadlineTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly lease: Lease,
    readonly identity: string,
    private readonly settings: LeaderSettings,
    private readonly callbacks: LeaderCallbacks,
    private readonly logger: Logger,
    private readonly now: () => number = monotonicNow,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** True while this replica may act: it leads and its last renewal is within the deadline. False also fires `signal`. */
  mayAct(): boolean {
    const may = this.leading && this.now() - this.lastRenew < this.settings.renewDeadlineMs;
    if (!may) this.endTerm("renew deadline passed without a successful renewal");
    return may;
  }

  /** Fires when this term ends (see the module comment); already fired while not leading. */
  get signal(): AbortSignal {
    return this.term.signal;
  }

  private endTerm(why: string): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    if (!this.term.signal.aborted) this.term.abort(new AbortedError(`this replica lost leadership (${why}); the new leader finishes the job`));
  }

  /** After each renewal: the term ends at the new deadline unless a later renewal moves it. */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    const left = this.lastRenew + this.settings.renewDeadlineMs - this.now();
    this.deadlineTimer = setTimeout(() => void this.mayAct(), Math.max(0, left));
    this.deadlineTimer.unref?.();
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.tick = this.attempt().finally(() => {
        if (this.stopped) return;
        let delay = this.settings.retryPeriodMs;
        // A leader wakes up by its deadline at the latest, to step down on time.
        if (this.leading) delay = Math.min(delay, Math.max(0, this.lastRenew + this.settings.renewDeadlineMs - this.now()));
        this.timer = setTimeout(loop, delay);
      });
    };
    loop();
  }

  private async attempt(): Promise<void> {
    const attemptAt = this.now();
    const deadlineLeft = this.leading ? this.lastRenew + this.settings.renewDeadlineMs - attemptAt : this.settings.renewDeadlineMs;
    if (this.leading && deadlineLeft <= 0) {
      await this.stepDown("renew deadline passed without a successful renewal");
      return;
    }
    let held = false;
    let refused = false;
    try {
      held = await bounded(deadlineLeft, "lease renewal", (signal) => this.lease.tryAcquire(this.identity, this.settings.leaseDurationMs, signal));
      refused = !held;
    } catch (err) {
      // Unknown outcome (unreachable, or no answer in time): keep trying until the renew deadline.
      this.logger.warn({ err }, "lease renewal failed");
    }
    if (this.stopped && !this.leading) return;
    if (held) {
      this.lastRenew = attemptAt;
      if (!this.leading) {
        this.leading = true;
        this.term = new AbortController();
        this.logger.info({ identity: this.identity }, "became leader");
        try {
          await this.callbacks.onStartedLeading();
        } catch (err) {
          this.logger.error({ err, identity: this.identity }, "could not start leading");
          await this.stepDown("the leader's work did not start");
          return;
        }
      }
      if (this.leading) this.armDeadline();
      return;
    }
    if (this.leading && (refused || this.now() - this.lastRenew >= this.settings.renewDeadlineMs)) {
      // Lost, or could not renew in time: stop acting before anyone else may start.
      await this.stepDown(refused ? "lease lost" : "renew deadline passed without a successful renewal");
    }
  }

  private async stepDown(why: string): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    // Before the runnables stop: the reconciles in flight give up their calls now, not at their own bounds.
    this.endTerm(why);
    this.logger.warn({ identity: this.identity, why }, "stopped leading");
    try {
      await this.callbacks.onStoppedLeading();
    } catch (err) {
      // The elector's loop must go on (and a shutdown must still release the lease).
      this.logger.error({ err, identity: this.identity }, "stopping the leader's work failed");
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    const wasLeading = this.leading;
    await this.stepDown("shutting down");
    // Past the lease duration the lease has expired anyway: waiting longer for a release is pointless.
    if (wasLeading) await bounded(this.settings.leaseDurationMs, "lease release", (signal) => this.lease.release(this.identity, signal)).catch(() => {});
  }
}

function aborted(why: string): AbortController {
  const c = new AbortController();
  c.abort(new AbortedError(why));
  return c;
}
