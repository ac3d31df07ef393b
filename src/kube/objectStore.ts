/**
 * The reflector's in-memory store: objects by namespace/name, as last listed,
 * watched, or written by this process.
 *
 * resourceVersions are opaque to clients, but within one resource they only
 * grow (etcd's revision): two decimal ones compare as numbers, and any other
 * pair counts as newer when it differs. That is enough to keep a late watch
 * event from overwriting the response of a write this process just made, and
 * a late write response from resurrecting an object the watch saw deleted.
 */
export interface ReflectedObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

const DECIMAL = /^\d+$/;

/** True when `a` is a later resourceVersion than `b` (a missing one is never later). */
export function isNewerResourceVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a) return false;
  if (!b) return true;
  if (DECIMAL.test(a) && DECIMAL.test(b)) return BigInt(a) > BigInt(b);
  return a !== b;
}

export function keyOf(obj: ReflectedObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

export interface StoreChange<T> {
  before: T | undefined;
  after: T | undefined;
}

/** Deletions remembered so a stale write response cannot bring an object back; oldest dropped first. */
const MAX_TOMBSTONES = 1024;

export class ObjectStore<T extends ReflectedObject> {
  private objects = new Map<string, T>();
  private names = new Map<string, Set<string>>();
  private tombstones = new Map<string, string>();

  get size(): number {
    return this.objects.size;
  }

  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  /** Every object with this name (one per namespace). */
  byName(name: string): T[] {
    return [...(this.names.get(name) ?? [])].map((k) => this.objects.get(k)!).filter(Boolean);
  }

  allNames(): string[] {
    return [...this.names.keys()];
  }

  list(): T[] {
    return [...this.objects.values()];
  }

  /**
   * Stores `obj` unless what is stored (or the deletion last seen) is as new
   * or newer. Returns what was there before, and whether `obj` went in.
   */
  upsert(obj: T): { before: T | undefined; applied: boolean } {
    const key = keyOf(obj);
    const before = this.objects.get(key);
    const rv = obj.metadata.resourceVersion;
    const floor = before?.metadata.resourceVersion ?? this.tombstones.get(key);
    if (floor !== undefined && !isNewerResourceVersion(rv, floor)) return { before, applied: false };
    this.tombstones.delete(key);
    this.put(key, obj);
    return { before, applied: true };
  }

  /** Removes the object a DELETED event names; remembers its resourceVersion. */
  remove(obj: T): T | undefined {
    const key = keyOf(obj);
    const before = this.objects.get(key);
    this.drop(key);
    const rv = obj.metadata.resourceVersion ?? before?.metadata.resourceVersion;
    if (rv !== undefined) {
      this.tombstones.delete(key);
      this.tombstones.set(key, rv);
      if (this.tombstones.size > MAX_TOMBSTONES) this.tombstones.delete(this.tombstones.keys().next().value!);
    }
    return before;
  }

  /**
   * Replaces everything with a list taken at `listVersion`. An object this
   * process wrote after that list was taken is kept (the watch from
   * `listVersion` delivers it again). Returns what differs.
   */
  replace(items: T[], listVersion: string): StoreChange<T>[] {
    const previous = this.objects;
    this.objects = new Map();
    this.names = new Map();
    this.tombstones = new Map();
    for (const obj of items) this.put(keyOf(obj), obj);
    for (const [key, obj] of previous) {
      const listed = this.objects.get(key);
      const newerThanList = isNewerResourceVersion(obj.metadata.resourceVersion, listed?.metadata.resourceVersion ?? listVersion);
      if (newerThanList && (listed !== undefined || DECIMAL.test(listVersion))) this.put(key, obj);
    }
    const changes: StoreChange<T>[] = [];
    for (const key of new Set([...previous.keys(), ...this.objects.keys()])) {
      const before = previous.get(key);
      const after = this.objects.get(key);
      if (before?.metadata.resourceVersion !== after?.metadata.resourceVersion || (before === undefined) !== (after === undefined)) {
        changes.push({ before, after });
      }
    }
    return changes;
  }

  clear(): void {
    this.objects = new Map();
    this.names = new Map();
    this.tombstones = new Map();
  }

  private put(key: string, obj: T): void {
    this.objects.set(key, obj);
    const keys = this.names.get(obj.metadata.name) ?? new Set<string>();
    keys.add(key);
    this.names.set(obj.metadata.name, keys);
  }

  private drop(key: string): void {
    const obj = this.objects.get(key);
    if (!obj) return;
    this.objects.delete(key);
    const keys = this.names.get(obj.metadata.name);
    keys?.delete(key);
    if (keys && keys.size === 0) this.names.delete(obj.metadata.name);
  }
}
