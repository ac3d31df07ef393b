/**
 * Validates live responses against an OpenAPI document read at test time, so
 * drift between a document and the server fails a test: the internal
 * contract (vendored in contract/, byte-identical to
 * ../shared/contract/internal-openapi.yaml) and the extension API
 * (docs/ext-openapi.yaml). OpenAPI 3.0's `nullable: true` becomes a JSON
 * Schema type array; $refs are resolved by Ajv against one bundled schema.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import YAML from "yaml";
import { slack } from "./slack.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The copy the tests use, so the repository is complete on its own. */
export const CONTRACT_PATH = path.resolve(repoRoot, "contract/internal-openapi.yaml");
/** The law, when the shared checkout sits beside this one; the vendored copy must equal it byte for byte. */
export const SHARED_CONTRACT_PATH = path.resolve(repoRoot, "../shared/contract/internal-openapi.yaml");
export const EXT_CONTRACT_PATH = path.resolve(repoRoot, "docs/ext-openapi.yaml");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, JsonObject> }>>;
  components: { schemas: Record<string, JsonObject>; responses: Record<string, JsonObject> };
}

/** OpenAPI 3.0 schema -> JSON Schema draft-07 (the parts these documents use). */
function toJsonSchema(node: Json, id: string): Json {
  if (Array.isArray(node)) return node.map((n) => toJsonSchema(n, id));
  if (node === null || typeof node !== "object") return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "nullable" || k === "example" || k === "examples" || k === "description") continue;
    if (k === "$ref" && typeof v === "string") {
      out.$ref = v.replace("#/components/schemas/", `${id}#/definitions/`);
      continue;
    }
    out[k] = k === "properties" && v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).map(([name, schema]) => [name, toJsonSchema(schema, id)]))
      : toJsonSchema(v, id);
  }
  if (node.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    else if (out.type === undefined) return { anyOf: [out, { type: "null" }] };
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface LiveResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

export class OpenApiContract {
  private readonly spec: OpenApi;
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly validators = new Map<string, ValidateFunction>();
  /** Every validated (template, method, status), for the "all documented statuses seen" check. */
  readonly observed = new Set<string>();

  constructor(
    readonly file: string,
    private readonly id: string,
  ) {
    this.spec = YAML.parse(readFileSync(file, "utf8")) as OpenApi;
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: id, definitions: toJsonSchema(this.spec.components.schemas as Json, id) });
  }

  private operation(template: string, method: string) {
    const op = this.spec.paths[template]?.[method.toLowerCase()];
    if (!op) throw new Error(`${path.basename(this.file)} has no ${method} ${template}`);
    return op;
  }

  /** Statuses the document gives one operation, as numbers. */
  documentedStatuses(template: string, method: string): number[] {
    return Object.keys(this.operation(template, method).responses).map(Number);
  }

  operations(): { template: string; method: string; statuses: number[] }[] {
    return Object.entries(this.spec.paths).flatMap(([template, ops]) =>
      Object.keys(ops).map((m) => ({ template, method: m.toUpperCase(), statuses: this.documentedStatuses(template, m) })),
    );
  }

  private resolveResponse(r: JsonObject): JsonObject {
    const ref = r.$ref;
    if (typeof ref !== "string") return r;
    const found = this.spec.components.responses[ref.replace("#/components/responses/", "")];
    if (!found) throw new Error(`${path.basename(this.file)}: unknown response ${ref}`);
    return found;
  }

  /**
   * Fails unless the status is one the document gives this operation, the
   * content type is one it names for that status and a JSON body matches its
   * schema. `res.text` may be empty for a stream whose head alone was read.
   */
  assert(template: string, method: string, res: LiveResponse): void {
    const op = this.operation(template, method);
    const documented = op.responses[String(res.status)];
    if (!documented) {
      throw new Error(`${method} ${template} answered ${res.status}, which ${path.basename(this.file)} does not document (${Object.keys(op.responses).join(", ")}): ${res.text}`);
    }
    const key = `${method} ${template} ${res.status}`;
    const content = (this.resolveResponse(documented).content ?? {}) as JsonObject;
    const contentType = String(res.headers["content-type"] ?? "");
    const media = Object.keys(content).find((m) => contentType.startsWith(m));
    if (!media) throw new Error(`${key}: content-type ${JSON.stringify(contentType)} is not one of ${Object.keys(content).join(", ")}`);
    if (media === "application/json") {
      let validate = this.validators.get(key);
      if (!validate) {
        const schema = (content[media] as JsonObject | undefined)?.schema;
        if (!schema) throw new Error(`${key} has no application/json schema`);
        validate = this.ajv.compile(toJsonSchema(schema, this.id) as object);
        this.validators.set(key, validate);
      }
      if (!validate(res.json)) throw new Error(`${key} body does not match ${path.basename(this.file)}: ${this.ajv.errorsText(validate.errors)}\n${res.text}`);
    }
    this.observed.add(key);
  }

  /** Validates against one named component schema (e.g. ErrorResponse). */
  assertSchema(name: string, value: unknown): void {
    const validate = this.ajv.getSchema(`${this.id}#/definitions/${name}`);
    if (!validate) throw new Error(`${path.basename(this.file)} has no schema ${name}`);
    if (!validate(value)) throw new Error(`${name}: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
  }
}

const internal = new OpenApiContract(CONTRACT_PATH, "contract");

/** Every validated (template, method, status) of the internal contract. */
export const observed = internal.observed;
export const documentedStatuses = (template: string, method: string): number[] => internal.documentedStatuses(template, method);
export const contractOperations = (): { template: string; method: string; statuses: number[] }[] => internal.operations();
/** Fails unless the answer is one the internal contract documents (JSON, matching its schema). */
export function assertContract(template: string, method: string, res: LiveResponse): void {
  const contentType = String(res.headers["content-type"] ?? "");
  if (!contentType.startsWith("application/json")) throw new Error(`${method} ${template} ${res.status}: content-type ${contentType}`);
  internal.assert(template, method, res);
}
export const assertSchema = (name: string, value: unknown): void => internal.assertSchema(name, value);

export interface RawRequest {
  method: string;
  /** Sent exactly as given: no normalisation of '..' or escapes. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request bound (scaled by RTMANAGER_TEST_SLACK); default RAW_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** Longer than any operation a test app waits for (RTMANAGER_OP_TIMEOUT is 30 s there), short of hanging a run. */
export const RAW_REQUEST_TIMEOUT_MS = 90_000;

/** Destroys `r` with a named error once `ms` (scaled) have passed; returns the disarm. */
function bound(r: http.ClientRequest, what: string, ms: number): () => void {
  const limit = slack(ms);
  const timer = setTimeout(() => r.destroy(new Error(`${what}: no complete answer within ${limit} ms`)), limit);
  timer.unref();
  return () => clearTimeout(timer);
}

/** node:http rather than fetch, so the request target and the headers go out byte for byte. */
export function rawRequest(baseUrl: string, req: RawRequest): Promise<LiveResponse> {
  const url = new URL(baseUrl);
  // node:http frames DELETE bodies only when told the length (it does not chunk them by default).
  const headers = req.body === undefined ? req.headers : { "content-length": String(Buffer.byteLength(req.body)), ...req.headers };
  return new Promise((resolve, reject) => {
    let disarm = (): void => undefined;
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          disarm();
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown = undefined;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON; assertContract reports it
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on("error", reject);
      },
    );
    disarm = bound(r, `${req.method} ${req.path}`, req.timeoutMs ?? RAW_REQUEST_TIMEOUT_MS);
    r.on("error", (err) => {
      disarm();
      reject(err);
    });
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

/** A JSON request the way any well-behaved client sends it. */
export function jsonRequest(baseUrl: string, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<LiveResponse> {
  return rawRequest(baseUrl, {
    method,
    path: p,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** The status and headers of a response whose body may never end (an event stream); the connection is then dropped. */
export function responseHead(baseUrl: string, req: Omit<RawRequest, "body">): Promise<LiveResponse> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const r = http.request({ host: url.hostname, port: url.port, method: req.method, path: req.path, headers: req.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown = undefined;
        try {
          json = JSON.parse(text);
        } catch {
          // a stream, or not JSON: the caller's assertion says which was wanted
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      };
      if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        res.destroy();
        done();
        return;
      }
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", done);
      res.on("error", reject);
    });
    const disarm = bound(r, `${req.method} ${req.path}`, RAW_REQUEST_TIMEOUT_MS);
    r.on("close", disarm);
    r.on("error", reject);
    r.end();
  });
}
