/**
 * Unit tests fake the engine runtime with one FakeRuntime typed against the
 * port (test/helpers/fakeRuntime.ts): a cast would hide a port change from the
 * compiler, so none is allowed back.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { withContractErrors } from "../../src/controller/runtimeErrors.js";
import { DECLARATIVE_VERBS } from "../../src/model/ports.js";
import { FakeRuntime } from "../helpers/fakeRuntime.js";

const TEST_ROOT = path.resolve(import.meta.dirname, "..");

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return tsFiles(full);
    return full.endsWith(".ts") ? [full] : [];
  });
}

describe("FakeRuntime", () => {
  it("is the only runtime fake: no test casts an object to RuntimePort", () => {
    const cast = /as\s+(?:unknown|Partial<RuntimePort>)\s+as\s+RuntimePort\b/;
    const offenders = tsFiles(TEST_ROOT).filter((f) => f !== import.meta.filename && cast.test(readFileSync(f, "utf8")));
    expect(offenders.map((f) => path.relative(TEST_ROOT, f))).toEqual([]);
  });

  it("is configured by vocabulary: only a declarative fake swaps an image in place, and the decorator keeps what it has", async () => {
    const docker = new FakeRuntime();
    const pods = new FakeRuntime({ verbs: DECLARATIVE_VERBS });
    expect(docker.updateImage).toBeUndefined();
    expect(withContractErrors(docker).updateImage).toBeUndefined();
    const id = await pods.create({ gameId: "g1", name: "galaxy-game-g1", imageRef: "galaxy/engine:1.0.0", generation: 1, restartToken: null, configHash: "h", env: {}, statePath: "/s", resources: { cpus: 1, memoryBytes: 1, pidsLimit: 1 } });
    await withContractErrors(pods).updateImage!(id, { gameId: "g1", name: "galaxy-game-g1", imageRef: "galaxy/engine:1.0.1", generation: 2, restartToken: null, configHash: "h2", env: {}, statePath: "/s", resources: { cpus: 1, memoryBytes: 1, pidsLimit: 1 } });
    expect(await pods.listForGame("g1")).toMatchObject([{ id, imageRef: "galaxy/engine:1.0.1", generation: 2, phase: "pending" }]);
    expect(pods.calls).toEqual(["create galaxy/engine:1.0.0", `updateImage ${id} galaxy/engine:1.0.1`]);
  });
});
