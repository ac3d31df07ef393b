/** An engine's recent output, from Docker's log endpoint. */
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import { failure, isNotFound, type DockerContext } from "./calls.js";

/** Docker's log framing: 8-byte header (stream type, 3 zero bytes, big-endian length), then the payload. */
export function demuxLogs(buf: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const type = buf[offset];
    const length = buf.readUInt32BE(offset + 4);
    if ((type !== 0 && type !== 1 && type !== 2) || buf[offset + 1] !== 0 || buf[offset + 2] !== 0 || buf[offset + 3] !== 0) {
      // Not framed (a TTY container): the rest is raw output.
      parts.push(buf.subarray(offset));
      offset = buf.length;
      break;
    }
    parts.push(buf.subarray(offset + 8, offset + 8 + length));
    offset += 8 + length;
  }
  if (offset < buf.length) parts.push(buf.subarray(offset));
  return Buffer.concat(parts).toString("utf8");
}

export async function containerLogs(ctx: DockerContext, id: string, tail: number): Promise<string> {
  try {
    const out: unknown = await ctx.calls.run("logs", (signal) =>
      ctx.docker.getContainer(id).logs({ stdout: true, stderr: true, tail, follow: false, abortSignal: signal }),
    );
    // docker-modem hands back parsed JSON when the whole body happens to parse as JSON.
    if (Buffer.isBuffer(out)) return demuxLogs(out);
    return typeof out === "string" ? out : JSON.stringify(out);
  } catch (err) {
    if (isNotFound(err)) throw new RuntimeFailure("not_found", "logs", `no container ${id}`, { containerId: id }, { cause: err });
    throw failure("logs", err, "failed", `reading logs of ${id} failed`, { containerId: id });
  }
}
