import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, expect, it } from "vitest";
import { browserGuard } from "../../src/http/guards.js";
import { consoleAssets, serveConsole } from "../../src/http/ui/serve.js";

const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe("the browser guard and the console's own origin", () => {
  const guard = browserGuard({ allowedHosts: ["localhost", "rtm.example"], allowedOrigins: [], checkHost: true });

  it("accepts the page's own origin: exactly http(s)://<Host> of an allowed Host", () => {
    expect(() => guard(req({ host: "127.0.0.1:8096", origin: "http://127.0.0.1:8096" }))).not.toThrow();
    expect(() => guard(req({ host: "rtm.example", origin: "https://rtm.example" }))).not.toThrow();
  });

  it("refuses any other origin, a different port included, and a rebound name whatever its origin", () => {
    expect(() => guard(req({ host: "127.0.0.1:8096", origin: "http://127.0.0.1:9999" }))).toThrow(/RTMANAGER_ALLOWED_ORIGINS/);
    expect(() => guard(req({ host: "127.0.0.1:8096", origin: "http://evil.example" }))).toThrow(/RTMANAGER_ALLOWED_ORIGINS/);
    expect(() => guard(req({ host: "evil.example:8096", origin: "http://evil.example:8096" }))).toThrow(/RTMANAGER_ALLOWED_HOSTS/);
  });

  it("on a Unix socket (no Host check) only configured origins pass", () => {
    const unix = browserGuard({ allowedHosts: [], allowedOrigins: [], checkHost: false });
    expect(() => unix(req({ host: "x", origin: "http://x" }))).toThrow(/RTMANAGER_ALLOWED_ORIGINS/);
  });
});

describe("the console's files", () => {
  it("are read from the package: the page, its modules and its style", () => {
    const names = [...consoleAssets().keys()];
    expect(names).toEqual(expect.arrayContaining(["index.html", "main.js", "api.js", "sse.js", "style.css"]));
  });

  it("only plain names are served; anything else is not_found", () => {
    const res = { writeHead: () => res, end: () => res } as unknown as ServerResponse;
    for (const name of ["../server.ts", "..", "serve.ts", "index.html/", "%2e%2e", "nope.js"]) {
      expect(() => serveConsole(res, name), name).toThrow(/no such console file/);
    }
    expect(() => serveConsole(res, "main.js")).not.toThrow();
  });
});
