/** Reading an engine's output through the runtime port, as the logs route does. */
import type { RuntimePort } from "../../src/model/ports.js";

/** The last `tail` lines as text (no follow). */
export async function logText(runtime: Pick<RuntimePort, "logStream">, id: string, tail: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await runtime.logStream(id, { tail, follow: false, signal: new AbortController().signal })) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}
