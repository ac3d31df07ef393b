// Server-Sent Events over fetch: EventSource cannot send Authorization, and
// the console keeps its token out of cookies and URLs. Like EventSource it
// reconnects after the server's `retry:` delay with Last-Event-ID set to the
// last id seen, so the server resumes after exactly that event; events with
// a sequence at or below the last one delivered are dropped, so a resume
// never shows one twice.
import { ApiError, authHeaders } from "./api.js";

/** Parses one SSE block ("field: value" lines) into {id, event, data}. */
export function parseFrame(block) {
  const frame = { id: null, event: "message", data: "", retry: null };
  const data = [];
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") frame.id = value;
    else if (field === "event") frame.event = value;
    else if (field === "data") data.push(value);
    else if (field === "retry" && /^[0-9]+$/.test(value)) frame.retry = Number(value);
  }
  frame.data = data.join("\n");
  return frame;
}

/**
 * Opens the stream at `path` and keeps it open until `signal` aborts.
 * handlers: snapshot({cursor, records}), event(evt), diagnostic(d),
 * state("live" | "reconnecting" | "failed", detail).
 * A 401 or 403 is final (state "failed" with the ApiError): retrying a
 * refused token would only repeat the refusal.
 */
export function openStream(path, handlers, signal) {
  let lastId = null;
  let lastSeq = -1;
  let retryMs = 2000;

  const deliver = (frame) => {
    if (frame.retry !== null) retryMs = frame.retry;
    if (frame.event === "" || (frame.data === "" && frame.id === null)) return;
    if (frame.id !== null) lastId = frame.id;
    let body;
    try {
      body = JSON.parse(frame.data);
    } catch {
      return;
    }
    if (frame.event === "snapshot") {
      lastSeq = Math.max(lastSeq, body.cursor);
      handlers.snapshot?.(body);
    } else if (frame.event === "diagnostic") handlers.diagnostic?.(body);
    else if (typeof body.seq === "number") {
      if (body.seq <= lastSeq) return;
      lastSeq = body.seq;
      handlers.event?.(body);
    }
  };

  const once = async () => {
    const headers = authHeaders({ accept: "text/event-stream" });
    if (lastId !== null) headers["last-event-id"] = lastId;
    const res = await fetch(path, { headers, signal, credentials: "omit", cache: "no-store" });
    if (!res.ok) {
      let err = new ApiError(res.status, "http_error", `HTTP ${res.status}`, res.headers.get("x-op-id"));
      try {
        const b = await res.json();
        if (b?.error) err = new ApiError(res.status, b.error.code, b.error.message, res.headers.get("x-op-id"));
      } catch {
        // keep the plain status
      }
      throw err;
    }
    handlers.state?.("live");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        deliver(parseFrame(buffer.slice(0, cut)));
        buffer = buffer.slice(cut + 2);
      }
    }
  };

  const loop = async () => {
    while (!signal.aborted) {
      try {
        await once();
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          handlers.state?.("failed", err);
          return;
        }
      }
      if (signal.aborted) return;
      handlers.state?.("reconnecting");
      await new Promise((r) => setTimeout(r, retryMs));
    }
  };
  void loop();
}
