/** The HTTP face of the test API server: failure injection, routing, list, watch, writes and pod logs. */
import type http from "node:http";
import type { Readable } from "node:stream";
import type { Deleter, DeleteOptions, PropagationPolicy } from "./deletion.js";
import { serveDiscovery } from "./discovery.js";
import { jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
import { PROTOBUF, decodeProtobuf } from "./protobuf.js";
import { apiVersionOf, parsePath } from "./resources.js";
import { combine, fieldPredicate, labelPredicate } from "./selectors.js";
import { toTable, wantsTable } from "./table.js";
import type { ObjectStore } from "./store.js";
import { HttpError, clone, conflict, statusBody, type FailSpec, type FakeRequest, type Obj, type ResourceDef } from "./types.js";
import type { WatchHub } from "./watch.js";

export interface LogOptions {
  container: string;
  follow: boolean;
  tailLines?: number;
  previous: boolean;
  timestamps: boolean;
}
/** Where /pods/{name}/log reads from: the kubelet running the pod. Throws an HttpError when there is nothing to read. */
export type LogSource = (pod: Obj, options: LogOptions) => Promise<Readable>;

export interface HttpContext {
  store: ObjectStore;
  deleter: Deleter;
  watches: WatchHub;
  requests: { method: string; path: string; query: Record<string, string> }[];
  failures: (FailSpec & { left: number; until: number })[];
  beforeHandle: ((req: FakeRequest) => void | Promise<void>) | null;
  logSource: LogSource | null;
  /** The scheduler's binding (POST pods/{name}/binding). */
  bind: (namespace: string, name: string, node: string) => Obj;
}

export async function handleRequest(ctx: HttpContext, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const query = url.searchParams;
    ctx.requests.push({ method, path: url.pathname, query: Object.fromEntries(query) });
    const rawBytes = await readBody(req);
    const raw = rawBytes.toString("utf8");
    let body: unknown = undefined;
    if (rawBytes.length > 0 && (req.headers["content-type"] ?? "").startsWith(PROTOBUF)) body = decodeProtobuf(rawBytes);
    else if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        throw new HttpError(400, "BadRequest", "body is not JSON");
      }
    }
    const isWatch = query.get("watch") === "true" || query.get("watch") === "1";
    injectFailure(ctx, method, url.pathname, isWatch);
    const clientGone = new Promise<void>((resolve) => res.once("close", () => !res.writableEnded && resolve()));
    await ctx.beforeHandle?.({ method, path: url.pathname, query, contentType: req.headers["content-type"], body, clientGone });
    await route(ctx, { method, path: url.pathname, query, contentType: req.headers["content-type"], accept: req.headers.accept, body }, res, isWatch);
  } catch (err) {
    const e = err instanceof HttpError ? err : new HttpError(500, "InternalError", (err as Error).message);
    if (!res.headersSent) send(res, e.code, statusBody(e.code, e.reason, e.message));
    else res.destroy();
  }
}

function injectFailure(ctx: HttpContext, method: string, path: string, isWatch: boolean): void {
  const now = Date.now();
  const live = ctx.failures.filter((f) => f.left > 0 && now < f.until);
  ctx.failures.splice(0, ctx.failures.length, ...live);
  const failure = ctx.failures.find(
    (f) => (!f.method || f.method === method) && (f.watch === undefined || f.watch === isWatch) && (!f.path || (typeof f.path === "string" ? path.includes(f.path) : f.path.test(path))),
  );
  if (!failure) return;
  failure.left--;
  if (failure.left <= 0) ctx.failures.splice(ctx.failures.indexOf(failure), 1);
  throw new HttpError(failure.status, failure.reason ?? "InternalError", failure.message ?? `injected failure ${failure.status}`);
}

/**
 * `limit`/`continue` paging as the API server's storage answers a list
 * (staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go GetList): items in
 * key order (namespace/name), at most `limit` of them, and a `continue` token
 * naming the last key and the list's resourceVersion while more remain; the
 * later pages carry the first page's resourceVersion. A malformed token is 400,
 * as upstream's decodeContinue. Divergence: upstream serves every page from
 * that resourceVersion's snapshot; here later pages read the current objects
 * (a change between pages also arrives on the watch that follows the list).
 */
function page(matched: Obj[], query: URLSearchParams, currentRv: number): { metadata: Record<string, unknown>; items: Obj[] } {
  const keyOf = (o: Obj) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  // Keys built once, not in every comparison: a paged list of thousands of Pods is sorted on every request.
  const keyed = matched.map((o) => ({ key: keyOf(o), o }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const items = keyed.map((k) => k.o);
  let rv = String(currentRv);
  let rest = items;
  const token = query.get("continue");
  if (token) {
    let parsed: { rv?: unknown; start?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(token, "base64").toString("utf8")) as { rv?: unknown; start?: unknown };
    } catch {
      throw new HttpError(400, "BadRequest", "continue key is not valid: illegal base64 data");
    }
    if (typeof parsed.rv !== "string" || typeof parsed.start !== "string") throw new HttpError(400, "BadRequest", "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    rv = parsed.rv;
    const start = parsed.start;
    rest = items.filter((o) => keyOf(o) > start);
  }
  const limit = Number(query.get("limit") ?? 0);
  if (!(limit > 0) || rest.length <= limit) return { metadata: { resourceVersion: rv }, items: rest };
  const shown = rest.slice(0, limit);
  const next = Buffer.from(JSON.stringify({ rv, start: keyOf(shown[shown.length - 1]!) })).toString("base64");
  return { metadata: { resourceVersion: rv, continue: next, remainingItemCount: rest.length - limit }, items: shown };
}

async function route(ctx: HttpContext, r: FakeRequest, res: http.ServerResponse, isWatch: boolean): Promise<void> {
  const parsed = parsePath(r.path);
  if (!parsed && r.method === "GET" && serveDiscovery(ctx.store, r.path, res, send)) return;
  if (!parsed) throw new HttpError(404, "NotFound", `the server could not find the requested resource (${r.path})`);
  const { def, namespace, name, subresource } = parsed;
  const selector = () => combine(labelPredicate(r.query.get("labelSelector")), fieldPredicate(def, r.query.get("fieldSelector")));

  if (!name) {
    if (r.method === "GET" && isWatch) return ctx.watches.start(def, namespace, selector(), r.query, res);
    if (r.method === "GET") {
      const matches = selector();
      // Only the page is copied, as etcd hands back only the page: a `limit=1` list (rtmanager's ping) of a
      // namespace of 1,000 Pods used to deep-copy all of them, which at 200 pings at once held this
      // process for seconds and timed the pings out (the fleet bench's 503s).
      const listed = page(ctx.store.all(def, namespace).filter(matches), r.query, ctx.store.resourceVersion);
      const list = { ...listed, items: listed.items.map(clone) };
      const table = wantsTable(r.accept) ? toTable(ctx.store, def, list.items, list.metadata) : null;
      return send(res, 200, table ?? { apiVersion: apiVersionOf(def), kind: def.listKind, ...list });
    }
    if (r.method === "POST") return send(res, 201, ctx.store.create(def, namespace, r.body as Obj));
    throw new HttpError(405, "MethodNotAllowed", `${r.method} on a collection`);
  }
  if (def.namespaced && !namespace) throw new HttpError(404, "NotFound", "namespaced resource without namespace");
  if (subresource === "log" && def.key === "pods" && r.method === "GET") return streamLog(ctx, ctx.store.mustGet(def, namespace, name), r.query, res);
  if (subresource === "binding" && def.key === "pods" && r.method === "POST") {
    const target = (r.body as { target?: { name?: string } } | undefined)?.target?.name;
    if (!target) throw new HttpError(422, "Invalid", "Binding.target.name: Required value");
    ctx.bind(namespace!, name, target);
    return send(res, 201, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 201 });
  }
  if (subresource && (subresource !== "status" || !def.statusSubresource)) throw new HttpError(404, "NotFound", `no subresource ${subresource}`);
  const endpoint = subresource ? "status" : "main";

  switch (r.method) {
    case "GET": {
      const o = ctx.store.mustGet(def, namespace, name);
      const table = wantsTable(r.accept) ? toTable(ctx.store, def, [clone(o)], { resourceVersion: o.metadata.resourceVersion }) : null;
      return send(res, 200, table ?? o);
    }
    case "PUT":
      return send(res, 200, put(ctx, def, namespace, name, r.body, endpoint));
    case "PATCH":
      return send(res, 200, patch(ctx, def, namespace, name, r, endpoint));
    case "DELETE": {
      const result = ctx.deleter.delete(def, namespace, name, deleteOptions(r));
      if (!result) throw new HttpError(404, "NotFound", `${def.plural}${def.group ? `.${def.group}` : ""} "${name}" not found`);
      return send(res, 200, result);
    }
  }
  throw new HttpError(405, "MethodNotAllowed", r.method);
}

function put(ctx: HttpContext, def: ResourceDef, namespace: string | undefined, name: string, body: unknown, endpoint: "main" | "status"): Obj {
  const existing = ctx.store.mustGet(def, namespace, name);
  const next = body as Obj;
  if (!next || typeof next !== "object" || !next.metadata) throw new HttpError(400, "BadRequest", "body must be an object with metadata");
  if (next.metadata.name && next.metadata.name !== name) throw new HttpError(400, "BadRequest", "the name of the object does not match the name on the URL");
  const rv = next.metadata.resourceVersion;
  if (!rv && def.custom) throw new HttpError(422, "Invalid", `${def.kind}.${def.group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`);
  if (rv && rv !== existing.metadata.resourceVersion) throw conflict(def, name);
  return ctx.store.commit(def, existing, ctx.store.keepImmutable(def, existing, clone(next), endpoint));
}

const PATCHERS: Record<string, (target: unknown, patch: unknown) => unknown> = {
  "application/merge-patch+json": mergePatch,
  "application/strategic-merge-patch+json": (t, p) => strategicMergePatch(t, p),
  "application/json-patch+json": jsonPatch,
};

function patch(ctx: HttpContext, def: ResourceDef, namespace: string | undefined, name: string, r: FakeRequest, endpoint: "main" | "status"): Obj {
  const type = (r.contentType ?? "").split(";")[0]!.trim();
  const patcher = PATCHERS[type];
  if (!patcher) throw new HttpError(415, "UnsupportedMediaType", `the test API server does not do ${type} patches`);
  if (type === "application/strategic-merge-patch+json" && def.custom)
    throw new HttpError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources");
  const existing = ctx.store.mustGet(def, namespace, name);
  const patched = patcher(clone(existing), r.body) as Obj;
  const rv = Array.isArray(r.body) ? undefined : (r.body as { metadata?: { resourceVersion?: string } } | undefined)?.metadata?.resourceVersion;
  if (rv && rv !== existing.metadata.resourceVersion) throw conflict(def, name);
  return ctx.store.commit(def, existing, ctx.store.keepImmutable(def, existing, patched, endpoint));
}

function deleteOptions(r: FakeRequest): DeleteOptions {
  const body = (r.body ?? {}) as DeleteOptions;
  const grace = r.query.get("gracePeriodSeconds");
  const policy = r.query.get("propagationPolicy");
  const options: DeleteOptions = { ...body };
  if (grace !== null) options.gracePeriodSeconds = Number(grace);
  if (policy !== null) options.propagationPolicy = policy as PropagationPolicy;
  if (options.propagationPolicy && !["Orphan", "Background", "Foreground"].includes(options.propagationPolicy))
    throw new HttpError(400, "BadRequest", `invalid propagationPolicy ${options.propagationPolicy}`);
  return options;
}

async function streamLog(ctx: HttpContext, pod: Obj, query: URLSearchParams, res: http.ServerResponse): Promise<void> {
  const containers = (((pod.spec ?? {}) as { containers?: { name: string }[] }).containers ?? []).map((c) => c.name);
  const container = query.get("container") ?? (containers.length === 1 ? containers[0]! : "");
  if (!container) throw new HttpError(400, "BadRequest", `a container name must be specified for pod ${pod.metadata.name}, choose one of: [${containers.join(" ")}]`);
  if (!containers.includes(container)) throw new HttpError(400, "BadRequest", `container ${container} is not valid for pod ${pod.metadata.name}`);
  if (!ctx.logSource) throw new HttpError(400, "BadRequest", `container "${container}" in pod "${pod.metadata.name}" is waiting to start: no kubelet runs it`);
  const tail = query.get("tailLines");
  const source = await ctx.logSource(clone(pod), {
    container,
    follow: query.get("follow") === "true",
    tailLines: tail === null ? undefined : Number(tail),
    previous: query.get("previous") === "true",
    timestamps: query.get("timestamps") === "true",
  });
  const limit = query.get("limitBytes") === null ? Infinity : Number(query.get("limitBytes"));
  res.writeHead(200, { "Content-Type": "text/plain", "Transfer-Encoding": "chunked" });
  let sent = 0;
  res.on("close", () => source.destroy());
  source.on("data", (chunk: Buffer) => {
    const part = chunk.subarray(0, Math.max(0, limit - sent));
    sent += part.length;
    if (part.length > 0) res.write(part);
    if (sent >= limit) {
      source.destroy();
      res.end();
    }
  });
  source.on("end", () => res.end());
  source.on("error", () => res.end());
}

export function send(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
