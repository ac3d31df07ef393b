/** The W3C traceparent rules a receiver applies (https://www.w3.org/TR/trace-context/#traceparent-header). */
import { describe, expect, it } from "vitest";
import { parseTraceParent } from "../../src/http/traceparent.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const valid = `00-${TRACE}-${PARENT}-01`;

describe("parseTraceParent", () => {
  it("reads the spec's example: trace id, parent id, sampled flag", () => {
    expect(parseTraceParent(valid)).toEqual({ header: valid, traceId: TRACE, parentId: PARENT, sampled: true });
    expect(parseTraceParent(`00-${TRACE}-${PARENT}-00`)?.sampled).toBe(false);
    expect(parseTraceParent(`  ${valid} `)?.header).toBe(valid);
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["repeated header (an array)", [valid, valid]],
    ["two values joined by a proxy", `${valid}, ${valid}`],
    ["version ff", `ff-${TRACE}-${PARENT}-01`],
    ["upper-case hex", `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${PARENT}-01`],
    ["all-zero parent id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["short trace id", `00-${TRACE.slice(1)}-${PARENT}-01`],
    ["version 00 with extra fields", `${valid}-cafe`],
    ["not hex", `00-${TRACE}-${PARENT}-zz`],
    ["higher version with junk glued on", `01-${TRACE}-${PARENT}-01x`],
    ["garbage", "hello"],
  ])("ignores %s", (_what, raw) => {
    expect(parseTraceParent(raw)).toBeNull();
  });

  it("reads a higher version's first four fields and stores them as version 00", () => {
    expect(parseTraceParent(`cc-${TRACE}-${PARENT}-01-what-the-future-holds`)).toMatchObject({ header: valid, traceId: TRACE });
    expect(parseTraceParent(`01-${TRACE}-${PARENT}-01`)?.header).toBe(valid);
  });
});
