/**
 * The kubelet's per-container back-off (k8s.io/client-go/util/flowcontrol
 * Backoff as the kubelet uses it): the first restart is immediate, then each
 * start waits `base` (10 s) doubling up to `cap` (5 min) after the previous
 * finish; an entry idle for more than 2 x cap starts over.
 */
export class KubeletBackoff {
  private currentMs = 0;
  private lastUpdate = 0;

  constructor(
    private readonly baseMs: number,
    private readonly capMs: number,
  ) {}

  private expired(now: number): boolean {
    return this.currentMs === 0 || now - this.lastUpdate > 2 * this.capMs;
  }

  /** When a start may happen after a failure at `failedAt`. */
  readyAt(failedAt: number, now: number): number {
    return this.expired(now) ? failedAt : failedAt + this.currentMs;
  }

  /** Records an attempt: the next failure waits longer. */
  attempted(now: number): void {
    this.currentMs = this.expired(now) ? this.baseMs : Math.min(this.currentMs * 2, this.capMs);
    this.lastUpdate = now;
  }

  get delayMs(): number {
    return this.currentMs;
  }
}
