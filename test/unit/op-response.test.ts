import http, { type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpResponse } from "../../src/http/respond.js";

/** Each path answers in one of the ways node lets a handler write a head. */
const ANSWERS: Record<string, (res: OpResponse) => void> = {
  "/object": (res) => res.writeHead(200, { "content-type": "text/plain" }).end("object"),
  "/message": (res) => res.writeHead(418, "Short and stout", { "content-type": "text/plain" }).end("message"),
  "/array": (res) => res.writeHead(201, ["content-type", "text/plain", "x-extra", "1"]).end("array"),
  "/bare-status": (res) => res.writeHead(204).end(),
  // No writeHead at all: node writes the head implicitly on end().
  "/implicit": (res) => {
    res.statusCode = 202;
    res.end("implicit");
  },
  // setHeader first puts node on its merging path.
  "/set-header-first": (res) => {
    res.setHeader("allow", "GET");
    res.writeHead(405, { "content-type": "text/plain" }).end("merged");
  },
  "/stream": (res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write("data: 1\n\n");
    res.end();
  },
  "/no-id": (res) => {
    res.opId = "";
    res.writeHead(200).end();
  },
};

let server: http.Server;
let port = 0;

beforeAll(async () => {
  server = http.createServer<typeof IncomingMessage, typeof OpResponse>({ ServerResponse: OpResponse }, (req, res) => {
    res.opId = `op-${req.url!.slice(1)}`;
    ANSWERS[req.url!]!(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

async function get(path: string): Promise<{ status: number; statusText: string; headers: Headers; rawOpIds: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const joined = res.headers.get("x-op-id");
  return { status: res.status, statusText: res.statusText, headers: res.headers, rawOpIds: joined === null ? 0 : joined.split(",").length, body: await res.text() };
}

describe("OpResponse", () => {
  it("puts the request's op id on every head, exactly once, whatever way the head is written", async () => {
    for (const path of Object.keys(ANSWERS).filter((p) => p !== "/no-id")) {
      const r = await get(path);
      expect(r.headers.get("x-op-id"), path).toBe(`op-${path.slice(1)}`);
      expect(r.rawOpIds, path).toBe(1);
    }
  });

  it("keeps the status, reason phrase, body and the handler's own headers", async () => {
    const message = await get("/message");
    expect([message.status, message.statusText, message.body]).toEqual([418, "Short and stout", "message"]);
    const array = await get("/array");
    expect([array.status, array.headers.get("x-extra"), array.body]).toEqual([201, "1", "array"]);
    const merged = await get("/set-header-first");
    expect([merged.status, merged.headers.get("allow"), merged.body]).toEqual([405, "GET", "merged"]);
    const implicit = await get("/implicit");
    expect([implicit.status, implicit.body]).toEqual([202, "implicit"]);
    expect((await get("/stream")).body).toBe("data: 1\n\n");
  });

  it("adds nothing when no op id was assigned", async () => {
    const r = await get("/no-id");
    expect(r.status).toBe(200);
    expect(r.headers.has("x-op-id")).toBe(false);
  });
});
