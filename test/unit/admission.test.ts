import { describe, expect, it } from "vitest";
import { resolveResources, type ExecutorSettings } from "../../src/controller/actions.js";
import { plan, type PlannerInput } from "../../src/controller/planner.js";
import { imageRefused, normaliseAllowlist, resourcesBelowFloor, resourcesRefused } from "../../src/model/admission.js";
import { RuntimeSpecSchema, type Declaration } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";
import { DOCKER_VERBS, observedContainer, PLANNER_SETTINGS, runtimeRecord } from "../helpers/fixtures.js";

const NOW = new Date("2026-11-23T12:00:00Z");
const CEILINGS = { cpus: 8, memoryBytes: 16 * 1024 ** 3, pidsLimit: 4096 };

function decl(over: Partial<Declaration> = {}): Declaration {
  return {
    gameId: "g1",
    imageRef: "galaxy/engine:1.0.0",
    desiredState: "running",
    restartPolicy: "on-failure",
    generation: 2,
    opId: null,
    opSource: "reconcile",
    createdAt: NOW,
    updatedAt: NOW,
    ...over,
  };
}

const input = (over: Partial<PlannerInput>): PlannerInput => ({
  gameId: "g1",
  declaration: null,
  declarationError: null,
  containers: [],
  record: null,
  health: null,
  now: NOW,
  settings: { ...PLANNER_SETTINGS, imageAllowlist: normaliseAllowlist(["galaxy/engine", "registry.example.com:5000/team"]), resourceCeilings: CEILINGS },
  verbs: DOCKER_VERBS,
  ...over,
});

describe("image allow-list", () => {
  it("matches registry or repository prefixes on path boundaries only", () => {
    const list = normaliseAllowlist(["galaxy/eng", "registry.example.com", "docker.io/library/nginx"]);
    expect(imageRefused("galaxy/eng:1.0.0", list)).toBeNull();
    expect(imageRefused("galaxy/eng/sub:1.0.0", list)).toBeNull();
    expect(imageRefused("docker.io/galaxy/eng:1.0.0", list)).toBeNull();
    expect(imageRefused("galaxy/engine-evil:1.0.0", list)).toMatch(/RTMANAGER_IMAGE_ALLOWLIST/);
    expect(imageRefused("registry.example.com/x/y:2.0.0", list)).toBeNull();
    expect(imageRefused("registry.example.com.evil.io/x:2.0.0", list)).not.toBeNull();
    expect(imageRefused("nginx:1.27.0", list)).toBeNull();
    expect(imageRefused("other/nginx:1.27.0", list)).not.toBeNull();
    expect(imageRefused("anything:1.0.0", [])).toBeNull();
  });

  it("refuses entries that are not prefixes", () => {
    expect(() => normaliseAllowlist(["galaxy/engine:1.0.0"])).toThrow(/tag/);
    expect(() => normaliseAllowlist(["Galaxy/Engine"])).toThrow();
  });
});

describe("resource ceilings", () => {
  it("names every value past its ceiling", () => {
    expect(resourcesRefused({ cpus: 8, memoryBytes: CEILINGS.memoryBytes, pidsLimit: 4096 }, CEILINGS, "x")).toBeNull();
    const over = resourcesRefused({ cpus: 9, pidsLimit: 5000 }, CEILINGS, "the labels");
    expect(over).toContain("RTMANAGER_MAX_CPUS");
    expect(over).toContain("RTMANAGER_MAX_PIDS_LIMIT");
  });

  it("the executor refuses image labels past a ceiling with start_config_invalid (permanent)", () => {
    const settings: ExecutorSettings = { imagePullPolicy: "never", stopTimeoutMs: 1000, stateRoot: "/tmp", defaultCpus: 1, defaultMemoryBytes: 512 * 1024 ** 2, defaultPidsLimit: 512, resourceCeilings: CEILINGS };
    expect(() => resolveResources({ "com.galaxy.memory": "512g" }, decl(), settings)).toThrow(RtmError);
    try {
      resolveResources({ "com.galaxy.memory": "512g" }, decl(), settings);
    } catch (err) {
      expect((err as RtmError).code).toBe("start_config_invalid");
      expect((err as RtmError).message).toContain("RTMANAGER_MAX_MEMORY");
    }
    expect(resolveResources({ "com.galaxy.memory": "1g" }, decl(), settings).memoryBytes).toBe(1024 ** 3);
  });
});

describe("resource floors", () => {
  const settings: ExecutorSettings = { imagePullPolicy: "never", stopTimeoutMs: 1000, stateRoot: "/tmp", defaultCpus: 1, defaultMemoryBytes: 512 * 1024 ** 2, defaultPidsLimit: 512, resourceCeilings: CEILINGS };
  const codeOf = (labels: Record<string, string>, d = decl()): string | null => {
    try {
      resolveResources(labels, d, settings);
      return null;
    } catch (err) {
      return (err as RtmError).code;
    }
  };

  it("refuses a label that would round to no limit, instead of dropping it for the declaration's or the default", () => {
    // 1e-10 CPUs is Math.round(0.1) = 0 nano-CPUs: "unlimited" to Docker and the kubelet.
    expect(codeOf({ "com.galaxy.cpu_quota": "1e-10" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.cpu_quota": "0" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.cpu_quota": "-1" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.cpu_quota": "lots" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.memory": "1k" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.memory": "a lot" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.pids_limit": "0" })).toBe("start_config_invalid");
    expect(codeOf({ "com.galaxy.pids_limit": "1.5" })).toBe("start_config_invalid");
    expect(resourcesBelowFloor({ cpus: 1e-10 }, "x")).toContain("cpus");
  });

  it("takes a label at the floor, and an empty label as no label", () => {
    expect(resolveResources({ "com.galaxy.cpu_quota": "0.01" }, decl(), settings).cpus).toBe(0.01);
    expect(resolveResources({ "com.galaxy.cpu_quota": "" }, decl({ resources: { cpus: 2 } }), settings).cpus).toBe(2);
    expect(resolveResources({ "com.galaxy.memory": "6m", "com.galaxy.pids_limit": "16" }, decl(), settings)).toMatchObject({ memoryBytes: 6 * 1024 ** 2, pidsLimit: 16 });
  });

  it("the one schema refuses a declared limit under its floor (start_config_invalid when it reaches the loop)", () => {
    const parse = (resources: Record<string, unknown>) => RuntimeSpecSchema.safeParse({ gameId: "g1", imageRef: "galaxy/engine:1.0.0", resources }).success;
    expect(parse({ cpus: 1e-10 })).toBe(false);
    expect(parse({ cpus: 0.009 })).toBe(false);
    expect(parse({ cpus: 0.01 })).toBe(true);
    expect(parse({ memory: "6291455" })).toBe(false);
    expect(parse({ memory: "6m" })).toBe(true);
    expect(parse({ pidsLimit: 15 })).toBe(false);
    expect(parse({ pidsLimit: 16 })).toBe(true);
  });
});

describe("planner hold", () => {
  it("a declaration (written by SQL or kubectl) of an image outside the allow-list is held with start_config_invalid, nothing pulled", () => {
    const p = plan(input({ declaration: decl({ imageRef: "galaxy/engine-evil:1.0.0" }) }));
    expect(p.actions).toEqual([]);
    expect(p.hold?.code).toBe("start_config_invalid");
    expect(p.converges).toBe(false);
  });

  it("a declaration asking for more than a ceiling is held; a running engine of the previous generation is left alone", () => {
    const running = observedContainer({}, new Date(NOW.getTime() - 3_600_000));
    const record = runtimeRecord({ observedGeneration: 1 }, NOW);
    const p = plan(input({ declaration: decl({ resources: { memory: "64g" } }), containers: [running], record }));
    expect(p.actions).toEqual([]);
    expect(p.hold).toMatchObject({ code: "start_config_invalid" });
    expect(p.hold?.message).toContain("RTMANAGER_MAX_MEMORY");
  });

  it("an allowed declaration within the ceilings plans a start; a stop of a refused image is not held", () => {
    expect(plan(input({ declaration: decl() })).kind).toBe("start");
    expect(plan(input({ declaration: decl({ imageRef: "evil/x:1.0.0", desiredState: "stopped" }) })).hold).toBeNull();
  });
});
