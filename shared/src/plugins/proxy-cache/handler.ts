// proxy-cache (reference/kong-compat.md §4.12, edge-design.md §3c): Kong's key, fields and
// X-Cache-Status, made correct by default: Vary honoured, Accept-Encoding normalised into the key,
// Set-Cookie answers never stored unless asked, and no stampede.
//
//   access: key ─► lookup ─► fresh: answer it (Hit), the upstream untouched
//                      │     stale within stale_while_revalidate: answer it (Stale), refresh once in the background
//                      ▼
//           another request of this node fetching the key? wait for its entry (Collapsed)
//           else the cluster lock (Redis: SET NX PX): won → fetch (Miss/Refresh); lost → poll the
//           store until the entry appears (Collapsed) or the lock frees (then fetch)
//   response: storable (status, type, Cache-Control, Set-Cookie, Vary, size) → capture the body
//   capture done → store, wake the waiters; log phase → anything still waiting is released
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AccessResult, Exit, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { proxyCache, type ProxyCacheConfig } from './schema.ts';
import { REVALIDATE_HEADER, type CacheStore, type CachedResponse } from './store.ts';

/** How often a request that lost the cluster lock looks for the entry. */
const POLL_MS = 20;
/** A key being revalidated in the background is not revalidated again for this long. */
const REVALIDATE_GUARD_MS = 10_000;
const MAX_REVALIDATING = 10_000;
const SLOT = 'proxy-cache';
/** `portico_proxy_cache_<status>_total` on /metrics, one per answer. */
const COUNTERS: Record<string, string> = {
  Miss: 'proxy_cache_miss', Refresh: 'proxy_cache_refresh', Bypass: 'proxy_cache_bypass', Hit: 'proxy_cache_hit', Stale: 'proxy_cache_stale', Collapsed: 'proxy_cache_collapsed',
};

interface Flight { promise: Promise<CachedResponse | null>; resolve: (e: CachedResponse | null) => void }

interface State {
  id: string;
  store: CacheStore | null;
  methods: ReadonlySet<string>;
  codes: ReadonlySet<number>;
  /** Configured types without parameters match any parameters; with them, only exactly. */
  types: ReadonlySet<string>;
  varyHeaders: string[];
  varyQuery: string[] | null;
  tagHeader: string | null;
  /** Keys being fetched by a request of this node, with the promise of their entry. */
  flights: Map<string, Flight>;
  /** Keys being revalidated in the background, with when that started. */
  revalidating: Map<string, number>;
  ttls: { freshMs: number; swrMs: number; sieMs: number; storageMs: number };
}

/** What this request is to the cache, kept on ctx.shared between its phases. */
interface Pending {
  status: 'Miss' | 'Refresh' | 'Bypass' | 'Hit' | 'Stale' | 'Collapsed';
  key: string;
  name: string;
  flight: Flight | null;
  locked: boolean;
  stale: CachedResponse | null;
  settled: boolean;
}

type CacheControl = Map<string, string | true>;

/** RFC 9111 §5.2 directives, lower-case names, unquoted values. */
export function parseCacheControl(v: string | string[] | undefined): CacheControl | null {
  if (v === undefined) return null;
  const out: CacheControl = new Map();
  for (const part of (Array.isArray(v) ? v.join(',') : v).split(',')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name) out.set(name, eq < 0 ? true : part.slice(eq + 1).trim().replace(/^"|"$/g, ''));
  }
  return out;
}

const seconds = (v: string | true | undefined): number | null => {
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return null;
  return Number(v);
};

/** Accept-Encoding reduced to what a cached answer can differ by: br, gzip, or identity (Kong#12796). */
export function encodingClass(v: string | string[] | undefined): string {
  if (v === undefined) return 'identity';
  const s = (Array.isArray(v) ? v.join(',') : v).toLowerCase();
  const accepts = (name: string) => s.split(',').some((p) => {
    const [coding, ...params] = p.split(';').map((x) => x.trim());
    return coding === name && !params.some((q) => /^q=0(\.0*)?$/.test(q));
  });
  if (accepts('br')) return 'br';
  if (accepts('gzip')) return 'gzip';
  return 'identity';
}

const one = (v: string | string[] | undefined): string => (v === undefined ? '' : Array.isArray(v) ? v.join(',') : v);
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Kong's key: sha256 of prefix | method | path | query | vary headers, the prefix being
 * `consumer:route` (cache_scope consumer, Kong's) or `route`; plus the encoding class.
 */
export function cacheKey(ctx: ProxyContext, config: ProxyCacheConfig, state: Pick<State, 'varyHeaders' | 'varyQuery'>): string {
  const consumer = config.cache_scope === 'consumer' ? ctx.consumer?.id ?? null : null;
  const prefix = consumer === null ? ctx.route.id : `${consumer}:${ctx.route.id}`;
  const path = config.ignore_uri_case ? ctx.path.toLowerCase() : ctx.path;
  let query = '';
  if (ctx.hasQuery()) {
    const q = ctx.query();
    const names = state.varyQuery ?? [...new Set(q.keys())].sort();
    for (const n of names) for (const v of q.getAll(n)) query += `${n}=${v}&`;
  }
  let headers = '';
  for (const h of state.varyHeaders) headers += `${h}=${one(ctx.headers[h])}\n`;
  return sha256(`${prefix}|${ctx.method}|${path}|${query}|${headers}|${encodingClass(ctx.headers['accept-encoding'])}`);
}

/** The name of a Vary split's entry: the key and a digest of the request's values of those headers. */
function variantKey(key: string, vary: string[], ctx: ProxyContext): string {
  let s = '';
  for (const h of vary) s += `${h}=${one(ctx.headers[h])}\n`;
  return `${key}.${sha256(s).slice(0, 32)}`;
}

/** Response headers that belong to one answer, not to the entry. */
const PER_ANSWER = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'age', 'x-cache-status', 'x-cache-key', 'date']);
function storedHeaders(h: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (!PER_ANSWER.has(k) && !k.startsWith('x-portico-')) out[k] = v;
  return out;
}

function mediaMatches(state: State, contentType: string | string[] | undefined): boolean {
  const full = one(contentType).trim().toLowerCase();
  if (state.types.has(full)) return true;
  const semi = full.indexOf(';');
  return semi >= 0 && state.types.has(full.slice(0, semi).trim());
}

function debugHeaders(ctx: ProxyContext, config: ProxyCacheConfig): { status: boolean; key: boolean; age: boolean } {
  if (ctx.headers['kong-debug'] !== undefined) return { status: true, key: true, age: true };
  const h = config.response_headers;
  return { status: h['X-Cache-Status'], key: h['X-Cache-Key'], age: h.age };
}

function served(ctx: ProxyContext, config: ProxyCacheConfig, key: string, e: CachedResponse, status: Pending['status'], now: number): Exit {
  ctx.shared[SLOT] = { status, key, name: '', flight: null, locked: false, stale: null, settled: true } satisfies Pending;
  const show = debugHeaders(ctx, config);
  const headers = { ...e.headers } as Record<string, string>;
  if (show.status) headers['x-cache-status'] = status;
  if (show.key) headers['x-cache-key'] = key;
  if (show.age) headers.age = String(Math.max(0, Math.floor((now - e.storedAt) / 1000)));
  return { status: e.status, body: ctx.method === 'HEAD' ? '' : e.body, headers };
}

function bypass(ctx: ProxyContext): undefined {
  ctx.shared[SLOT] = { status: 'Bypass', key: '', name: '', flight: null, locked: false, stale: null, settled: true } satisfies Pending;
  return undefined;
}

/** Wakes this node's waiters and frees the cluster lock, once. */
function settle(state: State, p: Pending, entry: CachedResponse | null): void {
  if (p.settled) return;
  p.settled = true;
  if (p.locked) state.store!.unlock(p.name);
  if (p.flight !== null) {
    if (state.flights.get(p.name) === p.flight) state.flights.delete(p.name);
    p.flight.resolve(entry);
  }
}

const then = <T, R>(v: T | Promise<T>, f: (v: T) => R | Promise<R>): R | Promise<R> => (v instanceof Promise ? v.then(f) : f(v));

function lookup(ctx: ProxyContext, config: ProxyCacheConfig, state: State, env: PluginEnv, key: string, refresh: boolean, onlyIfCached: boolean): AccessResult | Promise<AccessResult> {
  const store = state.store!;
  const primary = `${state.id}:${key}`;
  return then(store.get(primary), (first) => {
    if (first === null || first.vary === null) return decide(ctx, config, state, env, key, primary, first, refresh, onlyIfCached);
    const name = `${state.id}:${variantKey(key, first.vary, ctx)}`;
    return then(store.get(name), (e) => decide(ctx, config, state, env, key, name, e, refresh, onlyIfCached));
  });
}

function decide(
  ctx: ProxyContext, config: ProxyCacheConfig, state: State, env: PluginEnv, key: string, name: string, entry: CachedResponse | null, refresh: boolean, onlyIfCached: boolean,
): AccessResult | Promise<AccessResult> {
  const now = env.now();
  let stale: CachedResponse | null = null;
  if (entry !== null) {
    const age = now - entry.storedAt;
    if (!refresh) {
      if (age < entry.freshMs) return served(ctx, config, key, entry, 'Hit', now);
      if (age < entry.freshMs + entry.swrMs) {
        revalidate(ctx, state, env, name, now);
        return served(ctx, config, key, entry, 'Stale', now);
      }
    }
    if (age < entry.freshMs + entry.sieMs) stale = entry;
  }
  // RFC 9111 §5.2.1.7, as Kong: nothing cached and the client will take nothing else.
  if (onlyIfCached) return { status: 504, message: 'Gateway Timeout' };
  if (refresh) return lead(ctx, config, state, key, name, 'Refresh', null, false, stale);
  const flight = state.flights.get(name);
  if (flight !== undefined) return collapse(ctx, config, state, env, key, name, flight, stale);
  let resolve!: Flight['resolve'];
  const own: Flight = { promise: new Promise((r) => { resolve = r; }), resolve };
  state.flights.set(name, own);
  return then(tryLock(state.store!, name, config.lock_ms), (locked) => {
    if (locked) return lead(ctx, config, state, key, name, 'Miss', own, true, stale);
    return pollCluster(ctx, config, state, env, key, name, own, stale);
  });
}

/** The cluster lock; a store that fails to answer counts as won (the cache never blocks traffic). */
function tryLock(store: CacheStore, name: string, ms: number): boolean | Promise<boolean> {
  const r = store.lock(name, ms);
  return r instanceof Promise ? r.catch(() => true) : r;
}

/** This request fetches the key; its response phase decides whether the answer is stored. */
function lead(ctx: ProxyContext, config: ProxyCacheConfig, state: State, key: string, name: string, status: 'Miss' | 'Refresh', flight: Flight | null, locked: boolean, stale: CachedResponse | null): undefined {
  const p: Pending = { status, key, name, flight, locked, stale, settled: false };
  ctx.shared[SLOT] = p;
  if (stale !== null) ctx.upstreamFallback = () => staleAnswer(ctx, config, state, p);
  return undefined;
}

/** stale_if_error: the upstream failed; answer with the stale entry instead. */
function staleAnswer(ctx: ProxyContext, config: ProxyCacheConfig, state: State, p: Pending): Exit | null {
  const e = p.stale;
  if (e === null) return null;
  settle(state, p, null);
  return served(ctx, config, p.key, e, 'Stale', Date.now());
}

/** Another request of this node fetches the key: wait for its entry, at most lock_ms, then fetch. */
function collapse(ctx: ProxyContext, config: ProxyCacheConfig, state: State, env: PluginEnv, key: string, name: string, flight: Flight, stale: CachedResponse | null): Promise<AccessResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((r) => { timer = setTimeout(r, config.lock_ms, null); });
  return Promise.race([flight.promise, timeout]).then((e) => {
    clearTimeout(timer);
    if (e !== null) return served(ctx, config, key, e, 'Collapsed', env.now());
    return lead(ctx, config, state, key, name, 'Miss', null, false, stale);
  });
}

/** Another node holds the lock: look for its entry until it appears, or the lock frees (then fetch). */
async function pollCluster(ctx: ProxyContext, config: ProxyCacheConfig, state: State, env: PluginEnv, key: string, name: string, own: Flight, stale: CachedResponse | null): Promise<AccessResult> {
  const store = state.store!;
  const fresh = async (): Promise<CachedResponse | null> => {
    const e = await Promise.resolve(store.get(name)).catch(() => null);
    return e !== null && e.vary === null && env.now() - e.storedAt < e.freshMs ? e : null;
  };
  const collapsed = (e: CachedResponse): Exit => {
    if (state.flights.get(name) === own) state.flights.delete(name);
    own.resolve(e);
    return served(ctx, config, key, e, 'Collapsed', env.now());
  };
  const until = env.now() + config.lock_ms;
  while (env.now() < until) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const e = await fresh();
    if (e !== null) return collapsed(e);
    if (await tryLock(store, name, config.lock_ms)) {
      // The holder may have stored the entry and freed the lock between the look and the lock.
      const late = await fresh();
      if (late === null) return lead(ctx, config, state, key, name, 'Miss', own, true, stale);
      store.unlock(name);
      return collapsed(late);
    }
  }
  return lead(ctx, config, state, key, name, 'Miss', own, false, stale);
}

function revalidate(ctx: ProxyContext, state: State, env: PluginEnv, name: string, now: number): void {
  const port = env.proxyCache;
  const since = state.revalidating.get(name);
  if (port === undefined || (since !== undefined && now - since < REVALIDATE_GUARD_MS)) return;
  // Failed revalidations leave their mark until the guard passes; keys come from clients, so bound it.
  if (state.revalidating.size >= MAX_REVALIDATING) state.revalidating.clear();
  state.revalidating.set(name, now);
  const url = ctx.path + (ctx.hasQuery() ? `?${ctx.query().toString()}` : '');
  port.revalidate(ctx.method, url, { ...ctx.headers, [REVALIDATE_HEADER]: port.revalidateToken });
}

function isRevalidation(ctx: ProxyContext, env: PluginEnv): boolean {
  const v = ctx.headers[REVALIDATE_HEADER];
  if (v === undefined) return false;
  delete ctx.upstreamHeaders[REVALIDATE_HEADER];
  const token = env.proxyCache?.revalidateToken;
  if (token === undefined || typeof v !== 'string') return false;
  const a = Buffer.from(v), b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** How long the response is fresh, in ms; 0: not stored. */
function freshness(config: ProxyCacheConfig, state: State, headers: Record<string, string | string[]>, now: number): number {
  if (!config.cache_control) return state.ttls.freshMs;
  const cc = parseCacheControl(headers['cache-control']);
  if (cc !== null && (cc.has('private') || cc.has('no-store') || cc.has('no-cache'))) return 0;
  const s = seconds(cc?.get('s-maxage')) ?? seconds(cc?.get('max-age'));
  if (s !== null) return s * 1000;
  const expires = Date.parse(one(headers.expires));
  // As Kong: no freshness information, no storing.
  return Number.isNaN(expires) ? 0 : Math.max(0, expires - now);
}

export const proxyCacheHandler: PluginHandler<ProxyCacheConfig, State> = {
  name: proxyCache.name,
  priority: proxyCache.priority,

  init(config, env, instanceId) {
    const freshMs = config.cache_ttl * 1000;
    const swrMs = config.stale_while_revalidate * 1000, sieMs = config.stale_if_error * 1000;
    return {
      id: instanceId,
      // No port (a unit test without one): every request is a Bypass.
      store: env.proxyCache?.store(config) ?? null,
      methods: new Set(config.request_method),
      codes: new Set(config.response_code),
      types: new Set(config.content_type.map((t) => t.trim().toLowerCase().replace(/\s*;\s*/g, '; '))),
      varyHeaders: (config.vary_headers ?? []).map((h) => h.toLowerCase()).sort(),
      varyQuery: config.vary_query_params ? [...config.vary_query_params].sort() : null,
      tagHeader: config.tag_header?.toLowerCase() ?? null,
      flights: new Map(),
      revalidating: new Map(),
      ttls: { freshMs, swrMs, sieMs, storageMs: config.storage_ttl !== null ? config.storage_ttl * 1000 : freshMs + Math.max(swrMs, sieMs) },
    };
  },

  access(ctx, config, state, env) {
    if (state.store === null || !state.methods.has(ctx.method) || ctx.headers.upgrade !== undefined) return bypass(ctx);
    const forced = isRevalidation(ctx, env);
    let refresh = forced, onlyIfCached = false;
    if (config.cache_control && !forced) {
      // As Kong: a request that says no-store, or carries credentials, is not served from the cache.
      const cc = parseCacheControl(ctx.headers['cache-control']);
      if (ctx.headers.authorization !== undefined || cc?.has('no-store')) return bypass(ctx);
      if (cc !== null) {
        refresh = cc.has('no-cache') || seconds(cc.get('max-age')) === 0;
        onlyIfCached = cc.has('only-if-cached');
      }
    }
    return lookup(ctx, config, state, env, cacheKey(ctx, config, state), refresh, onlyIfCached);
  },

  response(ctx, status, headers, config, state, env) {
    const p = ctx.shared[SLOT] as Pending | undefined;
    if (p === undefined) return;
    env.counters.increment(COUNTERS[p.status]);
    const show = debugHeaders(ctx, config);
    if (show.status) headers['x-cache-status'] = p.status;
    if (p.status === 'Bypass' || p.settled) return;
    if (show.key) headers['x-cache-key'] = p.key;
    const now = Date.now();
    const freshMs = state.codes.has(status) && mediaMatches(state, headers['content-type'])
      && (headers['set-cookie'] === undefined || config.cache_set_cookie)
      && Number(one(headers['content-length']) || 0) <= config.max_body_bytes
      ? freshness(config, state, headers, now) : 0;
    const vary = one(headers.vary).toLowerCase().split(',').map((v) => v.trim()).filter((v) => v !== '' && v !== 'accept-encoding').sort();
    if (freshMs <= 0 || vary.includes('*')) { settle(state, p, null); return; }
    ctx.responseCapture = {
      maxBytes: config.max_body_bytes,
      done: (st, h, body) => {
        const tags = state.tagHeader === null ? [] : one(h[state.tagHeader]).split(/[\s,]+/).filter(Boolean);
        const base = { storedAt: now, freshMs, swrMs: state.ttls.swrMs, sieMs: state.ttls.sieMs, route: ctx.route.id, service: ctx.service?.id ?? null, path: ctx.path, tags };
        const entry: CachedResponse = { ...base, status: st, headers: storedHeaders(h), body, vary: null };
        const ttl = Math.max(state.ttls.storageMs, freshMs);
        let name = p.name;
        if (vary.length > 0) {
          // The primary key holds which request headers pick the entry; the entry has its own name.
          state.store!.set(`${state.id}:${p.key}`, { ...base, status: st, headers: {}, body: Buffer.alloc(0), vary }, ttl);
          name = `${state.id}:${variantKey(p.key, vary, ctx)}`;
        }
        state.store!.set(name, entry, ttl);
        state.revalidating.delete(p.name);
        settle(state, p, vary.length > 0 ? null : entry);
      },
      abort: () => { settle(state, p, null); },
    };
  },

  log(ctx, _status, _config, state) {
    const p = ctx.shared[SLOT] as Pending | undefined;
    if (p !== undefined && !p.settled) settle(state, p, null);
  },
};
