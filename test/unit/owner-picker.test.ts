/**
 * The owner rule of src/crd/owner.ts and the ignored object's status
 * (src/crd/conflictStatus.ts), pure, with an in-memory owner registry in
 * place of the game_owners table (test/integration/owners-store.test.ts
 * checks the SQL, test/integration/tenancy-k8s.test.ts the whole app).
 */
import { describe, expect, it } from "vitest";
import { FINALIZER, type GameRuntimeObject } from "../../src/crd/api.js";
import { conflictStatus } from "../../src/crd/conflictStatus.js";
import { OwnerPicker, type OwnerRef } from "../../src/crd/owner.js";
import { createLogger } from "../../src/log.js";
import type { GameOwner, GameOwners, KubeClaim } from "../../src/model/owner.js";

const logger = createLogger("silent", "test-owner");

function obj(namespace: string, opts: { adopted?: boolean; uid?: string; created?: string } = {}): GameRuntimeObject {
  return {
    apiVersion: "galaxy.io/v1alpha1",
    kind: "GameRuntime",
    metadata: { name: "g", namespace, uid: opts.uid ?? `uid-${namespace}`, creationTimestamp: (opts.created ?? "2026-01-01T00:00:00Z") as unknown as Date, finalizers: opts.adopted ? [FINALIZER] : [], generation: 1 },
    spec: { gameId: "g", imageRef: "galaxy/engine:1.0.0" },
  };
}

/** The SQL's rule (ownerSql.ts claimForKube) in memory, counting calls. */
class MemoryOwners implements GameOwners {
  readonly rows = new Map<string, GameOwner>();
  calls = 0;
  async get(gameId: string) {
    this.calls++;
    return this.rows.get(gameId) ?? null;
  }
  async claimForKube(gameId: string, c: KubeClaim) {
    this.calls++;
    const cur = this.rows.get(gameId);
    if (!cur || (cur.kind === "kube" && cur.namespace === c.namespace) || (cur.kind === "legacy" && c.adopted)) {
      this.rows.set(gameId, { gameId, kind: "kube", namespace: c.namespace, uid: c.uid, claimedAt: cur?.claimedAt ?? new Date(0) });
    }
    return this.rows.get(gameId)!;
  }
}

function picker(registry: GameOwners) {
  const p = new OwnerPicker(logger, registry);
  const conflicts: string[] = [];
  const ignored: string[] = [];
  p.onConflict = (_g, owner, o) => conflicts.push(`${o.metadata.namespace}->${owner.kind}:${owner.namespace}:${owner.present}`);
  p.onIgnored = (_g, _owner, o) => ignored.push(o.metadata.namespace);
  return { p, conflicts, ignored };
}

describe("OwnerPicker with a recorded owner", () => {
  it("the first claimer keeps the id after its object is gone; the newcomer is ignored, told once, reported on every pick", async () => {
    const reg = new MemoryOwners();
    const { p, conflicts, ignored } = picker(reg);
    const a = obj("games-a");
    await p.claim("g", [a]);
    expect(p.pick("g", [a])).toBe(a);
    const b = obj("games-b", { created: "2025-01-01T00:00:00Z" });
    // Older and alone: without a record it would win (the in-memory rule); with one it never does.
    await p.claim("g", [b]);
    expect(p.pick("g", [b])).toBeNull();
    expect(p.pick("g", [b])).toBeNull();
    expect(conflicts).toEqual(["games-b->kube:games-a:false"]);
    expect(ignored).toEqual(["games-b", "games-b"]);
    expect(reg.rows.get("g")).toMatchObject({ namespace: "games-a", uid: "uid-games-a" });
    // A fresh picker (a restart, another replica) loads the same owner.
    const other = picker(reg);
    await other.p.load("g");
    expect(other.p.pick("g", [b])).toBeNull();
    expect(() => other.p.assertCreatable("g", "games-c")).toThrow(expect.objectContaining({ code: "conflict", message: expect.stringContaining("namespace games-a") }));
    expect(() => other.p.assertCreatable("g", "games-a")).not.toThrow();
  });

  it("the owner's namespace re-creating the object is the same owner (uid updated); a claim already recorded costs no query", async () => {
    const reg = new MemoryOwners();
    const { p } = picker(reg);
    await p.claim("g", [obj("games-a", { uid: "u1" })]);
    const calls = reg.calls;
    await p.claim("g", [obj("games-a", { uid: "u1" })]);
    expect(reg.calls).toBe(calls);
    const again = obj("games-a", { uid: "u2" });
    await p.claim("g", [again]);
    expect(reg.rows.get("g")?.uid).toBe("u2");
    expect(p.pick("g", [again, obj("games-b")])).toBe(again);
  });

  it("a legacy game goes only to the object an older build adopted", async () => {
    const reg = new MemoryOwners();
    reg.rows.set("g", { gameId: "g", kind: "legacy", namespace: null, uid: null, claimedAt: new Date(0) });
    const { p, conflicts } = picker(reg);
    const newcomer = obj("games-b");
    await p.claim("g", [newcomer]);
    expect(p.pick("g", [newcomer])).toBeNull();
    expect(conflicts).toEqual(["games-b->legacy:null:false"]);
    expect(() => p.assertCreatable("g", "games-c")).not.toThrow();
    const adopted = obj("games-a", { adopted: true });
    await p.claim("g", [newcomer, adopted]);
    expect(reg.rows.get("g")).toMatchObject({ kind: "kube", namespace: "games-a" });
    expect(p.pick("g", [newcomer, adopted])).toBe(adopted);
  });
});

describe("conflictStatus", () => {
  it("names the owner, keeps lastTransitionTime while the conflict holds", () => {
    const owner: OwnerRef = { kind: "kube", namespace: "games-a", present: false };
    const b = obj("games-b");
    const first = conflictStatus(b, owner, new Date("2026-01-01T00:00:00Z"));
    expect(first.phase).toBe("failed");
    expect(first.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([["Conflict", "True", "GameIdOwnedElsewhere"], ["Ready", "False", "Conflict"]]);
    expect(first.conditions?.[0]?.message).toMatch(/namespace games-a.*stays with that owner after its deletion/);
    const later = conflictStatus({ ...b, status: first }, owner, new Date("2026-01-01T01:00:00Z"));
    expect(later.conditions?.map((c) => c.lastTransitionTime)).toEqual(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]);
  });
});
