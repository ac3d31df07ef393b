import { describe, expect, it } from "vitest";
import { probeUrl } from "../../src/controller/health.js";
import { DockerRuntime } from "../../src/runtime/docker/dockerRuntime.js";
import { observedContainer } from "../helpers/fixtures.js";

/** Docker's answer to "where does this engine's /healthz answer"; nothing here talks to dockerd. */
function docker(network: string, publishHost: string | null): DockerRuntime {
  return new DockerRuntime({ instance: "probe-url-test", network, publishHost });
}

describe("probeUrl through the Docker runtime's probeAddress", () => {
  const onNet = observedContainer({ name: "galaxy-game-g1", publishedPort: 32768, networkAddresses: { "galaxy-net": "172.18.0.7", bridge: "172.17.0.3" } });

  it("uses the published port when a publish host is set, and nothing without one", () => {
    const published = docker("galaxy-net", "127.0.0.1");
    expect(probeUrl(published, onNet)).toBe("http://127.0.0.1:32768/healthz");
    expect(probeUrl(published, { ...onNet, publishedPort: null })).toBeNull();
  });

  it("uses the container's address on the configured network, not on another one", () => {
    expect(probeUrl(docker("galaxy-net", null), onNet)).toBe("http://172.18.0.7:8080/healthz");
    expect(probeUrl(docker("bridge", null), onNet)).toBe("http://172.17.0.3:8080/healthz");
  });

  it("falls back to the container name when Docker reports no address on that network", () => {
    expect(probeUrl(docker("other-net", null), onNet)).toBe("http://galaxy-game-g1:8080/healthz");
    expect(probeUrl(docker("galaxy-net", null), { ...onNet, networkAddresses: {} })).toBe("http://galaxy-game-g1:8080/healthz");
  });

  it("asks the runtime, whatever it is, and adds only the engine's health path", () => {
    const pods = { probeAddress: (e: { name: string }) => (e.name === "pending" ? null : `10.244.1.9:8080`) };
    expect(probeUrl(pods, onNet)).toBe("http://10.244.1.9:8080/healthz");
    expect(probeUrl(pods, { ...onNet, name: "pending" })).toBeNull();
  });
});
