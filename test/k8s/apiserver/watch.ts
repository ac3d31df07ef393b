/**
 * Watch streams: JSON lines of ADDED/MODIFIED/DELETED/BOOKMARK, resumption
 * from a resourceVersion within a history window (older is 410 Gone), and
 * selector transitions as the real server sends them: an object that stops
 * matching a watch's selectors arrives as DELETED, one that starts matching
 * as ADDED.
 */
import type http from "node:http";
import { RESOURCES, apiVersionOf } from "./resources.js";
import type { Predicate } from "./selectors.js";
import type { ObjectStore } from "./store.js";
import { statusBody, type Change, type FakeApiServerOptions, type ResourceDef, type WatchEventType } from "./types.js";

export interface Watcher {
  resource: string;
  namespace: string | undefined;
  matches: Predicate;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer: NodeJS.Timeout | null;
  /** Request's starting resourceVersion, for tests. */
  from: string;
}

export class WatchHub {
  readonly watchers = new Set<Watcher>();
  private history: Change[] = [];
  private compactedRv = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly options: FakeApiServerOptions,
  ) {
    store.onChange((c) => this.record(c));
  }

  compact(): void {
    this.compactedRv = this.store.resourceVersion;
    this.history = [];
  }

  private record(change: Change): void {
    this.history.push(change);
    const limit = this.options.historyLimit ?? 1000;
    if (this.history.length > limit) {
      const dropped = this.history.splice(0, this.history.length - limit);
      this.compactedRv = Math.max(this.compactedRv, dropped[dropped.length - 1]!.rv);
    }
    for (const w of this.watchers) this.deliver(w, change);
  }

  /** What a change looks like through a watcher's selectors, if it sees it at all. */
  private deliver(w: Watcher, c: Change): void {
    if (w.resource !== c.resource || (w.namespace && w.namespace !== c.namespace)) return;
    const now = w.matches(c.object);
    const before = c.previous ? w.matches(c.previous) : false;
    let type: WatchEventType | null = c.type;
    if (c.type === "MODIFIED") type = now && before ? "MODIFIED" : now ? "ADDED" : before ? "DELETED" : null;
    else if (c.type === "ADDED") type = now ? "ADDED" : null;
    else type = before || now ? "DELETED" : null;
    if (type) this.writeLine(w, { type, object: c.object });
  }

  start(def: ResourceDef, namespace: string | undefined, matches: Predicate, query: URLSearchParams, res: http.ServerResponse): void {
    const from = query.get("resourceVersion") ?? "";
    const n = Number(from);
    const replayAll = from === "" || from === "0";
    if (!replayAll && (!Number.isInteger(n) || n < this.compactedRv)) {
      const gone = statusBody(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`);
      const text = JSON.stringify(this.options.goneAsHttpStatus ? gone : { type: "ERROR", object: gone });
      res.writeHead(this.options.goneAsHttpStatus ? 410 : 200, { "Content-Type": "application/json" });
      res.end(this.options.goneAsHttpStatus ? text : `${text}\n`);
      return;
    }
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    const w: Watcher = { resource: def.key, namespace, matches, bookmarks: query.get("allowWatchBookmarks") === "true", res, timer: null, from };
    this.watchers.add(w);
    res.on("close", () => this.end(w, false));
    if (replayAll) {
      for (const o of this.store.all(def, namespace)) if (matches(o)) this.writeLine(w, { type: "ADDED", object: o });
    } else {
      for (const c of this.history) if (c.rv > n) this.deliver(w, c);
    }
    const timeout = Number(query.get("timeoutSeconds") ?? "0");
    if (timeout > 0) w.timer = setTimeout(() => this.end(w, false), timeout * 1000);
  }

  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const def = (RESOURCES as Record<string, ResourceDef>)[w.resource]!;
      this.writeLine(w, { type: "BOOKMARK", object: { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(this.store.resourceVersion) } } });
    }
  }

  /** Sends an ERROR event with a 410 Status to every open watch and ends it, as a lagging watch cache does. */
  expireAll(): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) {
      this.writeLine(w, { type: "ERROR", object: statusBody(410, "Expired", `too old resource version: ${w.from} (${this.store.resourceVersion})`) });
      this.end(w, false);
    }
    return n;
  }

  endAll(abrupt: boolean): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) this.end(w, abrupt);
    return n;
  }

  private writeLine(w: Watcher, event: unknown): void {
    if (!w.res.writableEnded && !w.res.destroyed) w.res.write(`${JSON.stringify(event)}\n`);
  }

  private end(w: Watcher, abrupt: boolean): void {
    if (!this.watchers.delete(w)) return;
    if (w.timer) clearTimeout(w.timer);
    if (abrupt) w.res.socket?.destroy();
    else if (!w.res.writableEnded) w.res.end();
  }
}
