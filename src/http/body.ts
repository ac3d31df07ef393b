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
  const value = await readJsonValue(req, true);
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`invalid request body: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

/**
 * For operations without a body (restart, cleanup): nothing, or `{}`.
 * Anything else is a caller that believes it is sending parameters that
 * would be silently ignored.
 */
export async function readEmptyBody(req: IncomingMessage): Promise<void> {
  const value = await readJsonValue(req, false);
  if (value === undefined) return;
  if (Object.keys(value).length > 0) {
    throw invalid(`this operation takes no request body; unexpected field(s): ${Object.keys(value).slice(0, 5).join(", ")}`);
  }
}

async function readJsonValue(req: IncomingMessage, required: true): Promise<Record<string, unknown>>;
async function readJsonValue(req: IncomingMessage, required: false): Promise<Record<string, unknown> | undefined>;
async function readJsonValue(req: IncomingMessage, required: boolean): Promise<Record<string, unknown> | undefined> {
  const { bytes, oversized } = await readRawBody(req);
  if (oversized) throw invalid(`request body exceeds ${MAX_BODY_BYTES} bytes`);
  if (bytes.length === 0) {
    if (required) throw invalid("request body is required: a JSON object");
    return undefined;
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
