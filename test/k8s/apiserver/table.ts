/**
 * Server-side printing of custom resources, as `kubectl get` asks for it
 * (Accept: application/json;as=Table;v=v1;g=meta.k8s.io): a meta.k8s.io/v1
 * Table with Name and the CRD's additionalPrinterColumns, each cell the
 * column's JSONPath on the object (apiextensions-apiserver
 * pkg/registry/customresource/tableconvertor ConvertToTable; a `date` column
 * printed as an age, as its cells go through translateTimestampSince). Only
 * the JSONPath forms CRDs use here: `.a.b` and `.a[?(@.k=="v")].b`.
 * Built-in kinds are answered as plain objects (kubectl then prints NAME and
 * AGE, where a real server has richer columns).
 */
import { RESOURCES } from "./resources.js";
import type { ObjectStore } from "./store.js";
import type { Obj, ResourceDef } from "./types.js";

interface Column {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

export const wantsTable = (accept: string | undefined): boolean => /as=Table/.test(accept ?? "");

function columnsOf(store: ObjectStore, def: ResourceDef): Column[] | null {
  const crd = store.all(RESOURCES.customresourcedefinitions).find((o) => {
    const spec = o.spec as { group?: string; names?: { plural?: string } };
    return spec.group === def.group && spec.names?.plural === def.plural;
  });
  if (!crd) return null;
  const versions = ((crd.spec as { versions?: { name: string; additionalPrinterColumns?: Column[] }[] }).versions ?? []).find((v) => v.name === def.version);
  return versions?.additionalPrinterColumns ?? [];
}

/** `.a.b[?(@.k=="v")].c` on one object: the first match, or undefined. */
export function jsonPath(obj: unknown, path: string): unknown {
  const steps = path.match(/\.[A-Za-z0-9_-]+|\[\?\(@\.[A-Za-z0-9_-]+=="[^"]*"\)\]/g) ?? [];
  let cur: unknown = obj;
  for (const step of steps) {
    if (cur === undefined || cur === null) return undefined;
    if (step.startsWith(".")) cur = (cur as Record<string, unknown>)[step.slice(1)];
    else {
      const [, key, value] = /^\[\?\(@\.([A-Za-z0-9_-]+)=="([^"]*)"\)\]$/.exec(step)!;
      cur = Array.isArray(cur) ? cur.find((e) => (e as Record<string, unknown> | null)?.[key!] === value) : undefined;
    }
  }
  return cur;
}

/** apimachinery util/duration HumanDuration, to the precision kubectl shows ages in. */
function age(iso: string): string {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h` : `${Math.floor(h / 24)}d`;
}

function cell(obj: Obj, column: Column): unknown {
  const v = jsonPath(obj, column.jsonPath);
  if (v === undefined || v === null) return null;
  if (column.type === "date" && typeof v === "string") return age(v);
  return typeof v === "object" ? JSON.stringify(v) : v;
}

/** The Table for `items` of a custom kind, or null when no CRD defines it (then the objects are sent as they are). */
export function toTable(store: ObjectStore, def: ResourceDef, items: Obj[], listMeta: Record<string, unknown>): Record<string, unknown> | null {
  if (!def.custom) return null;
  const columns = columnsOf(store, def);
  if (!columns) return null;
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: listMeta,
    columnDefinitions: [
      { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
      ...columns.map((c) => ({ name: c.name, type: c.type, format: "", description: c.description ?? "", priority: c.priority ?? 0 })),
    ],
    rows: items.map((o) => ({
      cells: [o.metadata.name, ...columns.map((c) => cell(o, c))],
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata },
    })),
  };
}
