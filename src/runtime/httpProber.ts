import https from "node:https";
import net from "node:net";
import type { HealthProber, ProbeResult } from "../model/ports.js";

/** Enough of an answer to hold its status line; anything longer without one is not HTTP. */
const MAX_STATUS_LINE_BYTES = 1024;

/**
 * GET `url`; healthy iff the answer is 2xx within `timeoutMs`. Redirects are
 * not followed (a 3xx counts as unhealthy) and no connection is reused, so one
 * engine's wedged socket never affects the next probe.
 *
 * Plain http probes speak just enough HTTP/1.1 over a socket to read the
 * status line, then close: a fleet of 200 engines is probed 13 times a
 * second at the defaults, and node:http's client machinery cost about twice
 * the CPU per probe (1.4 ms against 0.6 ms, measured on the 2-core machine of
 * docs/BENCHMARKS.md). https keeps node:https.
 */
export class HttpProber implements HealthProber {
  probe(url: string, timeoutMs: number): Promise<ProbeResult> {
    let target: URL;
    try {
      target = new URL(url);
    } catch (err) {
      return Promise.resolve({ ok: false, statusCode: null, error: (err as Error).message, latencyMs: 0 });
    }
    return target.protocol === "https:" ? probeHttps(target, timeoutMs) : probeHttp(target, timeoutMs);
  }
}

/** Settles once: the first of an answer, an error or the deadline. */
function settle(timeoutMs: number, onTimeout: () => void): { finish(statusCode: number | null, error: string | null): void; done: Promise<ProbeResult> } {
  const started = performance.now();
  let resolve!: (r: ProbeResult) => void;
  const done = new Promise<ProbeResult>((r) => (resolve = r));
  let settled = false;
  // One deadline for connect + status line; a socket timeout would only catch idleness.
  const timer = setTimeout(() => {
    finish(null, `timeout after ${timeoutMs} ms`);
    onTimeout();
  }, timeoutMs);
  function finish(statusCode: number | null, error: string | null): void {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    const ok = error === null && statusCode !== null && statusCode >= 200 && statusCode < 300;
    resolve({ ok, statusCode, error, latencyMs: Math.round(performance.now() - started) });
  }
  return { finish, done };
}

function probeHttp(target: URL, timeoutMs: number): Promise<ProbeResult> {
  const port = Number(target.port || 80);
  const socket = net.connect({ host: target.hostname.replace(/^\[|\]$/g, ""), port });
  const { finish, done } = settle(timeoutMs, () => socket.destroy());
  let head = "";
  // No setNoDelay: the request is one write on a fresh connection, which Nagle never holds back,
  // and the setsockopt is one syscall more per probe.
  socket.on("connect", () => {
    socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: rtmanager-prober\r\nConnection: close\r\n\r\n`);
  });
  socket.on("data", (chunk: Buffer) => {
    head += chunk.toString("latin1");
    const eol = head.indexOf("\r\n");
    if (eol < 0 && head.length < MAX_STATUS_LINE_BYTES) return;
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(eol >= 0 ? head.slice(0, eol) : head);
    if (m) finish(Number(m[1]), null);
    else finish(null, `not an HTTP answer: ${JSON.stringify(head.slice(0, 40))}`);
    socket.destroy();
  });
  socket.on("end", () => finish(null, "connection closed before a status line"));
  socket.on("error", (err: NodeJS.ErrnoException) => finish(null, err.code ? `${err.code}: ${err.message}` : err.message));
  return done;
}

function probeHttps(target: URL, timeoutMs: number): Promise<ProbeResult> {
  let req: ReturnType<typeof https.get> | null = null;
  const { finish, done } = settle(timeoutMs, () => req?.destroy());
  try {
    req = https.get(target, { agent: false, headers: { "user-agent": "rtmanager-prober" } }, (res) => {
      // The body is irrelevant, but it must be drained for the socket to close.
      res.resume();
      finish(res.statusCode ?? null, null);
    });
    req.on("error", (err: NodeJS.ErrnoException) => finish(null, err.code ? `${err.code}: ${err.message}` : err.message));
  } catch (err) {
    finish(null, err instanceof Error ? err.message : String(err));
  }
  return done;
}
