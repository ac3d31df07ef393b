/**
 * A small Kubernetes API server for tests (no real one can run on CI
 * machines). It honours what rtmanager relies on, and nothing more:
 *
 * - gameruntimes.galaxy.io/v1alpha1 (namespaced, status subresource),
 *   coordination.k8s.io/v1 leases, core/v1 events;
 * - GET list (with metadata.resourceVersion; fieldSelector metadata.name /
 *   metadata.namespace), GET one, POST (409 AlreadyExists), PUT with
 *   optimistic concurrency (409 Conflict on a stale resourceVersion; custom
 *   resources must send one), PATCH application/merge-patch+json on the
 *   object and on /status (a resourceVersion in the patch is a
 *   precondition), DELETE with finalizers (deletionTimestamp set and
 *   generation bumped; the object goes when its finalizers are empty);
 * - metadata.generation bumped on spec changes only (custom resources);
 *   no-op writes change nothing (no new resourceVersion, no event);
 * - one resourceVersion counter for everything, like etcd;
 * - ?watch=true&resourceVersion=N&allowWatchBookmarks=true streaming JSON
 *   lines (ADDED/MODIFIED/DELETED/BOOKMARK), timeoutSeconds, and an event
 *   history window: a resourceVersion older than the window gets an ERROR
 *   event with a 410 Status (or HTTP 410 with `goneAsHttpStatus`).
 *
 * Test controls: dropWatches(), expireWatches(), compactHistory(),
 * sendBookmarks(), setFailNext() (a number of failures, or an outage of
 * `forMs`), beforeHandle, and direct object access.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export type Obj = Record<string, unknown> & { metadata: Meta };
export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  generateName?: string;
  [key: string]: unknown;
}

interface ResourceDef {
  key: string;
  group: string;
  version: string;
  plural: string;
  kind: string;
  listKind: string;
  statusSubresource: boolean;
  /** Custom resources: generation tracks the spec, updates need a resourceVersion. */
  custom: boolean;
}

export const RESOURCES: Record<"gameruntimes" | "leases" | "events", ResourceDef> = {
  gameruntimes: {
    key: "gameruntimes",
    group: "galaxy.io",
    version: "v1alpha1",
    plural: "gameruntimes",
    kind: "GameRuntime",
    listKind: "GameRuntimeList",
    statusSubresource: true,
    custom: true,
  },
  leases: {
    key: "leases",
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    kind: "Lease",
    listKind: "LeaseList",
    statusSubresource: false,
    custom: false,
  },
  events: { key: "events", group: "", version: "v1", plural: "events", kind: "Event", listKind: "EventList", statusSubresource: false, custom: false },
};
export type ResourceName = keyof typeof RESOURCES;

export interface FakeRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  body: unknown;
}

export interface FailSpec {
  method?: string;
  /** Substring of the path, or a RegExp. */
  path?: string | RegExp;
  /** Only watch requests (true) or only non-watch requests (false). */
  watch?: boolean;
  status: number;
  /** How many matching requests fail; default 1, or unlimited with `forMs`. */
  count?: number;
  /** Fail matching requests for this long (an outage), then answer normally again. */
  forMs?: number;
  reason?: string;
  message?: string;
}

export interface FakeApiServerOptions {
  /** Watch events kept for resumption; older resourceVersions are 410 Gone. Default 1000. */
  historyLimit?: number;
  /** Send BOOKMARKs to watchers that asked for them this often (0: only on sendBookmarks()). */
  bookmarkIntervalMs?: number;
  /** Answer an expired watch with HTTP 410 instead of a 200 stream with an ERROR event. */
  goneAsHttpStatus?: boolean;
}

interface HistoryEntry {
  rv: number;
  resource: string;
  namespace: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: Obj;
}

interface Watcher {
  resource: string;
  namespace: string | undefined;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer: NodeJS.Timeout | null;
  /** Request's starting resourceVersion, for tests. */
  from: string;
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const clone = <T>(v: T): T => structuredClone(v);
const nowTime = () => new Date().toISOString().replace(/\.\d{3}Z$/, "Z");

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Everything but metadata and status: what a custom resource's generation tracks. */
function specPart(o: Obj): string {
  const { metadata: _m, status: _s, ...rest } = o;
  return stable(rest);
}

function withoutRv(o: Obj): string {
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = o.metadata;
  return stable({ ...o, metadata: meta });
}

export class FakeApiServer {
  readonly url: string;
  /** Every request, in order (method, path, query), for assertions. */
  readonly requests: { method: string; path: string; query: Record<string, string> }[] = [];
  /** Runs before each request is handled (after its body was read). */
  beforeHandle: ((req: FakeRequest) => void | Promise<void>) | null = null;

  private rv = 1;
  private compactedRv = 0;
  private readonly store = new Map<string, Map<string, Obj>>();
  private history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private failures: (FailSpec & { left: number; until: number })[] = [];
  private bookmarkTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly server: http.Server,
    private readonly options: FakeApiServerOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    for (const r of Object.values(RESOURCES)) this.store.set(r.key, new Map());
    if (options.bookmarkIntervalMs) this.bookmarkTimer = setInterval(() => this.sendBookmarks(), options.bookmarkIntervalMs);
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    let self: FakeApiServer | null = null;
    const server = http.createServer((req, res) => {
      if (!self) {
        res.writeHead(503).end();
        return;
      }
      void self.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self = new FakeApiServer(server, options);
    return self;
  }

  async stop(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    for (const w of this.watchers) this.endWatcher(w, false);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------------------------------------------------------------- controls

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Open watch connections (optionally of one resource). */
  watchCount(resource?: ResourceName): number {
    return [...this.watchers].filter((w) => !resource || w.resource === resource).length;
  }

  /** Ends every open watch: abruptly (socket destroyed, the default) or cleanly (stream ended). */
  dropWatches(options: { graceful?: boolean } = {}): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) this.endWatcher(w, !options.graceful);
    return n;
  }

  /** Sends an ERROR event with a 410 Status to every open watch and ends it, as a lagging watch cache does. */
  expireWatches(): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) {
      this.writeLine(w, { type: "ERROR", object: this.status(410, "Expired", `too old resource version: ${w.from} (${this.rv})`) });
      this.endWatcher(w, false);
    }
    return n;
  }

  /** Forgets all watch history: watching from any resourceVersion below the current one is 410 Gone. */
  compactHistory(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** A BOOKMARK with the current resourceVersion to every watcher that allowed them. */
  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const def = RESOURCES[w.resource as ResourceName];
      this.writeLine(w, {
        type: "BOOKMARK",
        object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.rv) } },
      });
    }
  }

  /** The next `count` requests matching `spec` fail with `status` (or every one for `forMs`). */
  setFailNext(spec: FailSpec): void {
    const until = spec.forMs !== undefined ? Date.now() + spec.forMs : Infinity;
    this.failures.push({ ...spec, left: spec.count ?? (spec.forMs !== undefined ? Infinity : 1), until });
  }

  clearFailures(): void {
    this.failures = [];
  }

  get(resource: ResourceName, namespace: string, name: string): Obj | undefined {
    const o = this.store.get(resource)!.get(`${namespace}/${name}`);
    return o ? clone(o) : undefined;
  }

  list(resource: ResourceName, namespace?: string): Obj[] {
    return [...this.store.get(resource)!.values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace).map(clone);
  }

  /** Creates an object as another client would (kubectl apply). */
  create(resource: ResourceName, namespace: string, obj: Record<string, unknown> & { metadata: Meta }): Obj {
    return clone(this.doCreate(RESOURCES[resource], namespace, clone(obj)));
  }

  /** Changes an object as another client would (kubectl edit): the change goes through the same rules as a PUT. */
  update(resource: ResourceName, namespace: string, name: string, change: (o: Obj) => void): Obj {
    const def = RESOURCES[resource];
    const existing = this.mustGet(def, namespace, name);
    const next = clone(existing);
    change(next);
    return clone(this.commit(def, existing, this.keepImmutable(def, existing, next, "main")));
  }

  /** Writes an object's status as another client would (PUT /status), without going through HTTP. */
  setStatus(resource: ResourceName, namespace: string, name: string, status: unknown): Obj {
    const def = RESOURCES[resource];
    const existing = this.mustGet(def, namespace, name);
    const next = clone(existing);
    next.status = clone(status);
    return clone(this.commit(def, existing, this.keepImmutable(def, existing, next, def.statusSubresource ? "status" : "main")));
  }

  /**
   * The RBAC verbs the requests so far needed, as `group/resource verb` (a
   * subresource as `resource/sub`), with the object name for named requests:
   * GET one = get, GET a collection = list (watch=true: watch), POST = create,
   * PUT = update, PATCH = patch, DELETE = delete.
   */
  verbsUsed(since = 0): { group: string; resource: string; verb: string; name?: string }[] {
    const out = new Map<string, { group: string; resource: string; verb: string; name?: string }>();
    for (const q of this.requests.slice(since)) {
      const parsed = parsePath(q.path);
      if (!parsed) continue;
      const { def, name, subresource } = parsed;
      const watch = q.query.watch === "true" || q.query.watch === "1";
      const verb =
        q.method === "GET" ? (name ? "get" : watch ? "watch" : "list") : ({ POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" } as Record<string, string>)[q.method];
      if (!verb) continue;
      const resource = subresource ? `${def.plural}/${subresource}` : def.plural;
      const entry = { group: def.group, resource, verb, ...(name && verb !== "create" ? { name } : {}) };
      out.set(JSON.stringify(entry), entry);
    }
    return [...out.values()];
  }

  /** DELETE as another client would. */
  remove(resource: ResourceName, namespace: string, name: string): Obj | null {
    return this.doDelete(RESOURCES[resource], namespace, name);
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? "/", "http://fake");
      const method = req.method ?? "GET";
      const query = url.searchParams;
      this.requests.push({ method, path: url.pathname, query: Object.fromEntries(query) });
      const raw = await readBody(req);
      let body: unknown = undefined;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw);
        } catch {
          throw new HttpError(400, "BadRequest", "body is not JSON");
        }
      }
      const isWatch = query.get("watch") === "true" || query.get("watch") === "1";
      const now = Date.now();
      this.failures = this.failures.filter((f) => f.left > 0 && now < f.until);
      const failure = this.failures.find(
        (f) =>
          (!f.method || f.method === method) &&
          (f.watch === undefined || f.watch === isWatch) &&
          (!f.path || (typeof f.path === "string" ? url.pathname.includes(f.path) : f.path.test(url.pathname))),
      );
      if (failure) {
        failure.left--;
        this.failures = this.failures.filter((f) => f.left > 0);
        throw new HttpError(failure.status, failure.reason ?? "InternalError", failure.message ?? `injected failure ${failure.status}`);
      }
      await this.beforeHandle?.({ method, path: url.pathname, query, contentType: req.headers["content-type"], body });
      this.route(method, url.pathname, query, req.headers["content-type"], body, res, isWatch);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, "InternalError", (err as Error).message);
      if (!res.headersSent) this.send(res, e.code, this.status(e.code, e.reason, e.message));
      else res.destroy();
    }
  }

  private route(method: string, path: string, query: URLSearchParams, contentType: string | undefined, body: unknown, res: http.ServerResponse, isWatch: boolean): void {
    const parsed = parsePath(path);
    if (!parsed) throw new HttpError(404, "NotFound", `the server could not find the requested resource (${path})`);
    const { def, namespace, name, subresource } = parsed;
    if (subresource && (subresource !== "status" || !def.statusSubresource)) throw new HttpError(404, "NotFound", `no subresource ${subresource}`);

    if (!name) {
      if (method === "GET" && isWatch) return this.startWatch(def, namespace, query, res);
      if (method === "GET") return this.send(res, 200, this.listBody(def, namespace, query.get("fieldSelector")));
      if (method === "POST") {
        if (!namespace) throw new HttpError(405, "MethodNotAllowed", "create needs a namespace");
        return this.send(res, 201, this.doCreate(def, namespace, body as Obj));
      }
      throw new HttpError(405, "MethodNotAllowed", `${method} on a collection`);
    }
    if (!namespace) throw new HttpError(404, "NotFound", "namespaced resource without namespace");

    switch (method) {
      case "GET":
        return this.send(res, 200, this.mustGet(def, namespace, name));
      case "PUT": {
        const existing = this.mustGet(def, namespace, name);
        const next = body as Obj;
        if (!next || typeof next !== "object" || !next.metadata) throw new HttpError(400, "BadRequest", "body must be an object with metadata");
        if (next.metadata.name && next.metadata.name !== name) throw new HttpError(400, "BadRequest", "the name of the object does not match the name on the URL");
        const rv = next.metadata.resourceVersion;
        if (!rv && def.custom) throw new HttpError(422, "Invalid", `${def.kind}.${def.group} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`);
        if (rv && rv !== existing.metadata.resourceVersion) throw this.conflict(def, name);
        return this.send(res, 200, this.commit(def, existing, this.keepImmutable(def, existing, clone(next), subresource ? "status" : "main")));
      }
      case "PATCH": {
        const type = (contentType ?? "").split(";")[0]!.trim();
        if (type !== "application/merge-patch+json") throw new HttpError(415, "UnsupportedMediaType", `the fake API server only does merge patches, not ${type}`);
        const existing = this.mustGet(def, namespace, name);
        const patch = body as { metadata?: { resourceVersion?: string } } | undefined;
        const rv = patch?.metadata?.resourceVersion;
        if (rv && rv !== existing.metadata.resourceVersion) throw this.conflict(def, name);
        const patched = mergePatch(clone(existing), body) as Obj;
        return this.send(res, 200, this.commit(def, existing, this.keepImmutable(def, existing, patched, subresource ? "status" : "main")));
      }
      case "DELETE": {
        const result = this.doDelete(def, namespace, name);
        if (!result) throw new HttpError(404, "NotFound", `${def.plural}.${def.group} "${name}" not found`);
        return this.send(res, 200, result);
      }
    }
    throw new HttpError(405, "MethodNotAllowed", method);
  }

  private conflict(def: ResourceDef, name: string): HttpError {
    return new HttpError(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${def.plural}${def.group ? `.${def.group}` : ""} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    );
  }

  private mustGet(def: ResourceDef, namespace: string, name: string): Obj {
    const o = this.store.get(def.key)!.get(`${namespace}/${name}`);
    if (!o) throw new HttpError(404, "NotFound", `${def.plural}${def.group ? `.${def.group}` : ""} "${name}" not found`);
    return o;
  }

  private listBody(def: ResourceDef, namespace: string | undefined, fieldSelector: string | null): Record<string, unknown> {
    const fields: [string, string][] = (fieldSelector ?? "")
      .split(",")
      .filter(Boolean)
      .map((s) => {
        const [k, v] = s.split("=");
        return [k!.trim(), (v ?? "").trim()];
      });
    const items = [...this.store.get(def.key)!.values()].filter((o) => {
      if (namespace && o.metadata.namespace !== namespace) return false;
      for (const [k, v] of fields) {
        if (k === "metadata.name" && o.metadata.name !== v) return false;
        if (k === "metadata.namespace" && o.metadata.namespace !== v) return false;
      }
      return true;
    });
    return { apiVersion: apiVersionOf(def), kind: def.listKind, metadata: { resourceVersion: String(this.rv) }, items: items.map(clone) };
  }

  private doCreate(def: ResourceDef, namespace: string, body: Obj): Obj {
    if (!body || typeof body !== "object" || !body.metadata) throw new HttpError(400, "BadRequest", "body must be an object with metadata");
    const meta = body.metadata;
    if (meta.namespace && meta.namespace !== namespace) throw new HttpError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL");
    const name = meta.name || (meta.generateName ? `${meta.generateName}${randomUUID().slice(0, 5)}` : "");
    if (!name) throw new HttpError(422, "Invalid", "metadata.name: Required value");
    const items = this.store.get(def.key)!;
    if (items.has(`${namespace}/${name}`)) {
      throw new HttpError(409, "AlreadyExists", `${def.plural}${def.group ? `.${def.group}` : ""} "${name}" already exists`);
    }
    const obj: Obj = {
      ...clone(body),
      apiVersion: apiVersionOf(def),
      kind: def.kind,
      metadata: {
        ...clone(meta),
        name,
        namespace,
        uid: randomUUID(),
        creationTimestamp: nowTime(),
        resourceVersion: String(++this.rv),
        ...(def.custom ? { generation: 1 } : {}),
      },
    };
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.generateName;
    if (def.statusSubresource) delete obj.status;
    items.set(`${namespace}/${name}`, obj);
    this.publish(def, "ADDED", obj);
    return obj;
  }

  /** What a write may not change: identity and server-owned metadata; status (or all but status) per endpoint. */
  private keepImmutable(def: ResourceDef, existing: Obj, next: Obj, endpoint: "main" | "status"): Obj {
    if (def.statusSubresource) {
      if (endpoint === "main") {
        if (existing.status === undefined) delete next.status;
        else next.status = clone(existing.status);
      } else {
        const status = next.status;
        next = clone(existing);
        if (status === undefined) delete next.status;
        else next.status = status;
      }
    }
    next.apiVersion = existing.apiVersion;
    next.kind = existing.kind;
    const meta: Meta = { ...(next.metadata ?? {}), name: existing.metadata.name };
    meta.namespace = existing.metadata.namespace;
    meta.uid = existing.metadata.uid;
    meta.creationTimestamp = existing.metadata.creationTimestamp;
    meta.generation = existing.metadata.generation;
    meta.resourceVersion = existing.metadata.resourceVersion;
    if (existing.metadata.deletionTimestamp) meta.deletionTimestamp = existing.metadata.deletionTimestamp;
    else delete meta.deletionTimestamp;
    for (const k of Object.keys(meta)) if (meta[k] === undefined) delete meta[k];
    next.metadata = meta;
    return next;
  }

  /** Stores an update: new resourceVersion, generation on spec change, deletion when the last finalizer goes. */
  private commit(def: ResourceDef, existing: Obj, next: Obj): Obj {
    const key = `${existing.metadata.namespace}/${existing.metadata.name}`;
    if (def.custom && specPart(existing) !== specPart(next)) next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
    if (withoutRv(existing) === withoutRv(next)) return existing;
    next.metadata.resourceVersion = String(++this.rv);
    const items = this.store.get(def.key)!;
    if (next.metadata.deletionTimestamp && (next.metadata.finalizers ?? []).length === 0) {
      items.delete(key);
      this.publish(def, "DELETED", next);
      return next;
    }
    items.set(key, next);
    this.publish(def, "MODIFIED", next);
    return next;
  }

  private doDelete(def: ResourceDef, namespace: string, name: string): Obj | null {
    const items = this.store.get(def.key)!;
    const existing = items.get(`${namespace}/${name}`);
    if (!existing) return null;
    if ((existing.metadata.finalizers ?? []).length > 0) {
      if (existing.metadata.deletionTimestamp) return clone(existing);
      const next = clone(existing);
      next.metadata.deletionTimestamp = nowTime();
      // Like the API server: the first graceful deletion bumps the generation, since the controller's job changed.
      if (def.custom) next.metadata.generation = (existing.metadata.generation ?? 1) + 1;
      next.metadata.resourceVersion = String(++this.rv);
      items.set(`${namespace}/${name}`, next);
      this.publish(def, "MODIFIED", next);
      return clone(next);
    }
    items.delete(`${namespace}/${name}`);
    const gone = clone(existing);
    gone.metadata.resourceVersion = String(++this.rv);
    this.publish(def, "DELETED", gone);
    return gone;
  }

  // ---------------------------------------------------------------- watch

  private publish(def: ResourceDef, type: HistoryEntry["type"], obj: Obj): void {
    const entry: HistoryEntry = { rv: Number(obj.metadata.resourceVersion), resource: def.key, namespace: obj.metadata.namespace ?? "", type, object: clone(obj) };
    this.history.push(entry);
    const limit = this.options.historyLimit ?? 1000;
    while (this.history.length > limit) {
      const dropped = this.history.shift()!;
      this.compactedRv = Math.max(this.compactedRv, dropped.rv);
    }
    for (const w of this.watchers) {
      if (w.resource === def.key && (!w.namespace || w.namespace === entry.namespace)) this.writeLine(w, { type, object: entry.object });
    }
  }

  private startWatch(def: ResourceDef, namespace: string | undefined, query: URLSearchParams, res: http.ServerResponse): void {
    const from = query.get("resourceVersion") ?? "";
    const n = Number(from);
    const replayAll = from === "" || from === "0";
    if (!replayAll && (!Number.isInteger(n) || n < this.compactedRv)) {
      const gone = this.status(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`);
      if (this.options.goneAsHttpStatus) return this.send(res, 410, gone);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(`${JSON.stringify({ type: "ERROR", object: gone })}\n`);
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = { resource: def.key, namespace, bookmarks: query.get("allowWatchBookmarks") === "true", res, timer: null, from };
    this.watchers.add(w);
    res.on("close", () => this.endWatcher(w, false));
    const matches = (ns: string) => !namespace || ns === namespace;
    if (replayAll) {
      for (const o of this.store.get(def.key)!.values()) if (matches(o.metadata.namespace ?? "")) this.writeLine(w, { type: "ADDED", object: o });
    } else {
      for (const e of this.history) if (e.rv > n && e.resource === def.key && matches(e.namespace)) this.writeLine(w, { type: e.type, object: e.object });
    }
    const timeout = Number(query.get("timeoutSeconds") ?? "0");
    if (timeout > 0) w.timer = setTimeout(() => this.endWatcher(w, false), timeout * 1000);
  }

  private writeLine(w: Watcher, event: unknown): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify(event)}\n`);
  }

  private endWatcher(w: Watcher, abrupt: boolean): void {
    if (!this.watchers.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (abrupt) w.res.socket?.destroy();
    else if (!w.res.writableEnded) w.res.end();
  }

  // ---------------------------------------------------------------- util

  private status(code: number, reason: string, message: string): Record<string, unknown> {
    return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
  }

  private send(res: http.ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }
}

function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

function parsePath(path: string): { def: ResourceDef; namespace?: string; name?: string; subresource?: string } | null {
  const parts = path.split("/").filter(Boolean);
  let rest: string[];
  let group: string;
  let version: string;
  if (parts[0] === "api") {
    group = "";
    version = parts[1] ?? "";
    rest = parts.slice(2);
  } else if (parts[0] === "apis") {
    group = parts[1] ?? "";
    version = parts[2] ?? "";
    rest = parts.slice(3);
  } else return null;
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const def = Object.values(RESOURCES).find((r) => r.group === group && r.version === version && r.plural === rest[0]);
  if (!def || rest.length > 3) return null;
  return { def, namespace, name: rest[1], subresource: rest[2] };
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
