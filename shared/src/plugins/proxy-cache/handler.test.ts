import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { instantiate, testCtx, testEnv } from '../test-ports.ts';
import { cacheKey, encodingClass, parseCacheControl, proxyCacheHandler } from './handler.ts';
import { proxyCacheConfig } from './schema.ts';
import { MemoryCacheStore, matchesPurge, type CachedResponse, type ProxyCachePort } from './store.ts';

const entry = (bytes: number, over: Partial<CachedResponse> = {}): CachedResponse => ({
  status: 200, headers: { 'content-type': 'text/plain' }, body: Buffer.alloc(bytes), storedAt: 0, freshMs: 1000, swrMs: 0, sieMs: 0,
  route: 'r1', service: 's1', path: '/a/b', tags: ['t1'], vary: null, ...over,
});

function withStore() {
  const store = new MemoryCacheStore(1 << 20);
  const port: ProxyCachePort = { store: () => store, revalidate: () => {}, revalidateToken: 'tok' };
  const env = { ...testEnv(), proxyCache: port };
  return { store, env };
}

describe('proxy-cache key', () => {
  const state = { varyHeaders: [], varyQuery: null };
  const config = proxyCacheConfig.parse({});

  it('sorts query arguments, so their order does not split entries', () => {
    assert.equal(cacheKey(testCtx({ url: '/p?b=2&a=1' }), config, state), cacheKey(testCtx({ url: '/p?a=1&b=2' }), config, state));
    assert.notEqual(cacheKey(testCtx({ url: '/p?a=1' }), config, state), cacheKey(testCtx({ url: '/p?a=2' }), config, state));
  });

  it('keys only the listed query arguments and headers when told', () => {
    const only = { varyHeaders: ['x-lang'], varyQuery: ['page'] };
    assert.equal(cacheKey(testCtx({ url: '/p?page=1&utm=x' }), config, only), cacheKey(testCtx({ url: '/p?page=1&utm=y' }), config, only));
    assert.notEqual(cacheKey(testCtx({ headers: { 'x-lang': 'en' } }), config, only), cacheKey(testCtx({ headers: { 'x-lang': 'fr' } }), config, only));
  });

  it('is per consumer with cache_scope consumer, shared otherwise', () => {
    const a = { id: 'c-a' } as never, b = { id: 'c-b' } as never;
    assert.notEqual(cacheKey(testCtx({ consumer: a }), config, state), cacheKey(testCtx({ consumer: b }), config, state));
    const shared = proxyCacheConfig.parse({ cache_scope: 'shared' });
    assert.equal(cacheKey(testCtx({ consumer: a }), shared, state), cacheKey(testCtx({ consumer: b }), shared, state));
  });

  it('reduces Accept-Encoding to br, gzip or identity', () => {
    assert.equal(encodingClass(undefined), 'identity');
    assert.equal(encodingClass('gzip, deflate, br'), 'br');
    assert.equal(encodingClass('deflate, GZIP;q=0.5'), 'gzip');
    assert.equal(encodingClass('gzip;q=0, deflate'), 'identity');
  });

  it('reads Cache-Control directives with quoted values', () => {
    const cc = parseCacheControl('public, max-age="60", No-Store')!;
    assert.equal(cc.get('max-age'), '60');
    assert.equal(cc.get('no-store'), true);
  });
});

describe('proxy-cache handler', () => {
  it('bypasses methods it does not cache, and upgrades', () => {
    const { env } = withStore();
    const h = instantiate(proxyCacheHandler, proxyCacheConfig, {}, env);
    const post = testCtx({ method: 'POST' });
    assert.equal(h.access(post), undefined);
    assert.equal(h.response(post)['x-cache-status'], 'Bypass');
    const ws = testCtx({ headers: { upgrade: 'websocket' } });
    h.access(ws);
    assert.equal(h.response(ws)['x-cache-status'], 'Bypass');
  });

  it('treats a revalidation header without the node\'s token as a client header, and never sends it upstream', () => {
    const { env } = withStore();
    const h = instantiate(proxyCacheHandler, proxyCacheConfig, {}, env);
    const ctx = testCtx({ headers: { 'x-portico-cache-revalidate': 'guess' }, upstreamHeaders: { 'x-portico-cache-revalidate': 'guess' } });
    h.access(ctx);
    assert.equal(ctx.upstreamHeaders['x-portico-cache-revalidate'], undefined);
    assert.equal(h.response(ctx)['x-cache-status'], 'Miss');
  });

  it('stores only what it may: status, media type (parameters ignored), no Set-Cookie, size', () => {
    const cases: [Record<string, string>, number, boolean][] = [
      [{ 'content-type': 'application/json; charset=utf-8' }, 200, true],
      [{ 'content-type': 'text/html' }, 200, false],
      [{ 'content-type': 'application/json' }, 500, false],
      [{ 'content-type': 'application/json', 'set-cookie': 'a=b' }, 200, false],
      [{ 'content-type': 'application/json', vary: '*' }, 200, false],
      [{ 'content-type': 'application/json', 'content-length': String(2 << 20) }, 200, false],
    ];
    for (const [headers, status, stored] of cases) {
      const { env } = withStore();
      const h = instantiate(proxyCacheHandler, proxyCacheConfig, {}, env);
      const ctx = testCtx();
      h.access(ctx);
      h.response(ctx, { ...headers }, status);
      assert.equal(ctx.responseCapture != null, stored, JSON.stringify({ headers, status }));
    }
  });
});

describe('proxy-cache memory store', () => {
  it('evicts the least recently used entries past its byte cap', () => {
    const s = new MemoryCacheStore(10_000);
    s.set('p:a', entry(4_000), 60_000);
    s.set('p:b', entry(4_000), 60_000);
    s.get('p:a');
    s.set('p:c', entry(4_000), 60_000);
    assert.ok(s.get('p:a') !== null);
    assert.equal(s.get('p:b'), null);
    assert.ok(s.bytes <= 10_000);
    s.set('p:huge', entry(20_000), 60_000);
    assert.equal(s.get('p:huge'), null, 'an entry larger than the store is not kept');
  });

  it('purges by plugin, key (with its Vary split), route, service, prefix and tag', async () => {
    assert.ok(matchesPurge('p1:k', null, {}));
    assert.ok(matchesPurge('p1:k.abc', null, { key: 'k' }));
    assert.ok(!matchesPurge('p1:kk', null, { key: 'k' }));
    assert.ok(!matchesPurge('p2:k', null, { plugin: 'p1' }));
    const e = entry(1);
    assert.ok(matchesPurge('p1:k', e, { route: 'r1', prefix: '/a', tag: 't1', service: 's1' }));
    assert.ok(!matchesPurge('p1:k', e, { prefix: '/b' }));
    assert.ok(!matchesPurge('p1:k', e, { tag: 't2' }));
    const s = new MemoryCacheStore(1 << 20);
    s.set('p1:k', e, 60_000);
    s.set('p1:j', entry(1, { route: 'r2' }), 60_000);
    assert.equal(await s.purge({ route: 'r1' }), 1);
    assert.equal(s.get('p1:k'), null);
    assert.ok(s.get('p1:j') !== null);
  });
});
