import { describe, expect, it } from "vitest";
import { probeUrl } from "../../src/controller/health.js";
import { observedContainer } from "../helpers/fixtures.js";

describe("probeUrl", () => {
  const onNet = observedContainer({ name: "galaxy-game-g1", publishedPort: 32768, networkAddresses: { "galaxy-net": "172.18.0.7", bridge: "172.17.0.3" } });

  it("uses the published port when a publish host is set, and nothing without one", () => {
    expect(probeUrl(onNet, "127.0.0.1", "galaxy-net")).toBe("http://127.0.0.1:32768/healthz");
    expect(probeUrl({ ...onNet, publishedPort: null }, "127.0.0.1", "galaxy-net")).toBeNull();
  });

  it("uses the container's address on the configured network, not on another one", () => {
    expect(probeUrl(onNet, undefined, "galaxy-net")).toBe("http://172.18.0.7:8080/healthz");
    expect(probeUrl(onNet, undefined, "bridge")).toBe("http://172.17.0.3:8080/healthz");
  });

  it("falls back to the container name when Docker reports no address on that network", () => {
    expect(probeUrl(onNet, undefined, "other-net")).toBe("http://galaxy-game-g1:8080/healthz");
    expect(probeUrl({ ...onNet, networkAddresses: {} }, undefined, "galaxy-net")).toBe("http://galaxy-game-g1:8080/healthz");
  });
});
