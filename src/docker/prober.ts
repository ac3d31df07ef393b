import http from "node:http";
import https from "node:https";
import type { HealthProber, ProbeResult } from "../model/ports.js";

/**
 * GET `url`; healthy iff the answer is 2xx within `timeoutMs`. Redirects are
 * not followed (a 3xx counts as unhealthy) and no connection is reused, so one
 * engine's wedged socket never affects the next probe.
 */
export class HttpProber implements HealthProber {
  probe(url: string, timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    return new Promise<ProbeResult>((resolve) => {
      let done = false;
      const finish = (statusCode: number | null, error: string | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        const ok = error === null && statusCode !== null && statusCode >= 200 && statusCode < 300;
        resolve({ ok, statusCode, error, latencyMs: elapsed() });
      };

      let req: http.ClientRequest;
      try {
        const client = url.startsWith("https:") ? https : http;
        req = client.get(url, { agent: false, headers: { "user-agent": "rtmanager-prober" } }, (res) => {
          // The body is irrelevant, but it must be drained for the socket to close.
          res.resume();
          finish(res.statusCode ?? null, null);
        });
      } catch (err) {
        resolve({ ok: false, statusCode: null, error: err instanceof Error ? err.message : String(err), latencyMs: elapsed() });
        return;
      }
      // One deadline for connect + headers; req.setTimeout would only catch idleness.
      const timer = setTimeout(() => {
        finish(null, `timeout after ${timeoutMs} ms`);
        req.destroy();
      }, timeoutMs);
      req.on("error", (err: NodeJS.ErrnoException) => finish(null, err.code ? `${err.code}: ${err.message}` : err.message));
    });
  }
}
