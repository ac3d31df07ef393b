/** The event stream's parser, apart from the client so each file keeps one job. */

/** One event of the stream. */
export interface StreamedEvent {
  /** The SSE `id:` (the event seq, or the snapshot's cursor); null for diagnostics. */
  id: string | null;
  /** `snapshot`, `diagnostic`, or an event type such as `container_started`. */
  type: string;
  data: unknown;
}

/** Parses text/event-stream (the WHATWG rules that matter here: fields, multi-line data, comments). */
export async function* parseEventStream(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncIterable<StreamedEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let lastId: string | null = null;
  let type = "";
  let data: string[] = [];
  let hasId = false;
  const onAbort = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        if (signal?.aborted) return;
        throw err;
      }
      if (chunk.done) return;
      buffer += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
        if (line === "") {
          if (data.length > 0) {
            const text = data.join("\n");
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              // Leave non-JSON data as text.
            }
            yield { id: hasId ? lastId : null, type: type || "message", data: parsed };
          }
          type = "";
          data = [];
          hasId = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon >= 0 ? line.slice(0, colon) : line;
        let value = colon >= 0 ? line.slice(colon + 1) : "";
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") type = value;
        else if (field === "id") {
          lastId = value;
          hasId = true;
        }
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Also reached when the consumer stops iterating early: the connection must not linger.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
