/**
 * /readyz is open to anyone who can reach the port (kubelet probes carry no
 * token), and each real check costs a database round trip and runtime calls
 * (in Pod mode, API-server requests out of the service account's priority
 * and fairness budget). So at most one check runs at a time, every caller
 * meanwhile shares it, and its answer is kept for a second: a flood of
 * probes costs about one check a second, like a cached health endpoint
 * behind kubelet's own probe period.
 */
export interface CachedCheckOptions<T> {
  check(): Promise<T>;
  /** How long an answer is served after it arrived. */
  ttlMs: number;
  /** Called once per check actually run (metrics). */
  onCheck?(): void;
  now?(): number;
}

export class CachedCheck<T> {
  private inFlight: Promise<T> | null = null;
  private cached: { at: number; value: T } | null = null;
  private readonly now: () => number;

  constructor(private readonly options: CachedCheckOptions<T>) {
    this.now = options.now ?? (() => performance.now());
  }

  get(): Promise<T> {
    if (this.cached && this.now() - this.cached.at < this.options.ttlMs) return Promise.resolve(this.cached.value);
    if (this.inFlight) return this.inFlight;
    this.options.onCheck?.();
    const run = this.options.check().then((value) => {
      // From when the answer arrived: a slow check is not followed at once by another.
      this.cached = { at: this.now(), value };
      return value;
    });
    this.inFlight = run.finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }
}
