/**
 * HTTP probes as the kubelet runs them: every periodSeconds after
 * initialDelaySeconds, a GET with timeoutSeconds; 200-399 is success. The
 * result flips after successThreshold consecutive successes or
 * failureThreshold consecutive failures.
 */
import http from "node:http";
import type { Probe } from "./types.js";

/** Where the probe connects: a container port resolved to the pod IP (CRI) or a published 127.0.0.1 port (Docker). */
export type ProbeTarget = (port: number | string) => { host: string; port: number } | undefined;

export class Prober {
  private timer: NodeJS.Timeout | null = null;
  private successes = 0;
  private failures = 0;
  private result: boolean;
  private stopped = false;

  /**
   * @param initial  readiness starts false, liveness true
   * @param onResult called when the result flips
   */
  constructor(
    private readonly probe: Probe,
    private readonly target: ProbeTarget,
    initial: boolean,
    private readonly onResult: (ok: boolean) => void,
  ) {
    this.result = initial;
    const delay = (probe.initialDelaySeconds ?? 0) * 1000;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const ok = await this.once();
    if (this.stopped) return;
    if (ok) {
      this.successes++;
      this.failures = 0;
    } else {
      this.failures++;
      this.successes = 0;
    }
    const flip = ok ? !this.result && this.successes >= (this.probe.successThreshold ?? 1) : this.result && this.failures >= (this.probe.failureThreshold ?? 3);
    if (flip) {
      this.result = ok;
      this.onResult(ok);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), (this.probe.periodSeconds ?? 10) * 1000);
  }

  private once(): Promise<boolean> {
    const get = this.probe.httpGet;
    const target = get ? this.target(get.port) : undefined;
    if (!get || target === undefined) return Promise.resolve(false);
    return new Promise((resolve) => {
      const req = http.get({ host: target.host, port: target.port, path: get.path ?? "/", timeout: (this.probe.timeoutSeconds ?? 1) * 1000, agent: false }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
