/**
 * Strict request bodies: JSON only, bounded, an object, and exactly the
 * fields the contract lists. Every refusal is invalid_request naming the
 * problem, so a caller can fix its request from the message alone.
 */
import type { IncomingMessage } from "node:http";
import type { z } from "zod";
import { describeZodError } from "../model/declaration.js";
import { RtmError } from "../model/errors.js";

export const MAX_BODY_BYTES = 64 * 1024;
/**
 * An oversized body is read and thrown away up to this much, so the client
 * has finished sending when the 400 arrives (answering mid-upload makes many
 * clients report a reset instead of the response). Past it the connection is
 * dropped.
 */
const DRAIN_LIMIT_BYTES = 4 * 1024 * 1024;

const invalid = (message: string) => new RtmError("invalid_request", message);

export interface RawBody {
  bytes: Buffer;
  /** True when the body was bigger than MAX_BODY_BYTES; `bytes` is then empty. */
  oversized: boolean;
}

export function readRawBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<RawBody> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > DRAIN_LIMIT_BYTES) {
      req.destroy();
      reject(invalid(`request body is ${declared} bytes; the limit is ${limit}`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let oversized = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > DRAIN_LIMIT_BYTES) {
        req.destroy();
        reject(invalid(`request body exceeds ${limit} bytes`));
        return;
      }
      if (size > limit) {
        oversized = true;
        chunks.length = 0;
      }
      if (!oversized) chunks.push(chunk);
    });
    req.on("end", () => resolve({ bytes: oversized ? Buffer.alloc(0) : Buffer.concat(chunks), oversized }));
    req.on("error", reject);
  });
}

export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const mediaType = header.split(";")[0]?.trim().toLowerCase();
  return mediaType === "application/json";
}

/**
 * Reads and validates a body the contract requires. `schema` is one of the
 * contract's request schemas (strict: unknown fields are refused).
 */
export async function readJsonBody<S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> {
  const value = await readJsonObject(req);
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`invalid request body: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * For operations without a body (restart, cleanup): whatever is sent is read
 * and thrown away, never refused. The contract documents no 400 for them, and
 * Game Master's client sends none; the request timeout bounds a slow sender.
 */
export function discardBody(req: IncomingMessage): void {
  req.resume();
}

async function readJsonObject(req: IncomingMessage): Promise<Record<string, unknown>> {
  const { bytes, oversized } = await readRawBody(req);
  if (oversized) throw invalid(`request body exceeds ${MAX_BODY_BYTES} bytes`);
  if (bytes.length === 0) {
    throw invalid("request body is required: a JSON object");
  }
  const contentType = req.headers["content-type"];
  if (!isJsonContentType(contentType)) {
    throw invalid(`Content-Type must be application/json, got ${contentType ? JSON.stringify(contentType) : "none"}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw invalid(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw invalid(`request body must be a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`);
  }
  return value as Record<string, unknown>;
}
