/** GET /api/v1/ext/runtimes' summaries and filters (src/http/runtimeList.ts), pure. */
import { describe, expect, it } from "vitest";
import type { Declaration } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";
import type { RuntimeRecord } from "../../src/model/record.js";
import { filterSummaries, parseListQuery, summarize } from "../../src/http/runtimeList.js";
import { runtimeRecord } from "../helpers/fixtures.js";

const T0 = new Date("2026-01-01T00:00:00Z");

function record(gameId: string, over: Partial<RuntimeRecord> = {}): RuntimeRecord {
  return runtimeRecord({ gameId, currentContainerId: `c-${gameId}`, lastProbeAt: T0, ...over }, T0);
}

function declaration(gameId: string, over: Partial<Declaration> = {}): Declaration {
  return { gameId, imageRef: "galaxy/engine:1.0.0", desiredState: "running", restartPolicy: "on-failure", generation: 1, opId: null, opSource: null, createdAt: T0, updatedAt: T0, ...over };
}

describe("summarize", () => {
  it("one summary per game of either side, sorted, with what the on-call scans for", () => {
    const items = summarize(
      [record("b", { restartCount: 4, health: "unhealthy", consecutiveProbeFailures: 3 }), record("a", { lostNode: "node-2", lostNodeSince: T0 })],
      new Map<string, Declaration | RtmError>([
        ["a", declaration("a", { generation: 3 })],
        ["c", declaration("c", { imageRef: "galaxy/engine:1.0.1" })],
      ]),
    );
    expect(items.map((s) => s.gameId)).toEqual(["a", "b", "c"]);
    expect(items[0]).toMatchObject({ status: "running", desiredState: "running", generation: 3, observedGeneration: 1, lostNode: "node-2", lostNodeSince: T0.toISOString(), attention: ["node_lost"] });
    expect(items[1]).toMatchObject({ desiredState: null, generation: null, restartCount: 4, health: "unhealthy", consecutiveProbeFailures: 3, attention: ["unhealthy", "crash_loop"] });
    // Declared, never reconciled: no record yet, so not running.
    expect(items[2]).toMatchObject({ status: null, declaredImageRef: "galaxy/engine:1.0.1", imageRef: null, health: "unknown", attention: ["not_running"] });
  });

  it("names every reason a game needs a look, and none for a healthy one", () => {
    const [held, degraded, failed, invalid, gated, fine] = summarize(
      [
        record("a", { heldGeneration: 2, previousImageRef: "x" }),
        record("b", { degraded: true }),
        record("c", { status: "stopped", lastErrorCode: "image_pull_failed", lastErrorMessage: "pull failed" }),
        record("d"),
        record("e", { status: "stopped", rolloutStartedAt: T0 }),
        record("f"),
      ],
      new Map<string, Declaration | RtmError>([
        ["c", declaration("c")],
        ["d", new RtmError("start_config_invalid", "bad row")],
        ["e", declaration("e")],
        ["f", declaration("f")],
      ]),
    );
    expect(held!.attention).toEqual(["held"]);
    expect(held!.heldGeneration).toBe(2);
    expect(degraded!.attention).toEqual(["degraded"]);
    expect(failed!.attention).toEqual(["error", "not_running"]);
    expect(failed!.lastErrorMessage).toBe("pull failed");
    expect(invalid!.attention).toEqual(["invalid_declaration"]);
    expect(invalid!.declarationError).toEqual({ code: "start_config_invalid", message: "bad row" });
    expect(gated!.attention).toEqual([]);
    expect(fine!.attention).toEqual([]);
  });

  it("crash_loop starts at the third restart in a row, as the crash_loop event does", () => {
    const [two, three] = summarize([record("a", { restartCount: 2 }), record("b", { restartCount: 3 })], new Map());
    expect(two!.attention).toEqual([]);
    expect(three!.attention).toEqual(["crash_loop"]);
  });
});

describe("filters", () => {
  const items = summarize(
    [record("a"), record("b", { status: "stopped" }), record("c", { health: "unhealthy" }), record("d", { status: "removed" })],
    new Map<string, Declaration | RtmError>([["e", declaration("e")]]),
  );

  it("status keeps the listed record statuses (a game without a record has none)", () => {
    expect(filterSummaries(items, parseListQuery(new URLSearchParams("status=stopped,removed"))).map((s) => s.gameId)).toEqual(["b", "d"]);
    expect(filterSummaries(items, parseListQuery(new URLSearchParams("status=running&status=removed"))).map((s) => s.gameId)).toEqual(["a", "c", "d"]);
  });

  it("unhealthy keeps the games with a reason; with status, both must hold", () => {
    expect(filterSummaries(items, parseListQuery(new URLSearchParams("unhealthy=true"))).map((s) => s.gameId)).toEqual(["c", "e"]);
    expect(filterSummaries(items, parseListQuery(new URLSearchParams("unhealthy=1&status=running"))).map((s) => s.gameId)).toEqual(["c"]);
    expect(filterSummaries(items, parseListQuery(new URLSearchParams("unhealthy=false")))).toHaveLength(5);
  });

  it.each(["status=pending", "status=RUNNING", "unhealthy=yes", "unhealthy=2"])("refuses %s with invalid_request", (q) => {
    expect(() => parseListQuery(new URLSearchParams(q))).toThrow(expect.objectContaining({ code: "invalid_request" }) as Error);
  });
});
