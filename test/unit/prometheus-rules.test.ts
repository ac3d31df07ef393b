/**
 * The alert rules as Prometheus itself reads them: promtool checks the
 * scrape config and the rules and runs the rule tests (alerts.test.yml),
 * every alert has a test that makes it fire, the runbook links are absolute
 * and land on a heading of docs/operations.md, and the files
 * scripts/gen-prometheus-rule.ts writes have not drifted.
 *
 * promtool comes from Debian's `prometheus` package: scripts/ensure-promtool.sh
 * (run by scripts/test.sh) installs it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseDuration } from "../../src/model/duration.js";
import { dashboardConfigMapYaml, PATHS, prometheusRuleYaml, RUNBOOK_BASE, runbookUrl, withRunbookBase } from "../../scripts/gen-prometheus-rule.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const promDir = path.join(root, "deploy/prometheus");
const read = (p: string) => readFileSync(path.join(root, p), "utf8");

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations: Record<string, string>;
}
const alertRules = (): Rule[] => (parse(read("deploy/prometheus/alerts.yml")) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync("promtool", args, { cwd: promDir, encoding: "utf8" });
  if (r.error) {
    throw new Error(`promtool is not installed (${r.error.message}): run scripts/ensure-promtool.sh, which installs Debian's prometheus package (apt-get install prometheus)`);
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** GitHub's anchor of a Markdown heading. */
const anchorOf = (heading: string) => heading.trim().toLowerCase().replace(/[^a-z0-9 -]/g, "").replace(/ /g, "-");

describe("Prometheus rules (promtool)", () => {
  it("promtool check config --syntax-only accepts prometheus.yml", () => {
    const r = promtool("check", "config", "--syntax-only", "prometheus.yml");
    expect(r.status, r.output).toBe(0);
  });

  it("promtool check rules accepts alerts.yml", () => {
    const r = promtool("check", "rules", "alerts.yml");
    expect(r.status, r.output).toBe(0);
    expect(r.output).toContain(`${alertRules().length} rules found`);
  });

  it("promtool test rules passes alerts.test.yml", () => {
    const r = promtool("test", "rules", "alerts.test.yml");
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS/);
  });

  it("every alert has a test in alerts.test.yml in which it fires", () => {
    const tests = (parse(read("deploy/prometheus/alerts.test.yml")) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] }).tests;
    const firing = new Set(tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const alerts = alertRules().map((r) => r.alert);
    expect(alerts.length).toBeGreaterThanOrEqual(11);
    for (const a of alerts) expect(firing.has(a), `no test in alerts.test.yml makes ${a} fire`).toBe(true);
  });

  it("runbook_url is absolute, from RUNBOOK_BASE, and lands on a heading of docs/operations.md", () => {
    expect(RUNBOOK_BASE).toMatch(/^https:\/\/github\.com\/[^/]+\/rtmanager\/blob\/main\/docs\/operations\.md$/);
    const headings = new Set([...read("docs/operations.md").matchAll(/^#{1,4} +(.+)$/gm)].map((m) => anchorOf(m[1]!)));
    for (const rule of alertRules()) {
      const anchor = rule.alert.toLowerCase();
      expect(rule.annotations.runbook_url, rule.alert).toBe(runbookUrl(anchor));
      expect(headings.has(anchor), `docs/operations.md has no "### ${rule.alert}" (anchor #${anchor})`).toBe(true);
    }
  });

  it("the generated files have not drifted: run `npx tsx scripts/gen-prometheus-rule.ts`", () => {
    const hint = "stale: run `npx tsx scripts/gen-prometheus-rule.ts`";
    const alerts = readFileSync(PATHS.alerts, "utf8");
    expect(readFileSync(PATHS.prometheusRule, "utf8"), `prometheusrule.yaml ${hint}`).toBe(prometheusRuleYaml(alerts));
    expect(readFileSync(PATHS.dashboardConfigMap, "utf8"), `grafana-dashboard.yaml ${hint}`).toBe(dashboardConfigMapYaml(readFileSync(PATHS.dashboard, "utf8")));
    for (const file of [PATHS.alerts, PATHS.alertTests]) {
      const text = readFileSync(file, "utf8");
      expect(withRunbookBase(text), `${path.relative(root, file)}: runbook URLs ${hint}`).toBe(text);
    }
    // The rewrite is not vacuous: another base changes every URL.
    const moved = withRunbookBase(alerts, "https://docs.example.org/ops");
    expect(moved.match(/https:\/\/docs\.example\.org\/ops#rtmanager/g)?.length).toBe(alertRules().length);
  });

  it("RtmanagerTargetMissing watches the same job RtmanagerDown does", () => {
    const rules = new Map(alertRules().map((r) => [r.alert, r]));
    expect(rules.get("RtmanagerTargetMissing")?.expr).toBe('absent(up{job="rtmanager"})');
    expect(rules.get("RtmanagerDown")?.expr).toContain('up{job="rtmanager"}');
    const prom = parse(read("deploy/prometheus/prometheus.yml")) as { scrape_configs: { job_name: string }[] };
    expect(prom.scrape_configs.map((s) => s.job_name)).toContain("rtmanager");
  });

  it("every aggregation is per installation: by (namespace, job), never across installations", () => {
    for (const rule of alertRules()) {
      for (const m of rule.expr.matchAll(/\b(sum|max|min|avg|count)\b\s*(by\s*\(([^)]*)\))?\s*\(/g)) {
        expect(m[2], `${rule.alert}: ${m[0]}`).toBeDefined();
        expect(m[3]!.split(",").map((l) => l.trim()), `${rule.alert}: ${m[0]}`).toEqual(expect.arrayContaining(["namespace", "job"]));
      }
    }
  });

  it("RtmanagerRuntimeUnavailable (either runtime) needs a sustained failure rate, not one error", () => {
    const rule = alertRules().find((r) => r.alert === "RtmanagerRuntimeUnavailable")!;
    expect(parseDuration(rule.for ?? "0s")).toBeGreaterThanOrEqual(5 * 60_000);
    expect(rule.expr).toMatch(/rate\(rtmanager_runtime_api_calls_total\{[^}]*\}\[5m\]\)/);
    expect(rule.expr).not.toMatch(/runtime\s*=/);
    expect(rule.expr).not.toMatch(/increase\([^)]*\)\)?\s*>\s*0\b/);
  });

  it("promtool itself is not a rubber stamp: a broken rule file fails check rules", () => {
    const r = spawnSync("promtool", ["check", "rules", "/dev/stdin"], { input: "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(\n", encoding: "utf8" });
    if (r.error) throw new Error(`promtool is not installed: run scripts/ensure-promtool.sh`);
    expect(r.status).not.toBe(0);
    expect(execFileSync("promtool", ["--version"], { encoding: "utf8" })).toMatch(/promtool, version 2\./);
  });
});
