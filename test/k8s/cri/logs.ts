/**
 * Container logs as the kubelet reads them from the file the CRI runtime
 * writes (pkg/kubelet/kuberuntime/logs/logs.go ReadLogs): one line per
 * `<RFC3339Nano> <stdout|stderr> <P|F> <content>`, partial (P) lines joined
 * to the next full (F) one; `tailLines` counts whole lines; `timestamps`
 * prefixes each line with its time; `follow` keeps reading until the
 * container is no longer running and the file has nothing more.
 */
import fs from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import type { LogRequest } from "../kubelet/containerRuntime.js";

const FOLLOW_POLL_MS = 200;

interface Parsed {
  lines: string[];
  /** The partial line carried over to the next chunk. */
  pending: { time: string; text: string } | null;
}

function parse(chunk: string, pending: Parsed["pending"], timestamps: boolean): Parsed {
  const lines: string[] = [];
  for (const raw of chunk.split("\n")) {
    if (raw === "") continue;
    const m = /^(\S+) (stdout|stderr) ([PF]) ?(.*)$/.exec(raw);
    if (!m) continue;
    const [, time = "", , tag, text = ""] = m;
    const joined = pending ? { time: pending.time, text: pending.text + text } : { time, text };
    if (tag === "P") {
      pending = joined;
      continue;
    }
    pending = null;
    lines.push(`${timestamps ? `${joined.time} ` : ""}${joined.text}\n`);
  }
  return { lines, pending };
}

/** Reads whole lines only: a write the runtime has not finished stays for the next read. */
async function readFrom(file: string, offset: number): Promise<{ text: string; next: number }> {
  const fh = await fs.open(file, "r").catch(() => null);
  if (!fh) return { text: "", next: offset };
  try {
    const { size } = await fh.stat();
    if (size <= offset) return { text: "", next: offset };
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    const end = buf.lastIndexOf(0x0a) + 1;
    return { text: buf.subarray(0, end).toString("utf8"), next: offset + end };
  } finally {
    await fh.close();
  }
}

export async function criLogStream(file: string, options: LogRequest, running: () => Promise<boolean>): Promise<Readable> {
  const out = new PassThrough();
  const first = await readFrom(file, 0);
  let parsed = parse(first.text, null, options.timestamps);
  const initial = options.tailLines !== undefined ? parsed.lines.slice(Math.max(0, parsed.lines.length - options.tailLines)) : parsed.lines;
  out.write(initial.join(""));
  if (!options.follow) {
    out.end();
    return out;
  }
  let offset = first.next;
  let closed = false;
  out.on("close", () => (closed = true));
  void (async () => {
    while (!closed) {
      const alive = await running();
      const next = await readFrom(file, offset);
      offset = next.next;
      parsed = parse(next.text, parsed.pending, options.timestamps);
      if (parsed.lines.length > 0) out.write(parsed.lines.join(""));
      if (!alive && next.text === "") break;
      await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    }
    out.end();
  })();
  return out;
}
