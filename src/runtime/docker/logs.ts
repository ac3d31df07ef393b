/** An engine's output, streamed from Docker's log endpoint. */
import type { LogStreamOptions } from "../../model/ports.js";
import { RuntimeFailure } from "../../model/runtimeFailure.js";
import { failure, isNotFound, type DockerContext } from "./calls.js";
import { destroyStream } from "./streams.js";

const HEADER_BYTES = 8;

function isFrameHeader(buf: Buffer, offset: number): boolean {
  const type = buf[offset];
  return (type === 0 || type === 1 || type === 2) && buf[offset + 1] === 0 && buf[offset + 2] === 0 && buf[offset + 3] === 0;
}

/**
 * Docker's log framing for a container without a TTY: an 8-byte header
 * (stream type, 3 zero bytes, big-endian payload length), then the payload.
 * A TTY container's output is raw; that is decided on the first header and
 * then passed through. Frames may be split across chunks or share one.
 */
export class LogDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  /** Payload bytes of the current frame still to come. */
  private remaining = 0;
  private raw: boolean | null = null;

  push(chunk: Buffer): Buffer[] {
    if (this.raw === true) return chunk.length ? [chunk] : [];
    const out: Buffer[] = [];
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, buf.length);
        out.push(buf.subarray(0, take));
        this.remaining -= take;
        buf = buf.subarray(take);
        continue;
      }
      if (buf.length < HEADER_BYTES) {
        if (this.raw === null && !isFrameHeader(Buffer.concat([buf, Buffer.alloc(4)]), 0)) return this.becomeRaw(out, buf);
        this.pending = Buffer.from(buf);
        break;
      }
      if (!isFrameHeader(buf, 0)) return this.becomeRaw(out, buf);
      this.raw = false;
      this.remaining = buf.readUInt32BE(4);
      buf = buf.subarray(HEADER_BYTES);
    }
    return out;
  }

  /** Leftover bytes at the end of the stream (an unfinished header). */
  end(): Buffer[] {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest.length && this.raw !== false ? [rest] : [];
  }

  private becomeRaw(out: Buffer[], buf: Buffer): Buffer[] {
    // Only the very first bytes decide: garbage after valid frames is still shown rather than dropped.
    if (this.raw === null) this.raw = true;
    out.push(buf);
    return out;
  }
}

async function* demuxed(stream: NodeJS.ReadableStream, signal: AbortSignal): AsyncIterable<Buffer> {
  const demuxer = new LogDemuxer();
  const onAbort = () => destroyStream(stream);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      for (const part of demuxer.push(typeof chunk === "string" ? Buffer.from(chunk) : chunk)) yield part;
    }
    yield* demuxer.end();
  } catch (err) {
    // Aborting is how the reader says it has enough; that is an end, not a failure.
    if (signal.aborted) return;
    throw failure("logs", err, "failed", "reading logs failed");
  } finally {
    signal.removeEventListener("abort", onAbort);
    // Also reached when the consumer stops early: the connection to Docker must not linger.
    destroyStream(stream);
  }
}

/**
 * Streams even without `follow`: docker-modem would buffer a non-followed
 * answer whole, so the request is dialled as a stream either way. The call
 * deadline covers the wait for Docker's answer, not the output that follows.
 */
export async function containerLogStream(ctx: DockerContext, id: string, options: LogStreamOptions): Promise<AsyncIterable<Buffer>> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await ctx.calls.run("logs", (callSignal) => {
      const signal = AbortSignal.any([callSignal, options.signal]);
      return new Promise<NodeJS.ReadableStream>((resolve, reject) => {
        ctx.docker.modem.dial(
          {
            path: `/containers/${encodeURIComponent(id)}/logs?`,
            method: "GET",
            isStream: true,
            abortSignal: signal,
            statusCodes: { 200: true, 404: "no such container", 500: "server error" },
            options: { stdout: true, stderr: true, tail: String(options.tail), follow: options.follow },
          },
          (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as NodeJS.ReadableStream)),
        );
      });
    });
  } catch (err) {
    if (isNotFound(err)) throw new RuntimeFailure("not_found", "logs", `no container ${id}`, { containerId: id }, { cause: err });
    throw failure("logs", err, "failed", `reading logs of ${id} failed`, { containerId: id });
  }
  if (options.signal.aborted) destroyStream(stream);
  return demuxed(stream, options.signal);
}
