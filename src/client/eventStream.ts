/** The event stream's parser, apart from the client so each file keeps one job. */

/** One event of the stream. */
export interface StreamedEvent {
  /** The SSE `id:` (the event seq, or the snapshot's cursor); null for diagnostics. */
  id: string | null;
  /** `snapshot`, `diagnostic`, or an event type such as `container_started`. */
  type: string;
  data: unknown;
}

/** Folds text/event-stream lines into events: fields, multi-line data, comments; a blank line ends an event. */
class EventAssembler {
  private lastId: string | null = null;
  private type = "";
  private data: string[] = [];
  private hasId = false;

  /** The event this line completes, if it completes one. */
  feed(line: string): StreamedEvent | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon >= 0 ? line.slice(0, colon) : line;
    let value = colon >= 0 ? line.slice(colon + 1) : "";
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.type = value;
    else if (field === "id") {
      this.lastId = value;
      this.hasId = true;
    }
    return null;
  }

  private dispatch(): StreamedEvent | null {
    let event: StreamedEvent | null = null;
    if (this.data.length > 0) {
      const text = this.data.join("\n");
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Leave non-JSON data as text.
      }
      event = { id: this.hasId ? this.lastId : null, type: this.type || "message", data: parsed };
    }
    this.type = "";
    this.data = [];
    this.hasId = false;
    return event;
  }
}

/** Parses text/event-stream (the WHATWG rules that matter here: fields, multi-line data, comments). */
export async function* parseEventStream(body: ReadableStream<Uint8Array>, signal?: AbortSignal): AsyncIterable<StreamedEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const events = new EventAssembler();
  let buffer = "";
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
        const event = events.feed(line);
        if (event) yield event;
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    // Also reached when the consumer stops iterating early: the connection must not linger.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
