/**
 * The part of fetch RtmClient uses, over node:http(s). rtmctl uses it: on
 * Node 20 the built-in fetch (undici 6) mostly never settles a request whose
 * connection the server closes without an answer, which is what a refusing
 * `kubectl port-forward` does, so rtmctl sat out its whole --timeout before
 * saying anything (Node 22 and later fail such a call at once). node:http
 * reports the reset as ECONNRESET on every Node.
 */
import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";

/** Statuses whose Response must have no body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304]);

export const nodeHttpFetch: typeof fetch = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? "GET";
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    const request = (url.protocol === "https:" ? https : http).request(url, { method, headers, signal: init?.signal ?? undefined }, (res) => {
      const answer = new Headers();
      for (const [name, value] of Object.entries(res.headers)) {
        if (Array.isArray(value)) for (const v of value) answer.append(name, v);
        else if (value !== undefined) answer.set(name, value);
      }
      const status = res.statusCode ?? 500;
      const body = NULL_BODY.has(status) || method === "HEAD" ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
      if (body === null) res.resume();
      resolve(new Response(body, { status, statusText: res.statusMessage, headers: answer }));
    });
    request.on("error", reject);
    const body = init?.body;
    if (body === undefined || body === null) request.end();
    else if (typeof body === "string") request.end(body);
    else reject(new TypeError("nodeHttpFetch sends string bodies only"));
  });
