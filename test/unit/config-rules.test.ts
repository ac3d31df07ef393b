/**
 * Settings that cannot be wrong quietly (issue 22 part 9): minimums, checks
 * between related settings, and a warning naming an unknown RTMANAGER_*
 * variable. Every row of the settings table is read through its own parser.
 */
import { describe, expect, it } from "vitest";
import { CONFIG_DOCS, configWarnings, loadConfig, SETTINGS, unknownSettings } from "../../src/config.js";

describe("minimums", () => {
  it.each([
    ["RTMANAGER_PROBE_INTERVAL", "0", /RTMANAGER_PROBE_INTERVAL: "0" is below the minimum of 100ms/],
    ["RTMANAGER_PROBE_TIMEOUT", "50ms", /RTMANAGER_PROBE_TIMEOUT: "50ms" is below the minimum of 100ms/],
    ["RTMANAGER_OP_TIMEOUT", "0", /RTMANAGER_OP_TIMEOUT: "0" is below the minimum of 1s/],
    ["RTMANAGER_RESYNC_INTERVAL", "0s", /RTMANAGER_RESYNC_INTERVAL: "0s" is below the minimum of 1s/],
    ["RTMANAGER_LEASE_RETRY_PERIOD", "0", /RTMANAGER_LEASE_RETRY_PERIOD/],
    ["RTMANAGER_SHUTDOWN_TIMEOUT", "0", /RTMANAGER_SHUTDOWN_TIMEOUT/],
    ["RTMANAGER_HTTP_IDLE_TIMEOUT", "0", /RTMANAGER_HTTP_IDLE_TIMEOUT/],
    ["RTMANAGER_SQL_STATEMENT_TIMEOUT", "10ms", /RTMANAGER_SQL_STATEMENT_TIMEOUT: "10ms" is below the minimum of 100ms \(0 turns it off\)/],
  ])("%s=%s is refused with the minimum in the message", (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it("0 still turns off the settings documented so, and the minimum itself is accepted", () => {
    const c = loadConfig({ RTMANAGER_SQL_STATEMENT_TIMEOUT: "0", RTMANAGER_KUBE_REQUEST_TIMEOUT: "0", RTMANAGER_POD_CLAIM_RETENTION: "0", RTMANAGER_PROBE_INTERVAL: "100ms", RTMANAGER_PROBE_TIMEOUT: "100ms" });
    expect([c.sqlStatementTimeoutMs, c.kubeRequestTimeoutMs, c.podClaimRetentionMs, c.probeIntervalMs]).toEqual([0, 0, 0, 100]);
  });

  it("names every bad variable at once", () => {
    const bad = { RTMANAGER_PROBE_INTERVAL: "0", RTMANAGER_OP_TIMEOUT: "0", RTMANAGER_CONCURRENCY: "many" };
    expect(() => loadConfig(bad)).toThrow(/^invalid configuration: /);
    const message = (() => {
      try {
        loadConfig(bad);
        return "";
      } catch (err) {
        return (err as Error).message;
      }
    })();
    for (const name of Object.keys(bad)) expect(message).toContain(`${name}: `);
  });

  it("the README row of a setting with a minimum states it (generated from the parser)", () => {
    const doc = (env: string) => CONFIG_DOCS.find((s) => s.env === env)?.doc;
    expect(doc("RTMANAGER_PROBE_INTERVAL")).toMatch(/Minimum 100ms\.$/);
    expect(doc("RTMANAGER_SQL_STATEMENT_TIMEOUT")).toMatch(/Minimum 100ms \(or 0\)\.$/);
  });
});

describe("checks between related settings", () => {
  it("RTMANAGER_PATCH_MIN_HEALTHY must be shorter than RTMANAGER_PATCH_HEALTH_TIMEOUT: otherwise every patch rolls back", () => {
    expect(() => loadConfig({ RTMANAGER_PATCH_MIN_HEALTHY: "60s", RTMANAGER_PATCH_HEALTH_TIMEOUT: "60s" })).toThrow(
      /RTMANAGER_PATCH_MIN_HEALTHY \(60s\) must be shorter than RTMANAGER_PATCH_HEALTH_TIMEOUT \(60s\)/,
    );
    // Only the default of the other side: still checked.
    expect(() => loadConfig({ RTMANAGER_PATCH_HEALTH_TIMEOUT: "4s" })).toThrow(/RTMANAGER_PATCH_MIN_HEALTHY \(5s\)/);
    expect(loadConfig({ RTMANAGER_PATCH_MIN_HEALTHY: "59s" }).patchMinHealthyMs).toBe(59_000);
  });

  it("a backoff's base may not exceed its cap", () => {
    expect(() => loadConfig({ RTMANAGER_RESTART_BACKOFF_BASE: "10m" })).toThrow(/RTMANAGER_RESTART_BACKOFF_BASE must not exceed RTMANAGER_RESTART_BACKOFF_MAX/);
    expect(() => loadConfig({ RTMANAGER_RETRY_BACKOFF_MAX: "100ms" })).toThrow(/RTMANAGER_RETRY_BACKOFF_BASE must not exceed RTMANAGER_RETRY_BACKOFF_MAX/);
  });

  it("the lease follows client-go's rules: renew deadline < duration, and > 1.2 x retry period", () => {
    expect(() => loadConfig({ RTMANAGER_LEASE_RENEW_DEADLINE: "15s" })).toThrow(/RTMANAGER_LEASE_RENEW_DEADLINE must be shorter than RTMANAGER_LEASE_DURATION/);
    expect(() => loadConfig({ RTMANAGER_LEASE_RETRY_PERIOD: "9s" })).toThrow(/longer than 1.2 x RTMANAGER_LEASE_RETRY_PERIOD/);
    expect(loadConfig({ RTMANAGER_LEASE_RETRY_PERIOD: "8s" }).leaseRetryPeriodMs).toBe(8000);
  });
});

describe("warnings", () => {
  it("names an unknown RTMANAGER_* variable with the setting it probably meant", () => {
    expect(unknownSettings({ RTMANAGER_PROBE_INTERVALL: "5s", RTMANAGER_OPTIMEOUT: "5s", RTMANAGER_NONSENSE_THING: "x", RTMANAGER_PROBE_INTERVAL: "5s", PATH: "/bin" })).toEqual([
      { name: "RTMANAGER_NONSENSE_THING", suggestion: undefined },
      { name: "RTMANAGER_OPTIMEOUT", suggestion: "RTMANAGER_OP_TIMEOUT" },
      { name: "RTMANAGER_PROBE_INTERVALL", suggestion: "RTMANAGER_PROBE_INTERVAL" },
    ]);
    expect(configWarnings({ RTMANAGER_PROBE_INTERVALL: "5s" })).toEqual([
      "RTMANAGER_PROBE_INTERVALL is not an rtmanager setting and is ignored (did you mean RTMANAGER_PROBE_INTERVAL?)",
    ]);
  });

  it("a sound environment, and the test tooling's own variables, warn about nothing", () => {
    expect(configWarnings({})).toEqual([]);
    expect(configWarnings({ RTMANAGER_TEST_SLACK: "2", RTMANAGER_E2E_CLUSTER: "1", RTMANAGER_PROBE_INTERVAL: "5s" })).toEqual([]);
  });

  it("pairs that work but are probably not meant start, with a warning", () => {
    const env = { RTMANAGER_PROBE_INTERVAL: "1s", RTMANAGER_PROBE_TIMEOUT: "2s", RTMANAGER_OP_TIMEOUT: "30s" };
    expect(() => loadConfig(env)).not.toThrow();
    const warnings = configWarnings(env);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^RTMANAGER_PROBE_TIMEOUT is longer than RTMANAGER_PROBE_INTERVAL/);
    expect(warnings[1]).toMatch(/^RTMANAGER_PATCH_HEALTH_TIMEOUT is not shorter than RTMANAGER_OP_TIMEOUT/);
  });
});

describe("the settings table", () => {
  it("every row's documented default is accepted by its own parser", () => {
    for (const [env, row] of Object.entries(SETTINGS)) {
      expect(() => (row.parse as (t: string) => unknown)(row.default ?? ""), env).not.toThrow();
    }
  });
});
