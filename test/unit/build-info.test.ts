import { readFileSync } from "node:fs";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { readBuildInfo, registerBuildInfo } from "../../src/buildInfo.js";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

describe("build info", () => {
  it("takes the version from package.json and the commit from RTMANAGER_COMMIT when set", () => {
    expect(readBuildInfo({ RTMANAGER_COMMIT: " 4f2a9c1 \n" })).toEqual({ version: pkg.version, commit: "4f2a9c1", node: process.version });
  });

  it("without RTMANAGER_COMMIT, asks git for the checkout's commit (else says unknown)", () => {
    const { commit } = readBuildInfo({});
    expect(commit === "unknown" || /^[0-9a-f]{40}$/.test(commit), commit).toBe(true);
  });

  it("renders rtmanager_build_info as a gauge of 1 carrying the three labels", async () => {
    const registry = new Registry();
    registerBuildInfo(registry, { version: "9.8.7", commit: "abc1234", node: "v99.0.0" });
    expect(await registry.metrics()).toContain('rtmanager_build_info{version="9.8.7",commit="abc1234",node="v99.0.0"} 1');
  });
});
