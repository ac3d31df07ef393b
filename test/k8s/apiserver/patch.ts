/**
 * The three PATCH content types: RFC 7386 merge patch, RFC 6902 JSON patch,
 * and the subset of Kubernetes strategic merge patch that core/v1 objects
 * need (lists merged by their patchMergeKey, `$patch: delete|replace`,
 * `$deleteFromPrimitiveList/<field>`; `$setElementOrder` and `$retainKeys`
 * are accepted and ignored).
 */
import { HttpError, clone } from "./types.js";

type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return clone(patch);
  const out: Json = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * patchMergeKey of the core/v1 lists (from the `patchMergeKey` struct tags in
 * k8s.io/api/core/v1/types.go), by dotted path without list indices. Lists
 * not named here are replaced whole, as the real server does.
 */
const MERGE_KEYS: Record<string, string> = {
  "metadata.ownerReferences": "uid",
  "spec.containers": "name",
  "spec.initContainers": "name",
  "spec.ephemeralContainers": "name",
  "spec.volumes": "name",
  "spec.imagePullSecrets": "name",
  "spec.containers.ports": "containerPort",
  "spec.containers.env": "name",
  "spec.containers.volumeMounts": "mountPath",
  "spec.initContainers.env": "name",
  "spec.initContainers.volumeMounts": "mountPath",
  "spec.ports": "port",
  "status.conditions": "type",
  "status.addresses": "type",
};
/** Lists of scalars merged as sets (patchStrategy:"merge" without a key). */
const PRIMITIVE_MERGE = new Set(["metadata.finalizers"]);

export function strategicMergePatch(target: unknown, patch: unknown, path = ""): unknown {
  if (!isMap(patch)) return clone(patch);
  if (patch.$patch === "replace") {
    const { $patch: _p, ...rest } = patch;
    return clone(rest);
  }
  if (patch.$patch === "delete") return undefined;
  const out: Json = isMap(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$setElementOrder/") || k === "$retainKeys" || k === "$patch") continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      const drop = new Set((v as unknown[]).map((x) => JSON.stringify(x)));
      if (Array.isArray(out[field])) out[field] = (out[field] as unknown[]).filter((x) => !drop.has(JSON.stringify(x)));
      continue;
    }
    if (k.startsWith("$")) throw new HttpError(400, "BadRequest", `unknown patch directive ${k}`);
    const childPath = path ? `${path}.${k}` : k;
    if (v === null) delete out[k];
    else if (Array.isArray(v)) out[k] = mergeList(out[k], v, childPath);
    else {
      const merged = strategicMergePatch(out[k], v, childPath);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  return out;
}

function mergeList(target: unknown, patch: unknown[], path: string): unknown[] {
  const current = Array.isArray(target) ? target : [];
  if (PRIMITIVE_MERGE.has(path)) {
    const seen = new Set(current.map((x) => JSON.stringify(x)));
    return [...current, ...patch.filter((x) => !seen.has(JSON.stringify(x)))];
  }
  const key = MERGE_KEYS[path];
  if (!key) return clone(patch.filter((x) => !(isMap(x) && x.$patch)));
  if (patch.some((x) => isMap(x) && x.$patch === "replace")) return clone(patch.filter((x) => !(isMap(x) && x.$patch === "replace")));
  const out = [...current];
  for (const item of patch) {
    if (!isMap(item) || item[key] === undefined) throw new HttpError(400, "BadRequest", `map: ${JSON.stringify(item)} does not contain declared merge key: ${key}`);
    const at = out.findIndex((x) => isMap(x) && x[key] === item[key]);
    if (item.$patch === "delete") {
      if (at >= 0) out.splice(at, 1);
      continue;
    }
    if (at >= 0) out[at] = strategicMergePatch(out[at], item, path);
    else out.push(strategicMergePatch({}, item, path));
  }
  return out;
}

interface JsonPatchOp {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

/** RFC 6902 JSON patch: add, remove, replace, test, move, copy. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new HttpError(400, "BadRequest", "a JSON patch must be an array of operations");
  let doc = clone(target);
  for (const op of ops as JsonPatchOp[]) {
    switch (op.op) {
      case "add":
        doc = setAt(doc, pointer(op.path), clone(op.value), "add");
        break;
      case "replace":
        doc = setAt(doc, pointer(op.path), clone(op.value), "replace");
        break;
      case "remove":
        doc = setAt(doc, pointer(op.path), undefined, "remove");
        break;
      case "test":
        if (JSON.stringify(getAt(doc, pointer(op.path))) !== JSON.stringify(op.value))
          throw new HttpError(422, "Invalid", `the server rejected our request due to an error in our request: test failed at ${op.path}`);
        break;
      case "move":
      case "copy": {
        const from = pointer(op.from ?? "");
        const value = clone(getAt(doc, from));
        if (op.op === "move") doc = setAt(doc, from, undefined, "remove");
        doc = setAt(doc, pointer(op.path), value, "add");
        break;
      }
      default:
        throw new HttpError(400, "BadRequest", `unknown JSON patch op ${op.op}`);
    }
  }
  return doc;
}

function pointer(p: string): string[] {
  if (p === "") return [];
  if (!p.startsWith("/")) throw new HttpError(400, "BadRequest", `bad JSON pointer ${p}`);
  return p
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function getAt(doc: unknown, parts: string[]): unknown {
  let cur = doc;
  for (const part of parts) {
    if (cur === null || typeof cur !== "object") throw new HttpError(422, "Invalid", `path not found: /${parts.join("/")}`);
    cur = (cur as Json)[part];
  }
  return cur;
}

function setAt(doc: unknown, parts: string[], value: unknown, mode: "add" | "replace" | "remove"): unknown {
  if (parts.length === 0) return value;
  const parent = getAt(doc, parts.slice(0, -1));
  const last = parts[parts.length - 1]!;
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length) throw new HttpError(422, "Invalid", `bad array index ${last}`);
    if (mode === "add") parent.splice(i, 0, value);
    else if (mode === "replace") parent[i] = value;
    else parent.splice(i, 1);
  } else if (isMap(parent)) {
    if (mode !== "add" && !(last in parent)) throw new HttpError(422, "Invalid", `path not found: /${parts.join("/")}`);
    if (mode === "remove") delete parent[last];
    else parent[last] = value;
  } else throw new HttpError(422, "Invalid", `path not found: /${parts.join("/")}`);
  return doc;
}
