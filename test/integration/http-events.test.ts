/**
 * The event stream: snapshot, backlog after a cursor, live events; resume
 * by Last-Event-ID with no gap and no duplicate; diagnostics for a malformed,
 * unknown or expired cursor; the stream ends when the client goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventDiagnostic, EventSnapshot, StreamedEvent, WireEvent } from "../../src/client/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { rawRequest } from "../helpers/contract.js";
import { TEST_IMAGES, ensureTestImages, uniqueGameId, waitFor } from "../helpers/docker.js";

let app: TestApp;

beforeAll(async () => {
  await ensureTestImages();
  app = await startTestApp();
}, 240_000);

afterAll(async () => {
  await app?.close();
}, 120_000);

/** Reads a stream in the background; `until` waits for a condition on what has arrived. */
function listen(options: { gameId?: string; cursor?: string | number }) {
  const controller = new AbortController();
  const frames: StreamedEvent[] = [];
  let error: unknown = null;
  const done = (async () => {
    try {
      for await (const frame of app.client.events({ ...options, signal: controller.signal })) frames.push(frame);
    } catch (err) {
      if (!controller.signal.aborted) error = err;
    }
  })();
  return {
    frames,
    events: () => frames.filter((f) => f.type !== "snapshot" && f.type !== "diagnostic"),
    until: (what: string, check: (frames: StreamedEvent[]) => boolean, timeoutMs = 15_000) =>
      waitFor(what, () => {
        if (error) throw error;
        return check(frames) ? true : undefined;
      }, timeoutMs),
    async close() {
      controller.abort();
      await done;
    },
  };
}

async function storedSeqs(gameId: string, after = 0): Promise<number[]> {
  return (await app.store.eventsAfter(after, { gameId })).map((e) => e.seq);
}

const seqsOf = (frames: StreamedEvent[]) => frames.map((f) => Number(f.id));

describe("event stream", () => {
  it("sends the snapshot first, then live events with their seq as id", async () => {
    const g = uniqueGameId("ev");
    const s = listen({ gameId: g });
    await s.until("snapshot", (f) => f.length >= 1);
    expect(s.frames[0]!.type).toBe("snapshot");
    const snap = s.frames[0]!.data as EventSnapshot;
    expect(snap.records).toEqual([]);
    expect(Number(s.frames[0]!.id)).toBe(snap.cursor);

    await app.client.start(g, TEST_IMAGES.v100);
    await s.until("container_started", (f) => f.some((x) => x.type === "container_started"));
    const live = s.events();
    for (const e of live) {
      const data = e.data as WireEvent;
      expect(data.gameId).toBe(g);
      expect(e.type).toBe(data.type);
      expect(Number(e.id)).toBe(data.seq);
    }
    expect(seqsOf(live)).toEqual(await storedSeqs(g, snap.cursor));
    await s.close();

    // A second stream now shows the runtime in its snapshot.
    const again = listen({ gameId: g });
    await again.until("snapshot", (f) => f.length >= 1);
    const records = (again.frames[0]!.data as EventSnapshot).records;
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ gameId: g, status: "running", observedGeneration: 1 });
    await again.close();
  }, 60_000);

  it("replays the backlog after a cursor, filtered by game", async () => {
    const g = uniqueGameId("ev");
    const other = uniqueGameId("ev-other");
    await app.client.start(g, TEST_IMAGES.v100);
    await app.client.start(other, TEST_IMAGES.v100);
    await app.client.stop(g, "finished");
    const all = await storedSeqs(g);
    expect(all.length).toBeGreaterThanOrEqual(3);

    const s = listen({ gameId: g, cursor: 0 });
    await s.until("whole backlog", () => s.events().length >= all.length);
    expect(s.frames[0]!.type).toBe("snapshot");
    expect(seqsOf(s.events())).toEqual(all);
    expect(s.events().every((e) => (e.data as WireEvent).gameId === g)).toBe(true);
    await s.close();

    // Without a game filter the other game's events are there too.
    const unfiltered = listen({ cursor: all[0]! - 1 });
    await unfiltered.until("both games", () => unfiltered.events().some((e) => (e.data as WireEvent).gameId === other));
    await unfiltered.close();
  }, 60_000);

  it("resumes with Last-Event-ID without gaps or duplicates across a disconnect", async () => {
    const g = uniqueGameId("ev");
    await app.client.start(g, TEST_IMAGES.v100);
    const first = listen({ gameId: g, cursor: 0 });
    const before = await storedSeqs(g);
    await first.until("backlog", () => first.events().length >= before.length);
    await first.close();
    const seen = seqsOf(first.events());
    const lastId = first.events().at(-1)!.id!;

    // Events happen while nobody listens.
    await app.client.restart(g);
    await app.client.stop(g, "finished");

    const second = listen({ gameId: g, cursor: lastId });
    const expected = await storedSeqs(g);
    await second.until("the rest", () => seen.length + second.events().length >= expected.length);
    // Live events keep coming on the resumed stream.
    await app.client.start(g, TEST_IMAGES.v100);
    const final = await waitFor("start stored", async () => {
      const seqs = await storedSeqs(g);
      return seqs.length > expected.length ? seqs : undefined;
    });
    await second.until("live after resume", () => seen.length + second.events().length >= final.length);
    await new Promise((r) => setTimeout(r, 1500));
    await second.close();

    const combined = [...seen, ...seqsOf(second.events())];
    expect(new Set(combined).size).toBe(combined.length);
    expect(combined).toEqual(await storedSeqs(g));
    expect(Number(second.frames[0]!.id)).toBe(Number(lastId));
  }, 90_000);

  it("a malformed cursor gets an invalid_cursor diagnostic, then the stream continues from now", async () => {
    const g = uniqueGameId("ev");
    await app.client.start(g, TEST_IMAGES.v100);
    const s = listen({ gameId: g, cursor: "not-a-number" });
    await s.until("snapshot", (f) => f.some((x) => x.type === "snapshot"));
    expect(s.frames[0]!.type).toBe("diagnostic");
    expect(s.frames[0]!.id).toBeNull();
    const diag = s.frames[0]!.data as EventDiagnostic;
    expect(diag.code).toBe("invalid_cursor");
    expect(s.frames[1]!.type).toBe("snapshot");
    // From now: no backlog of this game's earlier events.
    const startedAt = (s.frames[1]!.data as EventSnapshot).cursor;
    expect(startedAt).toBeGreaterThanOrEqual(Math.max(...(await storedSeqs(g))));

    await app.client.stop(g, "finished");
    await s.until("live stop", () => s.events().some((e) => e.type === "container_stopped"));
    expect(seqsOf(s.events())).toEqual(await storedSeqs(g, startedAt));
    await s.close();
  }, 60_000);

  it("a cursor beyond the newest event gets cursor_unknown and continues from now", async () => {
    const s = listen({ cursor: 999_999_999 });
    await s.until("snapshot", (f) => f.some((x) => x.type === "snapshot"));
    expect((s.frames[0]!.data as EventDiagnostic).code).toBe("cursor_unknown");
    await s.close();
  });

  it("a bad game_id is a 400 envelope, before any stream starts", async () => {
    const res = await rawRequest(app.baseUrl, { method: "GET", path: "/api/v1/ext/events?game_id=..%2Fx" });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ error: { code: "invalid_request" } });
  });

  it("ends the server side when the client goes away", async () => {
    const closedBefore = app.logs.filter((l) => l.msg === "event stream closed").length;
    const s = listen({});
    await s.until("snapshot", (f) => f.length >= 1);
    await s.close();
    await waitFor("server closed the stream", () => app.logs.filter((l) => l.msg === "event stream closed").length > closedBefore);
  });

  // Last: it prunes the log.
  it("an expired cursor gets cursor_expired with the oldest seq, then the backlog from there", async () => {
    const g = uniqueGameId("ev");
    await app.client.start(g, TEST_IMAGES.v100);
    await app.client.stop(g, "finished");
    const seqs = await storedSeqs(g);
    const keepFrom = seqs[1]!;
    await app.store.sql.query("DELETE FROM runtime_events WHERE seq < $1", [keepFrom]);
    const { oldest } = await app.store.eventBounds();
    expect(oldest).toBe(keepFrom);

    const s = listen({ gameId: g, cursor: 1 });
    const expected = await storedSeqs(g);
    await s.until("backlog from oldest", () => s.events().length >= expected.length);
    expect(s.frames[0]!.type).toBe("diagnostic");
    expect(s.frames[0]!.data).toMatchObject({ code: "cursor_expired", oldest: keepFrom, cursor: keepFrom - 1 });
    expect(s.frames[1]!.type).toBe("snapshot");
    expect(seqsOf(s.events())).toEqual(expected);
    expect(seqsOf(s.events())[0]).toBe(keepFrom);
    await s.close();

    // oldest - 1 itself is still a valid cursor: nothing was lost after it.
    const edge = listen({ gameId: g, cursor: keepFrom - 1 });
    await edge.until("backlog", () => edge.events().length >= expected.length);
    expect(edge.frames[0]!.type).toBe("snapshot");
    await edge.close();
  }, 60_000);
});
