/**
 * Kubernetes quantities (issue 22 part 8). The parser follows apimachinery's
 * resource.ParseQuantity (quantity.go) and Quantity.Value/MilliValue (round up);
 * the expectations are what `resource.MustParse(x).Value()` / `.MilliValue()`
 * give upstream. The GameRuntime object carries quantities, the loop the
 * contract's form: src/crd/resources.ts converts at the object boundary.
 */
import { describe, expect, it } from "vitest";
import { ANNOTATION_OP_GENERATION, type GameRuntimeObject } from "../../src/crd/api.js";
import { declarationOf } from "../../src/crd/gameRuntimeMapping.js";
import { computeStatus } from "../../src/crd/statusWriter.js";
import { cpusFromQuantity, memoryFromQuantity, specForObject, specFromObject } from "../../src/crd/resources.js";
import { canonicalSpec } from "../../src/crd/gameRuntimeMapping.js";
import { isRtmError } from "../../src/model/errors.js";
import { milliValue, parseQuantity, QUANTITY_PATTERN, wholeValue } from "../../src/model/quantity.js";
import { RuntimeSpecSchema } from "../../src/model/declaration.js";

const value = (t: string) => {
  const q = parseQuantity(t);
  return q && wholeValue(q);
};
const milli = (t: string) => {
  const q = parseQuantity(t);
  return q && milliValue(q);
};

describe("parseQuantity (apimachinery ParseQuantity rules)", () => {
  it.each([
    ["0", 0n],
    ["1", 1n],
    ["1Ki", 1024n],
    ["512Mi", 512n * 1024n ** 2n],
    ["1Gi", 1024n ** 3n],
    ["1.5Gi", 1536n * 1024n ** 2n],
    ["2Ti", 2n * 1024n ** 4n],
    ["1Ei", 1024n ** 6n],
    ["1k", 1000n],
    ["64M", 64_000_000n],
    ["1G", 1_000_000_000n],
    ["1E", 10n ** 18n],
    ["1e3", 1000n],
    ["1E3", 1000n],
    ["1e+3", 1000n],
    ["+5", 5n],
    ["5.", 5n],
    [".5", 1n], // Value rounds up
    ["1.5", 2n],
    ["100m", 1n],
    ["0010", 10n],
  ])("%s has Value() %s", (text, expected) => {
    expect(value(text)).toBe(expected);
  });

  it.each([
    ["500m", 500n],
    ["0.5", 500n],
    ["2", 2000n],
    ["100m", 100n],
    ["1.5m", 2n], // MilliValue rounds up
    ["250u", 1n],
    ["1n", 1n],
    ["1e-3", 1n],
    ["0.1", 100n],
  ])("%s has MilliValue() %s", (text, expected) => {
    expect(milli(text)).toBe(expected);
  });

  it.each(["", ".", "1.1.1", "1Kii", "1ki", "1KI", "Mi", "1 Mi", " 1", "1i", "1b", "1e", "1e1.5", "0x10", "1,5", "-1", "-1Gi", "1e99"])("%s is refused", (text) => {
    expect(parseQuantity(text)).toBeNull();
  });

  it("accepts exactly what controller-gen's Quantity pattern accepts (negatives aside: no resource is negative)", () => {
    const pattern = new RegExp(QUANTITY_PATTERN);
    for (const t of ["512Mi", "1Gi", "500m", "1.5", ".5", "5.", "1e3", "2E", "100u", "1n"]) {
      expect([t, pattern.test(t)]).toEqual([t, true]);
      expect(parseQuantity(t), t).not.toBeNull();
    }
    for (const t of ["1.1.1", "1Kii", "1ki", "Mi", "1 Mi"]) expect([t, pattern.test(t)]).toEqual([t, false]);
  });
});

describe("GameRuntime resources: quantities in the object, the contract's form in the loop", () => {
  it("memory: binary units keep their unit, other quantities the largest exact unit", () => {
    expect(memoryFromQuantity("512Mi")).toEqual({ ok: true, value: "512m" });
    expect(memoryFromQuantity("1Gi")).toEqual({ ok: true, value: "1g" });
    expect(memoryFromQuantity("1024Mi")).toEqual({ ok: true, value: "1024m" });
    expect(memoryFromQuantity("64M")).toEqual({ ok: true, value: "62500k" });
    expect(memoryFromQuantity("1e7")).toEqual({ ok: true, value: "10000000" });
    expect(memoryFromQuantity(536870912)).toEqual({ ok: true, value: "536870912" });
    expect(memoryFromQuantity("1.5Gi")).toEqual({ ok: true, value: "1536m" });
  });

  it("memory: 512m (milli-bytes to Kubernetes), 1g, fractions and sizes under 6Mi are refused with the spelling to use", () => {
    expect(memoryFromQuantity("512m")).toEqual({ ok: false, problem: expect.stringMatching(/"512m" is not a Kubernetes size \(m is milli there\): write 512Mi/) });
    expect(memoryFromQuantity("1g")).toEqual({ ok: false, problem: expect.stringMatching(/write 1Gi/) });
    expect(memoryFromQuantity("1.5")).toMatchObject({ ok: false, problem: expect.stringMatching(/whole number of bytes/) });
    expect(memoryFromQuantity("5Mi")).toMatchObject({ ok: false, problem: expect.stringMatching(/below the minimum of 6Mi/) });
  });

  it("cpus: 500m, \"0.5\" and 0.5 are all half a CPU", () => {
    expect([cpusFromQuantity("500m"), cpusFromQuantity("0.5"), cpusFromQuantity(0.5), cpusFromQuantity(2)]).toEqual([
      { ok: true, value: 0.5 },
      { ok: true, value: 0.5 },
      { ok: true, value: 0.5 },
      { ok: true, value: 2 },
    ]);
    expect(cpusFromQuantity("half")).toMatchObject({ ok: false });
  });

  it("what the REST writer puts in an object reads back as exactly what was declared", () => {
    for (const resources of [{ memory: "512m", cpus: 0.5 }, { memory: "1024m", cpus: 2 }, { memory: "1g", cpus: 0.25 }, { memory: "786432k" }, { memory: "67108864", cpus: 1.5 }]) {
      const spec = RuntimeSpecSchema.parse({ gameId: "g1", imageRef: "galaxy/engine:1.0.0", resources });
      const object = specForObject(canonicalSpec(spec));
      expect((object.resources as { memory?: string }).memory ?? "").not.toMatch(/[mg]$/);
      const back = specFromObject(JSON.parse(JSON.stringify(object)));
      expect(back.ok && RuntimeSpecSchema.parse(back.value).resources).toEqual(spec.resources);
    }
  });
});

function object(resources: Record<string, unknown>, annotations: Record<string, string> = {}): GameRuntimeObject {
  return {
    apiVersion: "galaxy.io/v1alpha1",
    kind: "GameRuntime",
    metadata: { name: "g1", namespace: "games", generation: 3, uid: "u1", annotations },
    spec: { gameId: "g1", imageRef: "galaxy/engine:1.0.0", resources },
  } as GameRuntimeObject;
}

describe("declarationOf a GameRuntime with quantities", () => {
  it("memory: 512Mi and cpus: 500m declare 512m and 0.5", () => {
    const d = declarationOf(object({ memory: "512Mi", cpus: "500m" }));
    expect(d.resources).toEqual({ memory: "512m", cpus: 0.5 });
  });

  it("kubectl's memory: 512m is start_config_invalid naming 512Mi; the status shows no desired state for it", () => {
    let err: unknown;
    try {
      declarationOf(object({ memory: "512m" }));
    } catch (e) {
      err = e;
    }
    expect(isRtmError(err) && err.code).toBe("start_config_invalid");
    expect((err as Error).message).toContain("write 512Mi");
  });

  it("an object whose generation the REST API wrote before quantities keeps its 512m as 512 MiB", () => {
    const d = declarationOf(object({ memory: "512m" }, { [ANNOTATION_OP_GENERATION]: "3" }));
    expect(d.resources).toEqual({ memory: "512m" });
    // Edited since (kubectl bumped the generation): Kubernetes' reading applies.
    expect(() => declarationOf(object({ memory: "512m" }, { [ANNOTATION_OP_GENERATION]: "2" }))).toThrow(/write 512Mi/);
  });

  it("the status writer reads the same spec: a quantity spec is running, not unknown", () => {
    const status = computeStatus(
      object({ memory: "1Gi", cpus: "1" }),
      { gameId: "g1", status: "running", health: "healthy", observedGeneration: 3, restartCount: 0 } as unknown as Parameters<typeof computeStatus>[1],
      null,
      new Date(0),
    );
    expect(status.phase).toBe("running");
  });
});
