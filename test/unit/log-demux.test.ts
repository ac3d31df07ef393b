/** Engine log streams: Docker's multiplexed frames read as they arrive, the route's bounds, the Pod stub's stream. */
import { describe, expect, it } from "vitest";
import { parseLogQuery } from "../../src/http/logs.js";
import type { EngineSpec } from "../../src/model/ports.js";
import { LogDemuxer } from "../../src/runtime/docker/logs.js";
import { StubPodRuntime } from "../helpers/podRuntime.js";

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

function feed(chunks: Buffer[]): string {
  const d = new LogDemuxer();
  return Buffer.concat([...chunks.flatMap((c) => d.push(c)), ...d.end()]).toString("utf8");
}

describe("LogDemuxer", () => {
  const framed = Buffer.concat([frame(1, "out line\n"), frame(2, "err line\n"), frame(1, "héllo ✓\n")]);

  it("strips headers whatever the chunking: whole, byte by byte, or frames sharing chunks", () => {
    const want = "out line\nerr line\nhéllo ✓\n";
    expect(feed([framed])).toBe(want);
    expect(feed([...framed].map((b) => Buffer.from([b])))).toBe(want);
    expect(feed([framed.subarray(0, 3), framed.subarray(3, 13), framed.subarray(13)])).toBe(want);
  });

  it("passes a TTY container's raw output through, short output included", () => {
    expect(feed([Buffer.from("plain "), Buffer.from("text\n")])).toBe("plain text\n");
    expect(feed([Buffer.from("hi")])).toBe("hi");
  });
});

describe("parseLogQuery", () => {
  const q = (s: string) => parseLogQuery(new URLSearchParams(s), 1024);
  it("caps a one-off read at the ceiling and leaves a followed one to its time bound", () => {
    expect(q("")).toEqual({ tail: 200, follow: false, limitBytes: 1024 });
    expect(q("limitBytes=10")).toMatchObject({ limitBytes: 10 });
    expect(q("limitBytes=99999")).toMatchObject({ limitBytes: 1024 });
    expect(q("follow=true")).toMatchObject({ follow: true, limitBytes: Infinity });
    expect(q("follow=1&limitBytes=99999&tail=5")).toEqual({ tail: 5, follow: true, limitBytes: 99999 });
  });
  it("refuses what it cannot read", () => {
    for (const bad of ["tail=0", "tail=x", "limitBytes=-1", "follow=yes"]) expect(() => q(bad), bad).toThrow(/must be/);
  });
});

describe("StubPodRuntime.logStream (the port's other implementation)", () => {
  const spec = (imageRef: string): EngineSpec => ({
    gameId: "g1",
    name: "galaxy-game-g1",
    imageRef,
    generation: 1,
    restartToken: null,
    configHash: "h",
    env: {},
    statePath: "/state/g1",
    resources: { cpus: 0.5, memoryBytes: 64 * 1024 * 1024, pidsLimit: 64 },
  });

  it("gives the tail, then with follow the new output until the Pod goes; unknown Pods are not_found", async () => {
    const pods = new StubPodRuntime();
    const id = await pods.create(spec("galaxy/engine:1.0.0"));
    await expect.poll(() => pods.logs(id, 5)).toContain("starting");
    const text = async (s: AsyncIterable<Buffer>) => {
      let t = "";
      for await (const c of s) t += c.toString();
      return t;
    };
    expect(await text(await pods.logStream(id, { tail: 5, follow: false, signal: new AbortController().signal }))).toBe("engine galaxy/engine:1.0.0 starting\n");
    const followed = text(await pods.logStream(id, { tail: 1, follow: true, signal: new AbortController().signal }));
    await pods.updateImage(id, spec("galaxy/engine:1.0.1"));
    await pods.remove(id);
    expect(await followed).toBe("engine galaxy/engine:1.0.0 starting\nengine galaxy/engine:1.0.1 starting\n");
    await expect(pods.logStream("pod-404", { tail: 1, follow: false, signal: new AbortController().signal })).rejects.toMatchObject({ kind: "not_found" });
  });
});
