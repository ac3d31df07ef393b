/** HTTP request metrics, labelled by route template so a raw path never becomes a label. */
import { Counter, Histogram, type Registry } from "prom-client";
import type { HttpStreamCounts } from "../http/limits.js";
import { scrapeGauge } from "./gauge.js";


/** Distinct HTTP route values kept before the rest are folded into "unmatched": a guard against a caller passing raw paths. */
const MAX_ROUTES = 64;
const HTTP_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class HttpRequestMetrics {
  readonly requests: Counter<"route" | "method" | "status">;
  readonly duration: Histogram<"route" | "method">;
  /** Dependency checks /readyz actually ran (cached answers do not count). */
  readonly readinessChecks: Counter;
  private readonly routes = new Set<string>();
  private streams: (() => HttpStreamCounts) | null = null;

  constructor(registry: Registry) {
    const registers = [registry];
    this.readinessChecks = new Counter({
      name: "rtmanager_readiness_checks_total",
      help: "Readiness dependency checks run (database, runtime); /readyz answers in between from a cache.",
      registers,
    });
    scrapeGauge(registry, { name: "rtmanager_http_open_streams", help: "Long-lived HTTP streams open, by kind.", labelNames: ["kind"] }, (g) => {
      const c = this.streams?.();
      g.set({ kind: "events" }, c?.eventStreams ?? 0);
      g.set({ kind: "event_subscribers" }, c?.eventSubscribers ?? 0);
      g.set({ kind: "log_follows" }, c?.logFollows ?? 0);
    });
    this.requests = new Counter({
      name: "rtmanager_http_requests_total",
      help: "HTTP requests by route template, method and status.",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.duration = new Histogram({
      name: "rtmanager_http_request_duration_seconds",
      help: "HTTP request duration by route template and method (mutations include the wait for the loop).",
      labelNames: ["route", "method"],
      buckets: HTTP_BUCKETS,
      registers,
    });
  }

  bindStreams(counts: () => HttpStreamCounts): void {
    this.streams = counts;
  }

  /** `route` must be the route template (`/api/v1/internal/runtimes/{game_id}/stop`) or "unmatched". */
  observe(route: string, method: string, status: number | string, seconds: number): void {
    let r = route;
    if (!this.routes.has(r)) {
      if (this.routes.size >= MAX_ROUTES) r = "unmatched";
      else this.routes.add(r);
    }
    const m = HTTP_METHODS.has(method.toUpperCase()) ? method.toUpperCase() : "OTHER";
    this.requests.inc({ route: r, method: m, status: String(status) });
    this.duration.observe({ route: r, method: m }, seconds);
  }
}
