import { describe, expect, it } from "vitest";
import { CONFIG_DOCS, loadConfig } from "../../src/config.js";
import { readFileSync } from "node:fs";

describe("configuration", () => {
  it("starts from documented defaults with an empty environment", () => {
    const c = loadConfig({});
    expect(c.httpPort).toBe(8096);
    expect(c.dockerNetwork).toBe("galaxy-net");
    expect(c.stopTimeoutMs).toBe(30_000);
    expect(c.retentionMs).toBe(30 * 86_400_000);
    expect(c.resyncIntervalMs).toBe(30_000);
    expect(c.concurrency).toBe(8);
    expect(c.defaultMemoryBytes).toBe(512 * 1024 * 1024);
    expect(c.imagePullPolicy).toBe("if_not_present");
    expect(c.databaseUrl).toBeUndefined();
  });

  it.each([
    ["RTMANAGER_CONCURRENCY", "zero"],
    ["RTMANAGER_CONTAINER_STOP_TIMEOUT", "forever"],
    ["RTMANAGER_IMAGE_PULL_POLICY", "sometimes"],
    ["RTMANAGER_INTERNAL_HTTP_ADDR", "nowhere"],
    ["RTMANAGER_DEFAULT_MEMORY", "lots"],
    ["RTMANAGER_INSTANCE_ID", "Bad/Id"],
    ["RTMANAGER_ORPHAN_DRY_RUN", "maybe"],
  ])("a bad %s stops start-up with a message naming it", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it("quarantine and canaries: defaults 3 rollbacks in 10 minutes, canaries off; set, they are read", () => {
    const c = loadConfig({});
    expect([c.quarantineAfter, c.quarantineWindowMs, c.patchCanaries]).toEqual([3, 600_000, 0]);
    const set = loadConfig({ RTMANAGER_QUARANTINE_AFTER: "5", RTMANAGER_QUARANTINE_WINDOW: "30m", RTMANAGER_PATCH_CANARIES: "2" });
    expect([set.quarantineAfter, set.quarantineWindowMs, set.patchCanaries]).toEqual([5, 1_800_000, 2]);
  });

  it.each([
    ["RTMANAGER_QUARANTINE_AFTER", "0"],
    ["RTMANAGER_QUARANTINE_AFTER", "three"],
    ["RTMANAGER_QUARANTINE_WINDOW", "a while"],
    ["RTMANAGER_PATCH_CANARIES", "-1"],
    ["RTMANAGER_PATCH_CANARIES", "1.5"],
  ])("a bad %s (%s) stops start-up with a message naming it", (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it("every variable is documented in the README with its default", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    for (const s of CONFIG_DOCS) {
      expect(readme, s.env).toContain(`\`${s.env}\``);
      if (s.default) expect(readme, `${s.env} default`).toContain(`\`${s.default}\``);
    }
  });
});

describe("cluster-wide image allow-list (issue 21)", () => {
  it("cluster-wide Kubernetes mode refuses to start without RTMANAGER_IMAGE_ALLOWLIST unless RTMANAGER_ALLOW_ANY_IMAGE=true", () => {
    const clusterWide = { RTMANAGER_SOURCE: "kubernetes", RTMANAGER_KUBE_NAMESPACE: "" };
    expect(() => loadConfig(clusterWide)).toThrow(/RTMANAGER_IMAGE_ALLOWLIST.*RTMANAGER_ALLOW_ANY_IMAGE=true/);
    expect(loadConfig({ ...clusterWide, RTMANAGER_IMAGE_ALLOWLIST: "registry.example.com/galaxy" }).imageAllowlist).toEqual(["registry.example.com/galaxy"]);
    expect(() => loadConfig({ ...clusterWide, RTMANAGER_ALLOW_ANY_IMAGE: "true" })).not.toThrow();
    // One namespace, or the SQL source: the namespace's own users choose, as before.
    expect(() => loadConfig({ RTMANAGER_SOURCE: "kubernetes", RTMANAGER_KUBE_NAMESPACE: "games" })).not.toThrow();
    expect(() => loadConfig({})).not.toThrow();
  });
});
