/** Docker's multiplexed log frames, read as they arrive in arbitrary chunks. */
import { describe, expect, it } from "vitest";
import { parseLogQuery } from "../../src/http/logs.js";
import { LogDemuxer } from "../../src/runtime/docker/logs.js";

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
