/**
 * The baseline of bench/http.ts: a bare node:http server answering the same
 * paths with the same JSON bytes rtmanager answered once (read from the files
 * named by BARE_ONE_FILE and BARE_LIST_FILE), with the same content type.
 * Listens on 127.0.0.1 on a free port and prints {"port": N} on stdout.
 */
import { readFileSync } from "node:fs";
import http from "node:http";

const one = readFileSync(process.env.BARE_ONE_FILE ?? "");
const list = readFileSync(process.env.BARE_LIST_FILE ?? "");
const onePath = process.env.BARE_ONE_PATH ?? "";
const listPath = process.env.BARE_LIST_PATH ?? "";
const contentType = process.env.BARE_CONTENT_TYPE ?? "application/json";

const server = http.createServer((req, res) => {
  const body = req.url === onePath ? one : req.url === listPath ? list : null;
  if (req.method !== "GET" || body === null) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": contentType, "content-length": body.length });
  res.end(body);
});
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === "object" && addr ? addr.port : 0 })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
