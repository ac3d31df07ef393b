/**
 * Validates live responses against ../shared/contract/internal-openapi.yaml,
 * read at test time so that drift between the contract and the server fails
 * a test. OpenAPI 3.0's `nullable: true` becomes a JSON Schema type array;
 * $refs are resolved by Ajv against one bundled schema.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import YAML from "yaml";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CONTRACT_PATH = path.resolve(repoRoot, "../shared/contract/internal-openapi.yaml");

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface OpenApi {
  paths: Record<string, Record<string, { responses: Record<string, JsonObject> }>>;
  components: { schemas: Record<string, JsonObject>; responses: Record<string, JsonObject> };
}

const spec = YAML.parse(readFileSync(CONTRACT_PATH, "utf8")) as OpenApi;

/** OpenAPI 3.0 schema -> JSON Schema draft-07 (the parts the contract uses). */
function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== "object") return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "nullable" || k === "example" || k === "examples") continue;
    if (k === "$ref" && typeof v === "string") {
      out.$ref = v.replace("#/components/schemas/", "contract#/definitions/");
      continue;
    }
    out[k] = toJsonSchema(v);
  }
  if (node.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  }
  return out;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const ajv = new Ajv({ allErrors: true, strict: false });
addFormats(ajv);
ajv.addSchema({ $id: "contract", definitions: toJsonSchema(spec.components.schemas as Json) });

function resolveResponse(r: JsonObject): JsonObject {
  const ref = r.$ref;
  if (typeof ref === "string") {
    const name = ref.replace("#/components/responses/", "");
    const found = spec.components.responses[name];
    if (!found) throw new Error(`contract: unknown response ${ref}`);
    return found;
  }
  return r;
}

const validators = new Map<string, ValidateFunction>();

/** Statuses the contract documents for one operation, as numbers. */
export function documentedStatuses(template: string, method: string): number[] {
  const op = spec.paths[template]?.[method.toLowerCase()];
  if (!op) throw new Error(`contract has no ${method} ${template}`);
  return Object.keys(op.responses).map(Number);
}

export function contractOperations(): { template: string; method: string; statuses: number[] }[] {
  return Object.entries(spec.paths).flatMap(([template, ops]) =>
    Object.keys(ops).map((m) => ({ template, method: m.toUpperCase(), statuses: documentedStatuses(template, m) })),
  );
}

export interface LiveResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** Every validated (template, method, status), for the "all documented statuses seen" check. */
export const observed = new Set<string>();

/**
 * Fails unless the status is one the contract documents for this operation,
 * the body is JSON and it matches the response schema.
 */
export function assertContract(template: string, method: string, res: LiveResponse): void {
  const op = spec.paths[template]?.[method.toLowerCase()];
  if (!op) throw new Error(`contract has no ${method} ${template}`);
  const documented = op.responses[String(res.status)];
  if (!documented) {
    throw new Error(`${method} ${template} answered ${res.status}, which the contract does not document (${Object.keys(op.responses).join(", ")}): ${res.text}`);
  }
  const contentType = String(res.headers["content-type"] ?? "");
  if (!contentType.startsWith("application/json")) throw new Error(`${method} ${template} ${res.status}: content-type ${contentType}`);
  const key = `${method} ${template} ${res.status}`;
  let validate = validators.get(key);
  if (!validate) {
    const response = resolveResponse(documented);
    const content = response.content as JsonObject | undefined;
    const media = content?.["application/json"] as JsonObject | undefined;
    if (!media?.schema) throw new Error(`contract: ${key} has no application/json schema`);
    validate = ajv.compile(toJsonSchema(media.schema) as object);
    validators.set(key, validate);
  }
  if (!validate(res.json)) {
    throw new Error(`${key} body does not match the contract: ${ajv.errorsText(validate.errors)}\n${res.text}`);
  }
  observed.add(key);
}

/** Validates against one named component schema (e.g. ErrorResponse) for answers outside the contract's paths. */
export function assertSchema(name: string, value: unknown): void {
  const validate = ajv.getSchema(`contract#/definitions/${name}`);
  if (!validate) throw new Error(`contract has no schema ${name}`);
  if (!validate(value)) throw new Error(`${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given: no normalisation of '..' or escapes. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** node:http rather than fetch, so the request target and the headers go out byte for byte. */
export function rawRequest(baseUrl: string, req: RawRequest): Promise<LiveResponse> {
  const url = new URL(baseUrl);
  // node:http frames DELETE bodies only when told the length (it does not chunk them by default).
  const headers = req.body === undefined ? req.headers : { "content-length": String(Buffer.byteLength(req.body)), ...req.headers };
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
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
    r.on("error", reject);
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
