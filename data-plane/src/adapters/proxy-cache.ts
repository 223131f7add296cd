// proxy-cache's stores on a data-plane node (shared/src/plugins/proxy-cache/store.ts): the node's
// byte-capped LRUs (one per memory.dictionary_name), Redis (the plugin's connection, or the node's
// REDIS_URL), and both tiered. They outlive snapshots, so a config change keeps what is cached.
// Purges and lookups from the control plane (over the bus) run here, on every store.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { request } from 'undici';
import {
  MemoryCacheStore, TieredCacheStore, matchesPurge, splitName, type CacheStore, type CachedResponse, type ProxyCacheConfig, type ProxyCachePort, type PurgeFilter,
} from '@portico/shared/plugins/handlers';
import { redisOptions } from './redis-rate-limit.ts';

const PREFIX = 'portico:pc:';
const LOCK_PREFIX = 'portico:pcl:';
/** Keys a purge asks Redis for per SCAN round. */
const SCAN_COUNT = 500;
/** A background revalidation gives up after this long. */
const REVALIDATE_TIMEOUT_MS = 60_000;

/** One buffer: 4-byte length of the JSON metadata, the metadata, the body. */
export function encodeEntry(e: CachedResponse): Buffer {
  const { body, ...meta } = e;
  const json = Buffer.from(JSON.stringify(meta));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(json.length);
  return Buffer.concat([head, json, body]);
}

export function decodeEntry(buf: Buffer): CachedResponse | null {
  if (buf.length < 4) return null;
  const n = buf.readUInt32BE(0);
  if (4 + n > buf.length) return null;
  try {
    const meta = JSON.parse(buf.subarray(4, 4 + n).toString('utf8')) as Omit<CachedResponse, 'body'>;
    return { ...meta, body: buf.subarray(4 + n) };
  } catch {
    return null;
  }
}

/** Unlock only a lock this node holds (another node's, taken after ours expired, is left alone). */
const UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/**
 * Entries in Redis, shared by every node: `portico:pc:<plugin>:<key>` with the store TTL; the miss
 * lock is `SET portico:pcl:<…> <node token> NX PX lock_ms`. A failing Redis is a miss (never an error).
 */
export class RedisCacheStore implements CacheStore {
  private readonly token = randomBytes(8).toString('hex');

  constructor(private readonly redis: Redis, private readonly timeoutMs: number) {}

  /**
   * Whether the connection is up, waiting for it at most the config's timeout (a store built with
   * a new snapshot is still connecting when its first requests arrive; no offline queue, so a
   * command sent now would fail).
   */
  private ready(): boolean | Promise<boolean> {
    const r = this.redis;
    if (r.status === 'ready') return true;
    if (r.status === 'end' || r.status === 'close') return false;
    return new Promise((resolve) => {
      const done = (ok: boolean) => { clearTimeout(timer); r.off('ready', onReady); resolve(ok); };
      const onReady = () => done(true);
      const timer = setTimeout(done, this.timeoutMs, false);
      r.once('ready', onReady);
    });
  }

  async get(name: string): Promise<CachedResponse | null> {
    if (!(await this.ready())) return null;
    try {
      const buf = await this.redis.getBuffer(PREFIX + name);
      return buf === null ? null : decodeEntry(buf);
    } catch {
      return null;
    }
  }

  set(name: string, entry: CachedResponse, ttlMs: number): void {
    this.redis.set(PREFIX + name, encodeEntry(entry), 'PX', Math.max(1, Math.round(ttlMs))).catch(() => { /* a later miss */ });
  }

  async lock(name: string, ms: number): Promise<boolean> {
    // No Redis: fetch (the node's own single flight still holds).
    if (!(await this.ready())) return true;
    try {
      return (await this.redis.set(LOCK_PREFIX + name, this.token, 'PX', ms, 'NX')) === 'OK';
    } catch {
      return true;
    }
  }

  unlock(name: string): void {
    this.redis.eval(UNLOCK, 1, LOCK_PREFIX + name, this.token).catch(() => { /* expires by itself */ });
  }

  async purge(filter: PurgeFilter): Promise<number> {
    const onlyNames = filter.route === undefined && filter.service === undefined && filter.prefix === undefined && filter.tag === undefined;
    const match = PREFIX + (filter.plugin ?? '*') + ':' + (filter.key !== undefined ? `${escapeGlob(filter.key)}*` : '*');
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      const chosen: string[] = [];
      const values = onlyNames || keys.length === 0 ? null : await this.redis.mgetBuffer(...keys);
      keys.forEach((k, i) => {
        const entry = values === null ? null : values[i] === null ? null : decodeEntry(values[i]!);
        if (matchesPurge(k.slice(PREFIX.length), entry, filter)) chosen.push(k);
      });
      if (chosen.length > 0) n += await this.redis.del(...chosen);
    } while (cursor !== '0');
    return n;
  }
}

const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&');

export interface CachePurgeReply { purged: number; errors: string[] }

export class ProxyCacheStores implements ProxyCachePort {
  private readonly memory = new Map<string, MemoryCacheStore>();
  private readonly redis = new Map<string, { client: Redis; store: RedisCacheStore }>();
  readonly revalidateToken = randomBytes(24).toString('base64url');

  constructor(
    private readonly nodeRedisUrl: string | undefined,
    /** This node's plain proxy listener, where background revalidations are sent. */
    private readonly proxyOrigin: string,
    private readonly log: { warn(o: object, m: string): void },
  ) {}

  store(config: ProxyCacheConfig): CacheStore {
    const local = config.strategy === 'redis' ? null : this.memoryStore(config.memory.dictionary_name, config.memory.max_bytes);
    const shared = config.strategy === 'memory' ? null : this.redisStore(config);
    if (local !== null && shared !== null) return new TieredCacheStore(local, shared);
    return (local ?? shared)!;
  }

  private memoryStore(name: string, maxBytes: number): MemoryCacheStore {
    let s = this.memory.get(name);
    // A new size starts the dictionary afresh (rare: an edit of memory.max_bytes).
    if (s === undefined || s.maxBytes !== maxBytes) this.memory.set(name, (s = new MemoryCacheStore(maxBytes)));
    return s;
  }

  private redisStore(config: ProxyCacheConfig): CacheStore {
    const c = config.redis;
    if (!c.host && !this.nodeRedisUrl) {
      // Refused here, so the snapshot is rejected with the reason rather than every request missing.
      throw new Error('proxy-cache strategy redis/tiered needs Redis: set config.redis.host, or REDIS_URL on the data plane');
    }
    const id = c.host ? JSON.stringify(c) : `env:${c.timeout}`;
    let r = this.redis.get(id);
    if (r === undefined) {
      const client = new Redis({
        enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1_000, retryStrategy: (times) => Math.min(times * 100, 1_000),
        ...redisOptions(c, this.nodeRedisUrl),
      });
      client.on('error', () => { /* a miss per call; reconnects on its own */ });
      r = { client, store: new RedisCacheStore(client, c.timeout) };
      this.redis.set(id, r);
    }
    return r.store;
  }

  /** Removes what `filter` selects from every store of this node; what one store failed at is reported. */
  async purge(filter: PurgeFilter): Promise<CachePurgeReply> {
    const stores: CacheStore[] = [...this.memory.values(), ...[...this.redis.values()].map((r) => r.store)];
    const results = await Promise.allSettled(stores.map((s) => s.purge(filter)));
    let purged = 0;
    const errors: string[] = [];
    for (const r of results) if (r.status === 'fulfilled') purged += r.value; else errors.push(String((r.reason as Error)?.message ?? r.reason));
    return { purged, errors };
  }

  /** The entry of one plugin's key (Kong's GET /proxy-cache/{plugin}/caches/{key}), from any store of this node. */
  async lookup(plugin: string | undefined, key: string): Promise<{ plugin: string; key: string; entry: Omit<CachedResponse, 'body'> & { body_bytes: number } } | null> {
    for (const s of this.memory.values()) {
      for (const name of s.names()) {
        const p = splitName(name);
        if (p.key !== key || (plugin !== undefined && p.plugin !== plugin)) continue;
        const e = s.get(name);
        if (e !== null) return describe(p.plugin, key, e);
      }
    }
    for (const { client, store } of this.redis.values()) {
      if (client.status !== 'ready') continue;
      const [, keys] = await client.scan('0', 'MATCH', PREFIX + (plugin ?? '*') + ':' + escapeGlob(key), 'COUNT', SCAN_COUNT);
      for (const k of keys) {
        const name = k.slice(PREFIX.length);
        const e = await store.get(name);
        if (e !== null) return describe(splitName(name).plugin, key, e);
      }
    }
    return null;
  }

  revalidate(method: string, url: string, headers: Record<string, string | string[] | undefined>): void {
    const h: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined && k !== 'connection' && k !== 'content-length' && k !== 'transfer-encoding') h[k] = v;
    request(this.proxyOrigin + url, { method: method as 'GET', headers: h, headersTimeout: REVALIDATE_TIMEOUT_MS, bodyTimeout: REVALIDATE_TIMEOUT_MS })
      .then((r) => r.body.dump())
      .catch((err: Error) => { this.log.warn({ err: err.message, url }, 'proxy-cache background revalidation failed'); });
  }

  close(): void {
    for (const { client } of this.redis.values()) client.disconnect();
  }
}

function describe(plugin: string, key: string, e: CachedResponse) {
  const { body, ...meta } = e;
  return { plugin, key, entry: { ...meta, body_bytes: body.length } };
}
