/**
 * A small Kubernetes API server for tests (no real one can run on CI
 * machines). It honours what rtmanager and the test kubelet rely on, and
 * nothing more (test/k8s/README.md lists it):
 *
 * - gameruntimes.galaxy.io/v1alpha1 (status subresource), coordination.k8s.io/v1
 *   leases, core/v1 events, pods (status, log, binding), services,
 *   persistentvolumeclaims, resourcequotas (pod counts enforced on create,
 *   apiserver/quota.ts), and cluster-scoped nodes; what the documented
 *   install writes (namespaces, secrets, configmaps, serviceaccounts,
 *   deployments, RBAC, CRDs: stored, no controller acts on them), with
 *   discovery, OpenAPI v3 as far as kubectl reads it, protobuf Namespace and
 *   Secret bodies, CRD printer columns (apiserver/discovery.ts, protobuf.ts,
 *   table.ts) and pods/exec over WebSocket (apiserver/exec.ts);
 * - GET list and watch with labelSelector and fieldSelector, POST (409
 *   AlreadyExists), PUT with optimistic concurrency (409 Conflict on a stale
 *   resourceVersion; custom resources must send one), PATCH (merge, JSON and,
 *   for built-in kinds, strategic merge) on the object and on /status,
 *   DELETE with preconditions, grace periods (pods), finalizers and
 *   propagationPolicy over ownerReferences;
 * - one resourceVersion counter for everything, like etcd; watch resumption
 *   within a history window, 410 Gone beyond it, bookmarks.
 *
 * Test controls: dropWatches(), expireWatches(), compactHistory(),
 * sendBookmarks(), setFailNext(), beforeHandle, direct object access, and
 * subscribe() for in-process clients (the test kubelet).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { Deleter, type DeleteOptions } from "./apiserver/deletion.js";
import { ExecServer, type ExecHandler } from "./apiserver/exec.js";
import { handleRequest, type HttpContext, type LogSource } from "./apiserver/http.js";
import { RESOURCES, parsePath, type ResourceName } from "./apiserver/resources.js";
import { PodQuota } from "./apiserver/quota.js";
import { admitDefaultTolerationSeconds } from "./apiserver/defaultTolerations.js";
import { ObjectStore } from "./apiserver/store.js";
import { HttpError, clone, nowTime, type Change, type FailSpec, type FakeApiServerOptions, type FakeRequest, type Meta, type Obj } from "./apiserver/types.js";
import { WatchHub } from "./apiserver/watch.js";

export { RESOURCES, type ResourceName } from "./apiserver/resources.js";
export { mergePatch, strategicMergePatch, jsonPatch } from "./apiserver/patch.js";
export type { Change, FailSpec, FakeApiServerOptions, FakeRequest, Meta, Obj, OwnerReference } from "./apiserver/types.js";
export type { DeleteOptions, PropagationPolicy } from "./apiserver/deletion.js";
export type { LogOptions, LogSource } from "./apiserver/http.js";
export type { ExecHandler, ExecIo, ExecOptions } from "./apiserver/exec.js";

export class FakeApiServer {
  readonly url: string;
  /** Every request, in order (method, path, query), for assertions. */
  readonly requests: { method: string; path: string; query: Record<string, string> }[] = [];

  private readonly store = new ObjectStore();
  private readonly deleter = new Deleter(this.store);
  private readonly watches: WatchHub;
  private readonly ctx: HttpContext;
  private readonly exec: ExecServer;
  private bookmarkTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly server: http.Server,
    options: FakeApiServerOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.watches = new WatchHub(this.store, options);
    this.ctx = {
      store: this.store,
      deleter: this.deleter,
      watches: this.watches,
      requests: this.requests,
      failures: [],
      beforeHandle: null,
      logSource: null,
      bind: (ns, name, node) => this.bindPod(ns, name, node),
    };
    this.exec = new ExecServer(this.store, (method, url) => this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams) }));
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex) => this.exec.upgrade(req, socket));
    const quota = new PodQuota(this.store, RESOURCES.pods, RESOURCES.resourcequotas);
    // Upstream's order: mutating admission (DefaultTolerationSeconds) before validating (ResourceQuota).
    this.store.admitCreate = (def, namespace, name, body) => {
      if (def.key !== "pods" || !namespace) return;
      admitDefaultTolerationSeconds(body);
      quota.admit(namespace, name);
    };
    if (options.bookmarkIntervalMs) this.bookmarkTimer = setInterval(() => this.sendBookmarks(), options.bookmarkIntervalMs);
  }

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    let self: FakeApiServer | null = null;
    const server = http.createServer((req, res) => {
      if (!self) {
        res.writeHead(503).end();
        return;
      }
      void handleRequest(self.ctx, req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    self = new FakeApiServer(server, options);
    return self;
  }

  async stop(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.watches.endAll(false);
    this.exec.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Runs before each request is handled (after its body was read). */
  get beforeHandle(): ((req: FakeRequest) => void | Promise<void>) | null {
    return this.ctx.beforeHandle;
  }
  set beforeHandle(fn: ((req: FakeRequest) => void | Promise<void>) | null) {
    this.ctx.beforeHandle = fn;
  }

  /** The kubelet that answers pods/{name}/exec (WebSocket, apiserver/exec.ts). */
  setExecHandler(handler: ExecHandler | null): void {
    this.exec.handler = handler;
  }

  /** The kubelet that answers GET pods/{name}/log. */
  setLogSource(source: LogSource | null): void {
    this.ctx.logSource = source;
  }

  // ---------------------------------------------------------------- controls

  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  /** Open watch connections (optionally of one resource). */
  watchCount(resource?: ResourceName): number {
    return [...this.watches.watchers].filter((w) => !resource || w.resource === resource).length;
  }

  /** Ends every open watch: abruptly (socket destroyed, the default) or cleanly (stream ended). */
  dropWatches(options: { graceful?: boolean } = {}): number {
    return this.watches.endAll(!options.graceful);
  }

  /** Sends an ERROR event with a 410 Status to every open watch and ends it, as a lagging watch cache does. */
  expireWatches(): number {
    return this.watches.expireAll();
  }

  /** Forgets all watch history: watching from any resourceVersion below the current one is 410 Gone. */
  compactHistory(): void {
    this.watches.compact();
  }

  /** A BOOKMARK with the current resourceVersion to every watcher that allowed them. */
  sendBookmarks(): void {
    this.watches.sendBookmarks();
  }

  /** The next `count` requests matching `spec` fail with `status` (or every one for `forMs`). */
  setFailNext(spec: FailSpec): void {
    const until = spec.forMs !== undefined ? Date.now() + spec.forMs : Infinity;
    this.ctx.failures.push({ ...spec, left: spec.count ?? (spec.forMs !== undefined ? Infinity : 1), until });
  }

  clearFailures(): void {
    this.ctx.failures.splice(0);
  }

  /** Every committed change, synchronously and in order; returns the unsubscribe function. */
  subscribe(listener: (change: Change) => void): () => void {
    return this.store.onChange(listener);
  }

  // ---------------------------------------------------------------- objects (as another client would)

  get(resource: ResourceName, namespace: string, name: string): Obj | undefined {
    const o = this.store.find(RESOURCES[resource], namespace, name);
    return o ? clone(o) : undefined;
  }

  list(resource: ResourceName, namespace?: string): Obj[] {
    return this.store.all(RESOURCES[resource], namespace).map(clone);
  }

  /** Creates an object as another client would (kubectl apply). Cluster-scoped kinds ignore the namespace. */
  create(resource: ResourceName, namespace: string, obj: Record<string, unknown> & { metadata: Meta }): Obj {
    return clone(this.store.create(RESOURCES[resource], namespace, clone(obj)));
  }

  /** Changes an object as another client would (kubectl edit): the change goes through the same rules as a PUT. */
  update(resource: ResourceName, namespace: string, name: string, change: (o: Obj) => void): Obj {
    const def = RESOURCES[resource];
    const existing = this.store.mustGet(def, namespace, name);
    const next = clone(existing);
    change(next);
    return clone(this.store.commit(def, existing, this.store.keepImmutable(def, existing, next, "main")));
  }

  /** Writes an object's status as another client would (PUT /status), without going through HTTP. */
  setStatus(resource: ResourceName, namespace: string, name: string, status: unknown): Obj {
    const def = RESOURCES[resource];
    const existing = this.store.mustGet(def, namespace, name);
    const next = clone(existing);
    next.status = clone(status);
    return clone(this.store.commit(def, existing, this.store.keepImmutable(def, existing, next, def.statusSubresource ? "status" : "main")));
  }

  /** DELETE as another client would; null when there was nothing to delete. */
  remove(resource: ResourceName, namespace: string, name: string, options: DeleteOptions = {}): Obj | null {
    const gone = this.deleter.delete(RESOURCES[resource], namespace, name, options);
    return gone ? clone(gone) : null;
  }

  /** The scheduler's binding: sets spec.nodeName (otherwise immutable) and the PodScheduled condition. */
  bindPod(namespace: string, name: string, node: string): Obj {
    const def = RESOURCES.pods;
    const existing = this.store.mustGet(def, namespace, name);
    const spec = (existing.spec ?? {}) as { nodeName?: string };
    if (spec.nodeName) throw new HttpError(409, "Conflict", `pod ${name} is already assigned to node "${spec.nodeName}"`);
    const next = clone(existing);
    (next.spec as { nodeName?: string }).nodeName = node;
    const bound = this.store.commit(def, existing, this.store.keepImmutable(def, existing, next, "main", true));
    const status = clone((bound.status ?? {}) as { conditions?: Record<string, unknown>[] });
    status.conditions = [...(status.conditions ?? []).filter((c) => c.type !== "PodScheduled"), { type: "PodScheduled", status: "True", lastTransitionTime: nowTime() }];
    return clone(this.store.commit(def, bound, this.store.keepImmutable(def, bound, { ...clone(bound), status }, "status")));
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
}
