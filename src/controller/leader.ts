/**
 * Leader election over any lease that can be taken or renewed atomically
 * (a SQL row, or a coordination.k8s.io Lease). client-go's rules: try every
 * retry period; a leader that has not renewed within the renew deadline steps
 * down, which is before the lease (longer) can expire and another replica can
 * take it, so two leaders never act at once.
 */
import type { Logger } from "../log.js";

export interface Lease {
  /** Takes or renews the lease for `holder`; true when held after the call. */
  tryAcquire(holder: string, durationMs: number): Promise<boolean>;
  release(holder: string): Promise<void>;
}

export interface LeaderCallbacks {
  onStartedLeading(): void | Promise<void>;
  onStoppedLeading(): void | Promise<void>;
}

export interface LeaderSettings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export class LeaderElector {
  private leading = false;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private tick: Promise<void> = Promise.resolve();

  constructor(
    private readonly lease: Lease,
    readonly identity: string,
    private readonly settings: LeaderSettings,
    private readonly callbacks: LeaderCallbacks,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** True while this replica may act: it leads and its last renewal is within the deadline. */
  mayAct(): boolean {
    return this.leading && Date.now() - this.lastRenew < this.settings.renewDeadlineMs;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.tick = this.attempt().finally(() => {
        if (!this.stopped) this.timer = setTimeout(loop, this.settings.retryPeriodMs);
      });
    };
    loop();
  }

  private async attempt(): Promise<void> {
    const attemptAt = Date.now();
    let held = false;
    let refused = false;
    try {
      held = await this.lease.tryAcquire(this.identity, this.settings.leaseDurationMs);
      refused = !held;
    } catch (err) {
      // Unknown outcome (store unreachable): keep trying until the renew deadline.
      this.logger.warn({ err: (err as Error).message }, "lease renewal failed");
    }
    if (held) {
      this.lastRenew = attemptAt;
      if (!this.leading) {
        this.leading = true;
        this.logger.info({ identity: this.identity }, "became leader");
        await this.callbacks.onStartedLeading();
      }
      return;
    }
    if (this.leading && (refused || Date.now() - this.lastRenew >= this.settings.renewDeadlineMs)) {
      // Lost or could not renew in time: stop acting before anyone else may start.
      await this.stepDown("lease lost");
    }
  }

  private async stepDown(why: string): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    this.logger.warn({ identity: this.identity, why }, "stopped leading");
    await this.callbacks.onStoppedLeading();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick;
    const wasLeading = this.leading;
    await this.stepDown("shutting down");
    if (wasLeading) await this.lease.release(this.identity).catch(() => {});
  }
}
