/**
 * What the status writer computes validates against the CRD's own status
 * schema (deploy/crd/gameruntime.yaml, through ajv): every phase, every
 * condition, every error code's reason, with and without a container, while
 * deleting. A field or reason the schema does not know fails here, not in a
 * cluster (which would reject or prune it).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { reasonOf, type GameRuntimeObject, type GameRuntimeStatus } from "../../src/crd/api.js";
import type { StructuralSchema } from "../../src/crd/schema.js";
import { computeStatus } from "../../src/crd/statusWriter.js";
import { ERROR_CODES, RtmError } from "../../src/model/errors.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { runtimeRecord } from "../helpers/fixtures.js";
import { ajvValidator } from "../k8s/crdAjv.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

async function statusValidator() {
  const crd = parse(await readFile(path.join(root, "deploy/crd/gameruntime.yaml"), "utf8")) as {
    spec: { versions: { schema: { openAPIV3Schema: { properties: { status: StructuralSchema } } } }[] };
  };
  return ajvValidator(crd.spec.versions[0]!.schema.openAPIV3Schema.properties.status);
}

/** What the object holds after the writer's merge patch: null fields removed. */
function stored(status: GameRuntimeStatus): Record<string, unknown> {
  return Object.fromEntries(Object.entries(status).filter(([, v]) => v !== null && v !== undefined));
}

function object(over: Partial<GameRuntimeObject["metadata"]> = {}, spec: Record<string, unknown> = {}): GameRuntimeObject {
  return {
    apiVersion: "galaxy.io/v1alpha1",
    kind: "GameRuntime",
    metadata: { name: "g1", namespace: "games", generation: 1, annotations: { "galaxy.io/generation-base": "0" }, ...over },
    spec: { gameId: "g1", imageRef: "galaxy/engine:1.0.0", ...spec },
  };
}

const now = new Date("2030-01-01T00:00:00.123Z");

describe("computeStatus output against the CRD status schema", () => {
  it("every case validates", async () => {
    const validate = await statusValidator();
    const none = { currentContainerId: null, currentImageRef: null, engineEndpoint: null };
    const cases: [string, GameRuntimeObject, RuntimeRecord, RtmError | null][] = [
      ["running, healthy", object(), runtimeRecord(), null],
      ["running, health not probed", object(), runtimeRecord({ health: "unknown" }), null],
      ["running, unhealthy", object(), runtimeRecord({ health: "unhealthy", consecutiveProbeFailures: 4 }), null],
      ["rolling out", object(), runtimeRecord({ rolloutStartedAt: now }), null],
      ["behind a generation", object({ generation: 3 }), runtimeRecord({ observedGeneration: 1 }), null],
      ["stopped", object({}, { desiredState: "stopped" }), runtimeRecord({ status: "stopped", ...none, health: "unknown" }), null],
      ["removed", object({}, { desiredState: "removed" }), runtimeRecord({ status: "removed", ...none, health: "unknown" }), null],
      ["declared stopped, never started", object({}, { desiredState: "stopped" }), runtimeRecord({ status: "removed", ...none }), null],
      ["rollback failed", object(), runtimeRecord({ degraded: true, lastErrorMessage: "rollback to 1.0.0 failed" }), null],
      ["deleting", object({ deletionTimestamp: now, generation: 2 }), runtimeRecord(), null],
      ["invalid spec", object({}, { imageRef: "Not A Ref" }), runtimeRecord({ status: "removed", ...none }), new RtmError("start_config_invalid", "bad spec")],
      ["generation base applies", object({ annotations: { "galaxy.io/generation-base": "10" } }), runtimeRecord({ observedGeneration: 11, restartCount: 7 }), null],
      ["a very long message", object(), runtimeRecord({ lastErrorCode: "docker_unavailable", lastErrorMessage: "x".repeat(100_000), lastErrorGeneration: null }), null],
    ];
    for (const code of ERROR_CODES) {
      cases.push([`recorded failure ${code}`, object(), runtimeRecord({ lastErrorCode: code, lastErrorMessage: `${code} happened`, lastErrorGeneration: 1 }), null]);
      cases.push([`failure passed in ${code}`, object(), runtimeRecord(), new RtmError(code, "now")]);
    }
    for (const [name, obj, record, error] of cases) {
      const status = computeStatus(obj, record, error, now);
      const ok = validate(stored(status));
      expect(validate.errors ?? [], name).toEqual([]);
      expect(ok, name).toBe(true);
      // A second pass over the written status (lastTransitionTime carried over) validates too.
      expect(validate(stored(computeStatus({ ...obj, status: stored(status) as GameRuntimeStatus }, record, error, now))), `${name} (again)`).toBe(true);
    }
  });

  it("reasons are CamelCase and the code leads the message", () => {
    expect(ERROR_CODES.map(reasonOf)).toContain("ImagePullFailed");
    for (const code of ERROR_CODES) expect(reasonOf(code), code).toMatch(/^[A-Z][A-Za-z0-9]*$/);
    const status = computeStatus(object(), runtimeRecord({ lastErrorCode: "semver_patch_only", lastErrorMessage: "1.0 -> 2.0", lastErrorGeneration: 1 }), null, now);
    const ready = status.conditions?.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "SemverPatchOnly", message: "semver_patch_only: 1.0 -> 2.0" });
  });

  it("a runtime declared stopped that never ran is Ready, not reconciling forever", () => {
    const none = { currentContainerId: null, currentImageRef: null, engineEndpoint: null };
    const status = computeStatus(object({}, { desiredState: "stopped" }), runtimeRecord({ status: "removed", ...none, health: "unknown" }), null, now);
    expect(status.conditions?.find((c) => c.type === "Ready")).toMatchObject({ status: "True", reason: "Stopped" });
  });

  it("the validator is not vacuous", async () => {
    const validate = await statusValidator();
    const good = stored(computeStatus(object(), runtimeRecord(), null, now));
    expect(validate(good)).toBe(true);
    expect(validate({ ...good, phase: "paused" })).toBe(false);
    expect(validate({ ...good, unknownField: 1 })).toBe(false);
    expect(validate({ ...good, containerId: null })).toBe(false);
    const conditions = (good.conditions as { reason: string }[]).map((c) => ({ ...c, reason: "has space" }));
    expect(validate({ ...good, conditions })).toBe(false);
  });
});

describe("a reason the runtime named", () => {
  it("an engine problem the kubelet or scheduler named (CreateContainerConfigError, Unschedulable) is the conditions' reason, the code leads the message", async () => {
    const validate = await statusValidator();
    const record = runtimeRecord({ lastErrorCode: "container_start_failed", lastErrorMessage: 'CreateContainerConfigError: secret "x" not found', lastErrorGeneration: 1 });
    const status = computeStatus(object(), record, null, now);
    expect(validate(stored(status))).toBe(true);
    const ready = status.conditions?.find((c) => c.type === "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "CreateContainerConfigError", message: 'container_start_failed: CreateContainerConfigError: secret "x" not found' });
    const unschedulable = runtimeRecord({ lastErrorCode: "service_unavailable", lastErrorMessage: "Unschedulable: 0/1 nodes are available", lastErrorGeneration: 1 });
    expect(computeStatus(object(), unschedulable, null, now).conditions?.find((c) => c.type === "Degraded")).toMatchObject({ status: "True", reason: "Unschedulable" });
  });
});
