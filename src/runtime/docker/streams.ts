import { StringDecoder } from "node:string_decoder";

/** Reads newline-delimited JSON, tolerating chunks that split or join lines. */
export function readJsonLines(
  stream: NodeJS.ReadableStream,
  onObject: (obj: unknown) => void,
  onBadLine: (line: string, err: unknown) => void,
): void {
  const decoder = new StringDecoder("utf8");
  let buffered = "";
  stream.on("data", (chunk: Buffer | string) => {
    buffered += typeof chunk === "string" ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        // A garbled line must not throw out of a 'data' listener: that would crash the process.
        onBadLine(line, err);
        continue;
      }
      onObject(obj);
    }
  });
}

export function destroyStream(stream: NodeJS.ReadableStream): void {
  const s = stream as NodeJS.ReadableStream & { destroy?: (err?: Error) => void };
  s.destroy?.();
}
