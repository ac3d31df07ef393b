/**
 * The planner's fleet holds (src/controller/planFleet.ts), pure: a patch to a
 * quarantined image is held with container_start_failed naming the
 * quarantine; with canaries on, a patch to an unproven image waits (a
 * requeue, not a failure) while the canary slots are taken.
 */
import { describe, expect, it } from "vitest";
import { CANARY_RECHECK_MS, type FleetView } from "../../src/controller/planFleet.js";
import { plan, type PlannerInput } from "../../src/controller/planner.js";
import type { Quarantine } from "../../src/controller/quarantine.js";
import type { Declaration } from "../../src/model/declaration.js";
import { DOCKER_VERBS, observedContainer, PLANNER_SETTINGS, POD_VERBS, runtimeRecord } from "../helpers/fixtures.js";

const NOW = new Date("2026-11-23T12:00:00Z");
const OLD = "galaxy/engine:1.0.0";
const BAD = "galaxy/engine:1.0.1";
const FIXED = "galaxy/engine:1.0.2";

const quarantine: Quarantine = { imageRef: BAD, since: new Date("2026-11-23T11:58:00Z"), rollbacks: 3, gameId: "g7", games: ["g5", "g6", "g7"] };

function fleet(over: Partial<FleetView> & { provenImages?: string[]; flying?: Record<string, string[]> } = {}): FleetView {
  const { provenImages = [], flying = {}, ...rest } = over;
  return {
    quarantined: new Map(),
    canaries: 0,
    proven: (image) => provenImages.includes(image),
    inFlight: (image) => new Set(flying[image] ?? []),
    ...rest,
  };
}

function decl(imageRef: string): Declaration {
  return { gameId: "g1", imageRef, desiredState: "running", restartPolicy: "on-failure", generation: 3, opId: "op-1", opSource: "sql", createdAt: NOW, updatedAt: NOW };
}

function patchInput(target: string, f: FleetView, over: Partial<PlannerInput> = {}): PlannerInput {
  return {
    gameId: "g1",
    declaration: decl(target),
    declarationError: null,
    containers: [observedContainer({ imageRef: OLD }, new Date(NOW.getTime() - 3_600_000))],
    record: runtimeRecord({ observedGeneration: 2, currentImageRef: OLD }, NOW),
    health: null,
    now: NOW,
    settings: PLANNER_SETTINGS,
    verbs: DOCKER_VERBS,
    fleet: f,
    ...over,
  };
}

describe("planner: quarantine hold", () => {
  const quarantined = fleet({ quarantined: new Map([[BAD, quarantine]]) });

  it("a patch to a quarantined image is held: nothing touched, container_start_failed naming the quarantine and how to lift it", () => {
    const p = plan(patchInput(BAD, quarantined));
    expect(p.actions).toEqual([]);
    expect(p.gate).toBeNull();
    expect(p.kind).toBe("patch");
    expect(p.converges).toBe(false);
    expect(p.hold?.code).toBe("container_start_failed");
    expect(p.hold?.message).toContain(`image ${BAD} is quarantined`);
    expect(p.hold?.message).toContain("3 patches to it were rolled back (games g5, g6, g7)");
    expect(p.hold?.message).toContain(`rtmctl quarantine lift ${BAD}`);
    expect(p.reason).toContain("held by a quarantine");
  });

  it("held again once recorded: no new operation-log row (kind null), still held", () => {
    const first = plan(patchInput(BAD, quarantined));
    const record = runtimeRecord({ observedGeneration: 2, currentImageRef: OLD, lastErrorCode: "container_start_failed", lastErrorMessage: first.hold!.message, lastErrorGeneration: 3 }, NOW);
    const p = plan(patchInput(BAD, quarantined, { record }));
    expect(p.kind).toBeNull();
    expect(p.hold?.code).toBe("container_start_failed");
    expect(p.actions).toEqual([]);
  });

  it("another image is never held by an old quarantine", () => {
    const p = plan(patchInput(FIXED, quarantined));
    expect(p.kind).toBe("patch");
    expect(p.hold).toBeNull();
    expect(p.actions.map((a) => a.type)).toEqual(["ensureImage", "stop", "remove", "create", "start"]);
  });

  it("a Pod's in-place patch is held the same way", () => {
    const p = plan(patchInput(BAD, quarantined, { verbs: POD_VERBS }));
    expect(p.actions).toEqual([]);
    expect(p.hold?.code).toBe("container_start_failed");
  });

  it("an engine that vanished mid-patch is not recreated on the quarantined image", () => {
    const p = plan(patchInput(BAD, quarantined, { containers: [] }));
    expect(p.actions).toEqual([]);
    expect(p.hold?.code).toBe("container_start_failed");
  });

  it("a steady game running the image is left alone (a quarantine refuses patches, it does not stop engines)", () => {
    const running = observedContainer({ imageRef: BAD }, new Date(NOW.getTime() - 3_600_000));
    const p = plan(patchInput(BAD, quarantined, { containers: [running], record: runtimeRecord({ observedGeneration: 3, currentImageRef: BAD }, NOW) }));
    expect(p.hold).toBeNull();
    expect(p.actions).toEqual([]);
  });
});

describe("planner: canaries", () => {
  it("off (0): every patch goes ahead", () => {
    const p = plan(patchInput(FIXED, fleet({ canaries: 0, flying: { [FIXED]: ["g2", "g3"] } })));
    expect(p.kind).toBe("patch");
    expect(p.gate).not.toBeNull();
  });

  it("a free canary slot on an unproven image: this game is a canary, patched and gated", () => {
    const p = plan(patchInput(FIXED, fleet({ canaries: 2, flying: { [FIXED]: ["g2"] } })));
    expect(p.kind).toBe("patch");
    expect(p.gate?.rollbackTo).toBe(OLD);
    expect(p.requeueAfterMs).toBeNull();
  });

  it("slots taken on an unproven image: held as a requeue (no failure, no hold, nothing touched), naming the canaries", () => {
    const p = plan(patchInput(FIXED, fleet({ canaries: 2, flying: { [FIXED]: ["g3", "g2"] } })));
    expect(p.actions).toEqual([]);
    expect(p.kind).toBeNull();
    expect(p.hold).toBeNull();
    expect(p.gate).toBeNull();
    expect(p.converges).toBe(false);
    expect(p.requeueAfterMs).toBe(CANARY_RECHECK_MS);
    expect(p.reason).toContain("waiting for canaries");
    expect(p.reason).toContain("g2, g3");
  });

  it("the canary itself is never held by its own slot", () => {
    const p = plan(patchInput(FIXED, fleet({ canaries: 1, flying: { [FIXED]: ["g1"] } })));
    expect(p.kind).toBe("patch");
  });

  it("once a canary passed (the image is proven), the rest go ahead", () => {
    const p = plan(patchInput(FIXED, fleet({ canaries: 1, flying: { [FIXED]: ["g2"] }, provenImages: [FIXED] })));
    expect(p.kind).toBe("patch");
    expect(p.gate).not.toBeNull();
  });

  it("canaries of another image take no slot of this one", () => {
    const p = plan(patchInput(FIXED, fleet({ canaries: 1, flying: { [BAD]: ["g2"] } })));
    expect(p.kind).toBe("patch");
  });

  it("a quarantine wins over a canary slot", () => {
    const p = plan(patchInput(BAD, fleet({ canaries: 1, quarantined: new Map([[BAD, quarantine]]) })));
    expect(p.hold?.code).toBe("container_start_failed");
    expect(p.actions).toEqual([]);
  });
});
