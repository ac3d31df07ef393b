/**
 * The deploy kit stays true to the code: every metric the alert rules and the
 * Grafana dashboard query is one rtmanager exports, every alert has a runbook
 * entry, docs/metrics.md lists every metric, and the YAML files parse.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Metrics } from "../../src/metrics.js";
import { runbookUrl } from "../../scripts/gen-prometheus-rule.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const read = (p: string) => readFileSync(path.join(repoRoot, p), "utf8");

/** Series Prometheus itself creates for every target. */
const PROMETHEUS_SERIES = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped"]);
const PROMQL_WORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset", "inf", "nan"]);

/** Every series name rtmanager exposes, histogram and summary suffixes included. */
function exportedNames(): Set<string> {
  const names = new Set<string>();
  for (const m of new Metrics().registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    names.add(name);
    if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s);
    if (type === "summary") for (const s of ["_sum", "_count"]) names.add(name + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or Grafana variables. */
function metricNames(expr: string): string[] {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\w+/g, " ");
  // label_values(metric, label) names the metric first; the label is not a metric.
  e = e.replace(/label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*\w+\s*\)/g, " $1 ");
  const names: string[] = [];
  for (const m of e.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (call || PROMQL_WORDS.has(name!.toLowerCase())) continue;
    names.push(name!);
  }
  return names;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  annotations?: Record<string, string>;
}

function alertRules(): Rule[] {
  const doc = parse(read("deploy/prometheus/alerts.yml")) as { groups: { name: string; rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

interface Panel {
  title?: string;
  type: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

function dashboardExprs(): { where: string; expr: string }[] {
  const d = JSON.parse(read("deploy/grafana/rtmanager-dashboard.json")) as {
    panels: Panel[];
    templating: { list: { name: string; query?: string | { query: string } }[] };
  };
  const out: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    if (q && q.includes("(")) out.push({ where: `variable $${v.name}`, expr: q });
  }
  return out;
}

describe("observability kit", () => {
  const exported = exportedNames();

  it("finds metric names in PromQL the way the checks below rely on", () => {
    expect(metricNames('sum by (le) (rate(rtmanager_x_bucket{instance=~"$instance", a="b"}[$__rate_interval])) > 0.5')).toEqual(["rtmanager_x_bucket"]);
    expect(metricNames("(sum(rtmanager_leader) or vector(0)) == 0")).toEqual(["rtmanager_leader"]);
    expect(metricNames("a and on (instance) b")).toEqual(["a", "b"]);
    expect(metricNames("label_values(rtmanager_leader, instance)")).toEqual(["rtmanager_leader"]);
  });

  it("alert rules only name metrics rtmanager exports", () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThanOrEqual(5);
    for (const rule of rules) {
      const names = metricNames(rule.expr);
      expect(names.length, rule.alert).toBeGreaterThan(0);
      for (const n of names) expect(exported.has(n) || PROMETHEUS_SERIES.has(n), `${rule.alert}: ${n}`).toBe(true);
    }
  });

  it("has the alerts the operators were promised", () => {
    const exprs = new Map(alertRules().map((r) => [r.alert, r.expr]));
    expect(exprs.get("RtmanagerLoopStuck")).toMatch(/rtmanager_workqueue_depth[\s\S]*rtmanager_reconcile_total[\s\S]*longest_running_processor_seconds\) > 300/);
    expect(exprs.get("RtmanagerRuntimeCrashLooping")).toContain("rtmanager_runtimes_crashlooping");
    expect(exprs.get("RtmanagerRuntimeDegraded")).toContain("rtmanager_runtimes_degraded");
    expect(exprs.get("RtmanagerRuntimeUnavailable")).toContain("rtmanager_runtime_api_calls_total");
    expect(exprs.get("RtmanagerNoLeader")).toMatch(/sum by \(namespace, job\) \(rtmanager_leader\)/);
    expect(exprs.get("RtmanagerTargetMissing")).toMatch(/^absent\(up\{job="rtmanager"\}\)$/);
    expect(exprs.get("RtmanagerSlowConvergence")).toMatch(/histogram_quantile\(0\.95,.*rtmanager_convergence_seconds_bucket.*> 60/);
  });

  it("the dashboard only queries metrics rtmanager exports", () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(20);
    const used = new Set<string>();
    for (const { where, expr } of exprs) {
      const names = metricNames(expr);
      expect(names.length, where).toBeGreaterThan(0);
      for (const n of names) {
        expect(exported.has(n), `${where}: ${n}`).toBe(true);
        used.add(n.replace(/_(bucket|sum|count)$/, ""));
      }
    }
    // Every rtmanager metric is on the dashboard somewhere.
    const ours = [...new Set(new Metrics({ defaultMetrics: false }).registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name))];
    for (const n of ours) expect(used.has(n), `dashboard lacks ${n}`).toBe(true);
  });

  it("the dashboard is per installation: every series filtered by namespace and job (process panels too), every aggregation keeps them", () => {
    for (const { where, expr } of dashboardExprs()) {
      // The variables are what chooses the installation.
      if (where.startsWith("variable")) continue;
      for (const m of expr.matchAll(/\b((?:rtmanager|process|nodejs)_[a-z0-9_]+)(\{[^}]*\})?/g)) {
        expect(m[2] ?? "", `${where}: ${m[1]}`).toContain('namespace=~"$namespace", job=~"$job"');
      }
      for (const m of expr.matchAll(/\b(sum|max|min|avg|count)\b\s*(by\s*\(([^)]*)\))?\s*\(/g)) {
        expect(m[3]?.split(",").map((l) => l.trim()) ?? [], `${where}: ${m[0]}`).toEqual(expect.arrayContaining(["namespace", "job"]));
      }
    }
    const vars = (JSON.parse(read("deploy/grafana/rtmanager-dashboard.json")) as { templating: { list: { name: string }[] } }).templating.list.map((v) => v.name);
    expect(vars).toEqual(expect.arrayContaining(["namespace", "job", "instance"]));
  });

  it("every alert has a runbook entry in docs/operations.md", () => {
    const doc = read("docs/operations.md");
    const anchors = new Set([...doc.matchAll(/^#{2,4} +(.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-")));
    for (const rule of alertRules()) {
      const anchor = rule.alert!.toLowerCase();
      expect(anchors.has(anchor), `docs/operations.md has no "## ${rule.alert}"`).toBe(true);
      expect(rule.annotations?.runbook_url).toBe(runbookUrl(anchor));
    }
  });

  it("docs/metrics.md lists every rtmanager metric", () => {
    const doc = read("docs/metrics.md");
    for (const m of new Metrics({ defaultMetrics: false }).registry.getMetricsAsArray()) {
      const { name } = m as unknown as { name: string };
      expect(doc, name).toContain(`\`${name}\``);
    }
  });

  it("the YAML of the kit parses and wires what it should", () => {
    const prom = parse(read("deploy/prometheus/prometheus.yml")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path: string }[];
      alerting?: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    expect(prom.rule_files).toContain("alerts.yml");
    expect(prom.scrape_configs.find((s) => s.job_name === "rtmanager")?.metrics_path).toBe("/metrics");

    const compose = parse(read("deploy/compose.yaml")) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[]; healthcheck?: unknown; networks?: string[]; depends_on?: Record<string, unknown> }>;
      networks: Record<string, { name?: string }>;
    };
    const rtm = compose.services.rtmanager!;
    expect(rtm.environment?.DATABASE_URL).toMatch(/^postgres:\/\/rtmanager:.*@postgres:5432\/rtmanager$/);
    expect(rtm.volumes).toContain("/var/run/docker.sock:/var/run/docker.sock");
    // Docker bind-mounts host paths: the state root must be the same path on both sides.
    expect(rtm.volumes).toContain(`${rtm.environment?.RTMANAGER_STATE_ROOT}:${rtm.environment?.RTMANAGER_STATE_ROOT}`);
    expect(rtm.healthcheck).toBeDefined();
    expect(compose.services.postgres?.healthcheck).toBeDefined();
    expect(rtm.depends_on?.postgres).toEqual({ condition: "service_healthy" });
    expect(compose.networks["galaxy-net"]?.name).toBe(rtm.environment?.RTMANAGER_DOCKER_NETWORK);
    expect(rtm.networks).toContain("galaxy-net");

    // Alerts go somewhere named: Prometheus -> compose's alertmanager (monitoring profile) -> its route's receiver.
    const targets = prom.alerting?.alertmanagers.flatMap((a) => a.static_configs.flatMap((c) => c.targets)) ?? [];
    const am = (compose.services as Record<string, { profiles?: string[]; volumes?: string[]; ports?: string[] }>).alertmanager;
    expect(am?.profiles).toEqual(["monitoring"]);
    expect(targets).toEqual(["alertmanager:9093"]);
    expect(am?.volumes).toContain("./alertmanager:/etc/alertmanager:ro");
    expect(am?.ports?.every((p) => p.startsWith("127.0.0.1:"))).toBe(true);
    const amConfig = parse(read("deploy/alertmanager/alertmanager.yml")) as { route: { receiver: string }; receivers: { name: string }[] };
    expect(amConfig.receivers.map((r) => r.name)).toContain(amConfig.route.receiver);

    for (const p of ["deploy/grafana/provisioning/datasources/prometheus.yaml", "deploy/grafana/provisioning/dashboards/rtmanager.yaml"]) {
      expect(() => parse(read(p)), p).not.toThrow();
    }
  });

  it("the Dockerfile runs on Node 24 LTS as the non-root uid 10001 in the socket's group", () => {
    const dockerfile = read("deploy/Dockerfile");
    expect(dockerfile).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim AS build$/m);
    // Node 24, an LTS line (even major); both stages use it.
    expect(dockerfile).toMatch(/^ARG NODE_VERSION=24$/m);
    expect(dockerfile.match(/^FROM node:\$\{NODE_VERSION\}-/gm)).toHaveLength(2);
    expect(dockerfile).not.toMatch(/node:20/);
    expect(dockerfile).toMatch(/^ARG UID=10001$/m);
    expect(dockerfile).toMatch(/^ARG DOCKER_GID=/m);
    expect(dockerfile).toMatch(/^USER rtmanager$/m);
    expect(dockerfile).toMatch(/root-equivalent/);
    expect(dockerfile).toMatch(/npm prune --omit=dev/);
  });
});
