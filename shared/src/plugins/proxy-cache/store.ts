// Where proxy-cache keeps responses: the port a DP implements (memory, Redis, tiered) and the
// node-local store. Entries are named `<plugin id>:<cache key>` so one store serves every plugin
// instance naming it, and a purge can pick one plugin's entries.
import { LRUCache } from 'lru-cache';
import type { ProxyCacheConfig } from './schema.ts';

export interface CachedResponse {
  status: number;
  /** As sent to the client, without per-request headers (length, request id, latencies). */
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** Milliseconds since the epoch. */
  storedAt: number;
  /** How long it is fresh, then how long it may still be served while revalidating or on an upstream error. */
  freshMs: number;
  swrMs: number;
  sieMs: number;
  /** What purges select on. */
  route: string;
  service: string | null;
  path: string;
  tags: string[];
  /**
   * Set on the entry under a primary key when the response had `Vary`: the request headers
   * (lower-case) whose values pick the real entry, stored under a secondary key.
   */
  vary: string[] | null;
}

/** What a purge removes; every field given must match (none: everything). */
export interface PurgeFilter {
  plugin?: string;
  /** A cache key (X-Cache-Key): its entry and the entries its Vary split it into. */
  key?: string;
  route?: string;
  service?: string;
  /** Request path prefix. */
  prefix?: string;
  tag?: string;
}

export interface CacheStore {
  get(name: string): CachedResponse | null | Promise<CachedResponse | null>;
  /** Fire and forget: a store that fails to keep an entry only costs a later miss. */
  set(name: string, entry: CachedResponse, ttlMs: number): void;
  /** Whether this node may fetch `name` now (cluster-wide in Redis; always true in memory). Held at most `ms`. */
  lock(name: string, ms: number): boolean | Promise<boolean>;
  unlock(name: string): void;
  purge(filter: PurgeFilter): Promise<number>;
}

export interface ProxyCachePort {
  /** The store a config names (kept across snapshots: the node's LRU of that name, its Redis). */
  store(config: ProxyCacheConfig): CacheStore;
  /**
   * Sends a request again, in the background, through this node's proxy with the revalidation
   * header, to refresh a stale entry (stale_while_revalidate). Never throws.
   */
  revalidate(method: string, url: string, headers: Record<string, string | string[] | undefined>): void;
  /** The value of REVALIDATE_HEADER that marks this node's own revalidation requests (a secret). */
  readonly revalidateToken: string;
}

/** Marks a background revalidation; its value is the node's token, never a client's to choose. */
export const REVALIDATE_HEADER = 'x-portico-cache-revalidate';

/** The parts of a store name: plugin id, then cache key. */
export function splitName(name: string): { plugin: string; key: string } {
  const i = name.indexOf(':');
  return { plugin: name.slice(0, i), key: name.slice(i + 1) };
}

/** Whether the entry named `name` is one `filter` selects. */
export function matchesPurge(name: string, entry: Pick<CachedResponse, 'route' | 'service' | 'path' | 'tags'> | null, filter: PurgeFilter): boolean {
  const { plugin, key } = splitName(name);
  if (filter.plugin !== undefined && plugin !== filter.plugin) return false;
  // A Vary split's entries are `<key>.<hash>`: purging the key purges them too.
  if (filter.key !== undefined && key !== filter.key && !key.startsWith(filter.key + '.')) return false;
  if (filter.route === undefined && filter.service === undefined && filter.prefix === undefined && filter.tag === undefined) return true;
  if (entry === null) return false;
  if (filter.route !== undefined && entry.route !== filter.route) return false;
  if (filter.service !== undefined && entry.service !== filter.service) return false;
  if (filter.prefix !== undefined && !entry.path.startsWith(filter.prefix)) return false;
  if (filter.tag !== undefined && !entry.tags.includes(filter.tag)) return false;
  return true;
}

/** Bytes an entry is counted as: body, headers and a fixed overhead for the object. */
export function entrySize(e: CachedResponse): number {
  let n = 256 + e.body.length + e.path.length;
  for (const [k, v] of Object.entries(e.headers)) n += k.length + (Array.isArray(v) ? v.join('').length : v.length) + 8;
  return n;
}

/** A node-local, byte-capped LRU (memory.dictionary_name names one; memory.max_bytes caps it). */
export class MemoryCacheStore implements CacheStore {
  private readonly lru: LRUCache<string, CachedResponse>;

  constructor(readonly maxBytes: number) {
    this.lru = new LRUCache<string, CachedResponse>({ maxSize: maxBytes, sizeCalculation: entrySize, ttlAutopurge: false, allowStale: false });
  }

  /** Bytes held now. */
  get bytes(): number { return this.lru.calculatedSize ?? 0; }

  /** Names held now (purges and the admin API's lookups; not the request path). */
  names(): IterableIterator<string> { return this.lru.keys(); }

  get(name: string): CachedResponse | null {
    return this.lru.get(name) ?? null;
  }

  set(name: string, entry: CachedResponse, ttlMs: number): void {
    // An entry bigger than the whole LRU is refused by lru-cache; nothing else to do.
    if (entrySize(entry) <= this.maxBytes) this.lru.set(name, entry, { ttl: ttlMs });
  }

  lock(): boolean { return true; }
  unlock(): void { /* node-local single flight is the handler's */ }

  async purge(filter: PurgeFilter): Promise<number> {
    let n = 0;
    for (const [name, entry] of this.lru.entries()) if (matchesPurge(name, entry, filter)) { this.lru.delete(name); n++; }
    return n;
  }
}

/** strategy tiered: the node's LRU in front of a shared store; hits from the shared one fill the LRU. */
export class TieredCacheStore implements CacheStore {
  constructor(private readonly l1: CacheStore, private readonly l2: CacheStore) {}

  get(name: string): CachedResponse | null | Promise<CachedResponse | null> {
    const hit = this.l1.get(name);
    if (hit !== null) return hit;
    return Promise.resolve(this.l2.get(name)).then((e) => {
      if (e !== null) {
        const left = e.storedAt + Math.max(e.freshMs + Math.max(e.swrMs, e.sieMs), 1) - Date.now();
        if (left > 0) this.l1.set(name, e, left);
      }
      return e;
    });
  }

  set(name: string, entry: CachedResponse, ttlMs: number): void {
    this.l1.set(name, entry, ttlMs);
    this.l2.set(name, entry, ttlMs);
  }

  lock(name: string, ms: number): boolean | Promise<boolean> { return this.l2.lock(name, ms); }
  unlock(name: string): void { this.l2.unlock(name); }

  async purge(filter: PurgeFilter): Promise<number> {
    const [a, b] = await Promise.all([this.l1.purge(filter), this.l2.purge(filter)]);
    return a + b;
  }
}
