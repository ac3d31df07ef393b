/**
 * The client's transport failures against a real socket on 127.0.0.1: a
 * server that never answers, one that stalls mid-body and one that answers
 * 200 with something that is not JSON all end as RtmTransportError, never as
 * a raw DOMException or SyntaxError a caller would not expect.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RtmClient, RtmTransportError } from "../../src/client/index.js";

let server: http.Server;
let baseUrl: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url?.endsWith("/silent")) return; // never answers
    if (req.url?.endsWith("/stall")) {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      res.write('{"game_id":');
      return; // headers and a piece of the body, then nothing
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end("<html>proxy error</html>");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("client transport errors", () => {
  // Long enough for the headers to arrive on a loaded machine, short enough to keep the test quick.
  const client = (timeoutMs = 1500) => new RtmClient({ baseUrl, timeoutMs });

  it("a server that never answers: timed out", async () => {
    const err = await client(300).get("silent").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtmTransportError);
    expect(err).toMatchObject({ timedOut: true });
    expect((err as Error).message).toMatch(/timed out after 300 ms/);
  });

  it("a body that stalls after the headers: timed out while reading", async () => {
    const err = await client().get("stall").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtmTransportError);
    expect(err).toMatchObject({ timedOut: true });
    expect((err as Error).message).toMatch(/reading the answer/);
  });

  it("a 200 that is not JSON: a transport error naming what came back", async () => {
    const err = await client(30_000).get("html").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RtmTransportError);
    expect(err).toMatchObject({ timedOut: false });
    expect((err as Error).message).toMatch(/not JSON: "<html>proxy error/);
  });
});
