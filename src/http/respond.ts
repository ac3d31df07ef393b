import type { ServerResponse } from "node:http";
import { HTTP_STATUS_BY_CODE, RtmError, type ErrorCode } from "../model/errors.js";
import type { ErrorEnvelope } from "./wire.js";

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJsonText(res, status, JSON.stringify(body), headers);
}

/** For a body already serialised (see JsonMemo). */
export function sendJsonText(res: ServerResponse, status: number, payload: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  });
  res.end(payload);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text), "cache-control": "no-store" });
  res.end(text);
}

export function envelope(code: ErrorCode, message: string): ErrorEnvelope {
  return { error: { code, message } };
}

export function sendError(res: ServerResponse, err: RtmError, headers: Record<string, string> = {}): void {
  sendJson(res, statusOf(err), envelope(err.code, err.message), headers);
}

/** Status of an error on this surface; an override (401, 405) rides in details.httpStatus. */
export function statusOf(err: RtmError): number {
  const override = err.details?.httpStatus;
  return typeof override === "number" ? override : HTTP_STATUS_BY_CODE[err.code];
}

/**
 * A refusal whose status is not the code's own: the contract's code list has
 * no 401 or 405, so they carry invalid_request with their proper status.
 */
export function transportError(status: 401 | 405, message: string): RtmError {
  return new RtmError("invalid_request", message, { httpStatus: status });
}

/**
 * Serialised bodies keyed by the object they were made from. The record cache
 * hands out the same record and list objects until they change, so a hot GET
 * serialises once per change instead of once per request.
 */
export class JsonMemo<K extends object> {
  private readonly payloads = new WeakMap<K, string>();

  constructor(private readonly render: (value: K) => unknown) {}

  json(value: K): string {
    let payload = this.payloads.get(value);
    if (payload === undefined) {
      payload = JSON.stringify(this.render(value));
      this.payloads.set(value, payload);
    }
    return payload;
  }
}
