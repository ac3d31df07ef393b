import { describe, expect, it } from "vitest";
import type { TrackedHealth } from "../../src/controller/health.js";
import { isSteady, type SteadyInput } from "../../src/controller/resyncTriage.js";
import { observedContainer, runtimeRecord } from "../helpers/fixtures.js";

const healthy: TrackedHealth = { containerId: "c1", consecutiveFailures: 0, healthy: true, lastProbeAt: new Date(), healthySince: new Date() };

/** A converged running game: declaration generation 1, its record, its one container, healthy. */
function steady(over: Partial<SteadyInput> = {}): SteadyInput {
  return { generation: 1, record: runtimeRecord(), containers: [observedContainer()], health: healthy, ...over };
}

describe("periodic resync triage", () => {
  it("skips a running game whose declaration, record, container and health agree", () => {
    expect(isSteady(steady())).toBe(true);
    expect(isSteady(steady({ health: null }))).toBe(true);
  });

  const queued: [string, Partial<SteadyInput>][] = [
    ["no declaration (an orphan)", { generation: undefined }],
    ["no record yet", { record: undefined }],
    ["a newer declaration", { generation: 2 }],
    ["a stopped record", { record: runtimeRecord({ status: "stopped" }) }],
    ["a remembered error", { record: runtimeRecord({ lastErrorCode: "image_pull_failed", lastErrorMessage: "x", lastErrorGeneration: 1 }) }],
    ["a rollout in progress", { record: runtimeRecord({ rolloutStartedAt: new Date() }) }],
    ["a degraded runtime", { record: runtimeRecord({ degraded: true }) }],
    ["a held generation", { record: runtimeRecord({ heldGeneration: 1 }) }],
    ["restarts to forgive", { record: runtimeRecord({ restartCount: 2 }) }],
    ["no container", { containers: [] }],
    ["a duplicate container", { containers: [observedContainer(), observedContainer({ id: "c2" })] }],
    ["an exited container (a missed die event)", { containers: [observedContainer({ phase: "exited", exitCode: 1 })] }],
    ["a container the record does not name", { containers: [observedContainer({ id: "c9" })] }],
    ["a container of an older generation", { containers: [observedContainer({ generation: 0 })] }],
    ["a container on another image", { containers: [observedContainer({ imageRef: "galaxy/engine:1.0.1" })] }],
    ["health the record has not seen yet", { record: runtimeRecord({ health: "unknown" }) }],
    ["a failing probe", { health: { ...healthy, healthy: false, consecutiveFailures: 1, healthySince: null } }],
  ];
  it.each(queued)("queues %s", (_, over) => {
    expect(isSteady(steady(over))).toBe(false);
  });
});
