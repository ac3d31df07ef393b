/** labelSelector and fieldSelector query parameters, parsed once into predicates. */
import { HttpError, type Obj, type ResourceDef } from "./types.js";

export type Predicate = (o: Obj) => boolean;

interface Requirement {
  key: string;
  op: "=" | "!=" | "in" | "notin" | "exists" | "!exists";
  values: string[];
}

/** Splits on commas that are not inside a `(...)` set. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of s) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

function parseRequirement(term: string): Requirement {
  const set = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (set) return { key: set[1]!, op: set[2] as "in" | "notin", values: set[3]!.split(",").map((v) => v.trim()).filter(Boolean) };
  const cmp = /^([^=!\s]+)\s*(==|!=|=)\s*(\S*)$/.exec(term);
  if (cmp) return { key: cmp[1]!, op: cmp[2] === "!=" ? "!=" : "=", values: [cmp[3]!] };
  if (/^![^=!\s()]+$/.test(term)) return { key: term.slice(1), op: "!exists", values: [] };
  if (/^[^=!\s()]+$/.test(term)) return { key: term, op: "exists", values: [] };
  throw new HttpError(400, "BadRequest", `unable to parse requirement: ${term}`);
}

function matches(req: Requirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, req.key);
  const v = labels[req.key];
  switch (req.op) {
    case "=":
      return has && v === req.values[0];
    case "!=":
      return !has || v !== req.values[0];
    case "in":
      return has && req.values.includes(v!);
    case "notin":
      return !has || !req.values.includes(v!);
    case "exists":
      return has;
    case "!exists":
      return !has;
  }
}

export function labelPredicate(selector: string | null): Predicate | null {
  if (!selector) return null;
  const reqs = splitTerms(selector).map(parseRequirement);
  return (o) => reqs.every((r) => matches(r, o.metadata.labels ?? {}));
}

/** Field selectors accept only the fields the resource registers; anything else is a 400 as on a real server. */
export function fieldPredicate(def: ResourceDef, selector: string | null): Predicate | null {
  if (!selector) return null;
  const getters: Record<string, (o: Obj) => string> = {
    "metadata.name": (o) => o.metadata.name,
    "metadata.namespace": (o) => o.metadata.namespace ?? "",
    ...def.fields,
  };
  const checks = splitTerms(selector).map((term) => {
    const m = /^([^=!\s]+)\s*(==|!=|=)\s*(.*)$/.exec(term);
    if (!m) throw new HttpError(400, "BadRequest", `invalid field selector: ${term}`);
    const get = getters[m[1]!];
    if (!get) throw new HttpError(400, "BadRequest", `field label not supported: ${m[1]}`);
    const want = m[3]!.trim();
    const negate = m[2] === "!=";
    return (o: Obj) => (get(o) === want) !== negate;
  });
  return (o) => checks.every((c) => c(o));
}

export function combine(...ps: (Predicate | null)[]): Predicate {
  const active = ps.filter((p): p is Predicate => p !== null);
  return (o) => active.every((p) => p(o));
}
