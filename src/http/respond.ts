import { ServerResponse, type IncomingMessage, type OutgoingHttpHeader, type OutgoingHttpHeaders } from "node:http";
import { HTTP_STATUS_BY_CODE, RtmError, type ErrorCode } from "../model/errors.js";
import { OP_ID_HEADER, type ErrorEnvelope } from "./wire.js";

type HeaderArg = OutgoingHttpHeaders | OutgoingHttpHeader[];

/**
 * A response that carries its request's op id on every answer, streams,
 * errors and bare `res.end()`s included (node writes implicit heads through
 * writeHead too). The id joins the head where it is written rather than
 * through setHeader up front: any setHeader puts the whole head on node's
 * slow path, each header validated and merged one by one, which a hot GET
 * notices.
 */
export class OpResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  opId = "";

  override writeHead(statusCode: number, headers?: HeaderArg): this;
  override writeHead(statusCode: number, statusMessage?: string, headers?: HeaderArg): this;
  override writeHead(statusCode: number, messageOrHeaders?: string | HeaderArg, headers?: HeaderArg): this {
    if (typeof messageOrHeaders === "string") return super.writeHead(statusCode, messageOrHeaders, this.withOpId(headers));
    return super.writeHead(statusCode, this.withOpId(messageOrHeaders));
  }

  private withOpId(headers: HeaderArg | undefined): HeaderArg | undefined {
    if (this.opId === "") return headers;
    if (headers === undefined) return { [OP_ID_HEADER]: this.opId };
    if (Array.isArray(headers)) return [OP_ID_HEADER, this.opId, ...headers];
    return { [OP_ID_HEADER]: this.opId, ...headers };
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  });
  res.end(payload);
}

/** For a body already serialised (see JsonMemo): nothing to measure or encode per request. */
export function sendJsonBytes(res: ServerResponse, status: number, payload: Buffer): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": payload.length, "cache-control": "no-store" });
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
  private readonly payloads = new WeakMap<K, Buffer>();

  constructor(private readonly render: (value: K) => unknown) {}

  /** UTF-8 bytes, so a hot GET neither measures nor encodes the string again. */
  json(value: K): Buffer {
    let payload = this.payloads.get(value);
    if (payload === undefined) {
      payload = Buffer.from(JSON.stringify(this.render(value)));
      this.payloads.set(value, payload);
    }
    return payload;
  }
}
