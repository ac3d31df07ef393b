import { describe, expect, it } from "vitest";
import { checkedSpecFor, SPEC_KEYS, specOf, type Declaration } from "../../src/model/declaration.js";
import { RtmError } from "../../src/model/errors.js";

const stored: Declaration = {
  gameId: "g-1",
  imageRef: "galaxy/test-engine:1.0.0",
  desiredState: "running",
  restartPolicy: "on-failure",
  env: { MODE: "x" },
  resources: undefined,
  generation: 7,
  opId: "op-1",
  opSource: "gm_rest",
  createdAt: new Date(0),
  updatedAt: new Date(1),
};

describe("specOf", () => {
  it("keeps the spec keys that are set and drops what the store maintains", () => {
    expect(specOf(stored)).toEqual({
      gameId: "g-1",
      imageRef: "galaxy/test-engine:1.0.0",
      desiredState: "running",
      restartPolicy: "on-failure",
      env: { MODE: "x" },
    });
    expect(Object.keys(specOf(stored)).every((k) => (SPEC_KEYS as string[]).includes(k))).toBe(true);
  });
});

describe("checkedSpecFor", () => {
  it("returns the parsed spec with the schema's defaults", () => {
    expect(checkedSpecFor("g-1", { gameId: "g-1", imageRef: "galaxy/test-engine:1.0.1" })).toEqual({
      gameId: "g-1",
      imageRef: "galaxy/test-engine:1.0.1",
      desiredState: "running",
      restartPolicy: "on-failure",
    });
  });

  it("refuses a spec for another game and one the schema refuses, as invalid_request", () => {
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err instanceof RtmError ? `${err.code}: ${err.message}` : String(err);
      }
      return "no error";
    };
    expect(codeOf(() => checkedSpecFor("g-1", { gameId: "g-2", imageRef: "galaxy/test-engine:1.0.0" }))).toBe(
      'invalid_request: gameId: must be "g-1", got "g-2"',
    );
    expect(codeOf(() => checkedSpecFor("g-1", { gameId: "g-1", imageRef: "" }))).toMatch(/^invalid_request: imageRef: /);
  });
});
