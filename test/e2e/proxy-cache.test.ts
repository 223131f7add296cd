// proxy-cache through a real CP and three DP processes, a real Redis and NATS, and an echo upstream
// that counts what reaches it (issue 14, "Caching").
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { CACHE_SUBJECT } from '@portico/shared';
import { startStack, type Stack } from '../harness/stack.ts';
import { startRedis, waitFor, type RedisHandle } from '../harness/procs.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { admin, startGateway } from '../harness/gateway.ts';

let s: Stack;
let redis: RedisHandle;

interface Res { status: number; headers: Headers; body: string }
async function get(dp: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Res> {
  const r = await fetch(s.dps[dp].proxy + path, { method, headers, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, headers: r.headers, body: await r.text() };
}
const cacheStatus = (r: Res) => r.headers.get('x-cache-status');

/** A route on `svc` with proxy-cache configured as given; returns the plugin. */
async function cachedRoute(name: string, config: Record<string, unknown>, service = 'svc'): Promise<{ id: string }> {
  await s.write('POST', `/services/${service}/routes`, { name, paths: [`/${name}`] });
  const p = await s.write('POST', `/routes/${name}/plugins`, { name: 'proxy-cache', config });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  return p.body;
}

/** Sends the upstream a response header (the harness's `set_header`). */
const hdr = (name: string, value: string) => `set_header=${encodeURIComponent(`${name}:${value}`)}`;

before(async () => {
  redis = await startRedis();
  s = await startStack({ dps: 3, dpEnv: { REDIS_URL: redis.url, PORTICO_ACCESS_LOG: 'off' } });
  await s.write('POST', '/services', { name: 'svc', url: s.upstream.url });
});
after(async () => { await s?.stop(); await redis?.stop(); });

describe('hits, misses, bypasses and refreshes', () => {
  it('answers Miss, then Hit without calling the upstream; Bypass for a POST; Refresh for Cache-Control: no-cache', async () => {
    await cachedRoute('basic', { strategy: 'memory', cache_control: true });
    const path = `/basic/x?${hdr('cache-control', 'max-age=60')}`;
    const before = s.upstream.hits;
    const miss = await get(0, path);
    assert.equal(miss.status, 200);
    assert.equal(cacheStatus(miss), 'Miss');
    assert.match(miss.headers.get('x-cache-key') ?? '', /^[0-9a-f]{64}$/);
    const hit = await get(0, path);
    assert.equal(cacheStatus(hit), 'Hit');
    assert.equal(hit.body, miss.body, 'the stored body, byte for byte');
    assert.equal(hit.headers.get('x-cache-key'), miss.headers.get('x-cache-key'));
    assert.equal(hit.headers.get('content-type'), 'application/json');
    assert.ok(Number(hit.headers.get('age')) >= 0);
    assert.equal(s.upstream.hits, before + 1, 'the hit never reached the upstream');
    const post = await get(0, path, {}, 'POST');
    assert.equal(cacheStatus(post), 'Bypass');
    const refresh = await get(0, path, { 'cache-control': 'no-cache' });
    assert.equal(cacheStatus(refresh), 'Refresh');
    assert.equal(s.upstream.hits, before + 3);
    assert.equal(cacheStatus(await get(0, path)), 'Hit');
    const metrics = await (await fetch(`${s.dps[0].status}/metrics`)).text();
    assert.match(metrics, /^portico_proxy_cache_hit_total [1-9]/m);
    assert.match(metrics, /^portico_proxy_cache_miss_total [1-9]/m);
    // cache_control: a response that says no-store is never stored.
    const noStore = `/basic/y?${hdr('cache-control', 'no-store')}`;
    assert.equal(cacheStatus(await get(0, noStore)), 'Miss');
    assert.equal(cacheStatus(await get(0, noStore)), 'Miss');
  });

  it('keeps the upstream\'s statuses it is not told to cache out of the cache', async () => {
    await cachedRoute('status', { strategy: 'memory' });
    assert.equal(cacheStatus(await get(0, '/status/x?status=500')), 'Miss');
    const again = await get(0, '/status/x?status=500');
    assert.equal(again.status, 500);
    assert.equal(cacheStatus(again), 'Miss');
  });
});

describe('what is part of the key', () => {
  it('honours the response\'s Vary, and keeps Accept-Encoding classes apart', async () => {
    await cachedRoute('vary', { strategy: 'memory' });
    const path = `/vary/x?${hdr('vary', 'X-Lang')}`;
    assert.equal(cacheStatus(await get(0, path, { 'x-lang': 'en' })), 'Miss');
    assert.equal(cacheStatus(await get(0, path, { 'x-lang': 'fr' })), 'Miss');
    const en = await get(0, path, { 'x-lang': 'en' });
    assert.equal(cacheStatus(en), 'Hit');
    assert.equal(JSON.parse(en.body).headers['x-lang'], 'en', 'the entry of the request\'s own header value');
    const fr = await get(0, path, { 'x-lang': 'fr' });
    assert.equal(JSON.parse(fr.body).headers['x-lang'], 'fr');

    const plain = '/vary/enc';
    assert.equal(cacheStatus(await get(0, plain, { 'accept-encoding': 'identity' })), 'Miss');
    assert.equal(cacheStatus(await get(0, plain, { 'accept-encoding': 'gzip, deflate' })), 'Miss', 'gzip is another class');
    assert.equal(cacheStatus(await get(0, plain, { 'accept-encoding': 'deflate, gzip;q=0.8' })), 'Hit', 'the same class, written otherwise');
    assert.equal(cacheStatus(await get(0, plain, { 'accept-encoding': 'gzip;q=0' })), 'Hit', 'gzip refused is identity');
  });

  it('never stores a response that sets a cookie, unless cache_set_cookie', async () => {
    await cachedRoute('cookie', { strategy: 'memory' });
    const path = `/cookie/x?${hdr('set-cookie', 'session=abc; HttpOnly')}`;
    const before = s.upstream.hits;
    assert.equal(cacheStatus(await get(0, path)), 'Miss');
    const second = await get(0, path);
    assert.equal(cacheStatus(second), 'Miss');
    assert.equal(s.upstream.hits, before + 2);
    await cachedRoute('cookie-ok', { strategy: 'memory', cache_set_cookie: true });
    const ok = `/cookie-ok/x?${hdr('set-cookie', 'theme=dark')}`;
    assert.equal(cacheStatus(await get(0, ok)), 'Miss');
    const hit = await get(0, ok);
    assert.equal(cacheStatus(hit), 'Hit');
    assert.equal(hit.headers.get('set-cookie'), 'theme=dark');
  });

  it('keeps each consumer\'s entries apart (cache_scope consumer), or shares them (shared)', async () => {
    await s.write('POST', '/consumers', { username: 'ann' });
    await s.write('POST', '/consumers', { username: 'bob' });
    await s.write('POST', '/consumers/ann/key-auth', { key: 'ann-key' });
    await s.write('POST', '/consumers/bob/key-auth', { key: 'bob-key' });
    for (const [name, scope] of [['per-consumer', 'consumer'], ['shared-scope', 'shared']] as const) {
      await cachedRoute(name, { strategy: 'memory', cache_scope: scope });
      await s.write('POST', `/routes/${name}/plugins`, { name: 'key-auth' });
    }
    assert.equal(cacheStatus(await get(0, '/per-consumer/x', { apikey: 'ann-key' })), 'Miss');
    assert.equal(cacheStatus(await get(0, '/per-consumer/x', { apikey: 'ann-key' })), 'Hit');
    assert.equal(cacheStatus(await get(0, '/per-consumer/x', { apikey: 'bob-key' })), 'Miss', 'bob never gets ann\'s entry');
    assert.equal((await get(0, '/per-consumer/x')).status, 401, 'auth runs before the cache');
    assert.equal(cacheStatus(await get(0, '/shared-scope/x', { apikey: 'ann-key' })), 'Miss');
    assert.equal(cacheStatus(await get(0, '/shared-scope/x', { apikey: 'bob-key' })), 'Hit');
  });
});

describe('no stampede', () => {
  const burst = (dp: number, path: string) => Promise.all(Array.from({ length: 100 }, () => get(dp, path)));

  it('sends 100 concurrent misses for one key to the upstream once per node (memory)', async () => {
    await cachedRoute('herd-mem', { strategy: 'memory' });
    const before = s.upstream.hits;
    const rs = (await Promise.all([burst(0, '/herd-mem/x?delay_ms=300'), burst(1, '/herd-mem/x?delay_ms=300')])).flat();
    assert.ok(rs.every((r) => r.status === 200));
    assert.equal(s.upstream.hits - before, 2, 'one upstream request per node');
    assert.equal(rs.filter((r) => cacheStatus(r) === 'Miss').length, 2);
    assert.equal(rs.filter((r) => cacheStatus(r) === 'Collapsed').length, 198);
  });

  it('sends 100 concurrent misses on each of two nodes to the upstream once in all (redis)', async () => {
    await cachedRoute('herd-redis', { strategy: 'redis' });
    const before = s.upstream.hits;
    const rs = (await Promise.all([burst(0, '/herd-redis/x?delay_ms=300'), burst(1, '/herd-redis/x?delay_ms=300')])).flat();
    assert.ok(rs.every((r) => r.status === 200));
    assert.equal(s.upstream.hits - before, 1, 'one upstream request across the cluster');
    // The third node finds the entry in Redis.
    assert.equal(cacheStatus(await get(2, '/herd-redis/x?delay_ms=300')), 'Hit');
    assert.equal(s.upstream.hits - before, 1);
  });
});

describe('staleness', () => {
  let down: Upstream;
  before(async () => {
    down = await startUpstream();
    await s.write('POST', '/services', { name: 'flaky', url: down.url, retries: 0 });
  });

  it('serves the stale entry when the upstream is down (stale_if_error)', async () => {
    await cachedRoute('sie', { strategy: 'memory', cache_ttl: 1, stale_if_error: 60 }, 'flaky');
    const fresh = await get(0, '/sie/x');
    assert.equal(cacheStatus(fresh), 'Miss');
    await down.close();
    await new Promise((r) => setTimeout(r, 1_200));
    const stale = await get(0, '/sie/x');
    assert.equal(stale.status, 200);
    assert.equal(cacheStatus(stale), 'Stale');
    assert.equal(stale.body, fresh.body);
    assert.equal((await get(0, '/sie/other')).status, 502, 'nothing stale to serve: the gateway\'s 502');
  });

  it('serves the stale entry in place of an upstream 5xx (stale_if_error)', async () => {
    await cachedRoute('sie5xx', { strategy: 'memory', cache_ttl: 1, stale_if_error: 60 });
    const fresh = await get(0, '/sie5xx/x');
    assert.equal(cacheStatus(fresh), 'Miss');
    await new Promise((r) => setTimeout(r, 1_200));
    s.upstream.mode.status = 503;
    try {
      const stale = await get(0, '/sie5xx/x');
      assert.equal(stale.status, 200);
      assert.equal(cacheStatus(stale), 'Stale');
      assert.equal(stale.body, fresh.body);
    } finally {
      delete s.upstream.mode.status;
    }
  });

  it('serves a stale entry at once and refreshes it in the background (stale_while_revalidate)', async () => {
    await cachedRoute('swr', { strategy: 'memory', cache_ttl: 1, stale_while_revalidate: 60 });
    const first = await get(0, '/swr/x');
    assert.equal(cacheStatus(first), 'Miss');
    await new Promise((r) => setTimeout(r, 1_200));
    const before = s.upstream.hits;
    const stale = await get(0, '/swr/x');
    assert.equal(cacheStatus(stale), 'Stale');
    assert.equal(stale.body, first.body);
    await waitFor('background refresh', async () => s.upstream.hits > before, 5_000);
    const next = await waitFor('refreshed entry', async () => { const r = await get(0, '/swr/x'); return cacheStatus(r) === 'Hit' ? r : undefined; }, 5_000);
    assert.notEqual(next.body, first.body, 'the entry was replaced');
    assert.equal(s.upstream.hits, before + 1);
  });
});

describe('purges over the bus', () => {
  it('purges one key on all three DPs, and the answer lists the nodes', async () => {
    const plugin = await cachedRoute('purge', { strategy: 'memory' });
    const keys = new Set<string>();
    for (let i = 0; i < 3; i++) {
      keys.add((await get(i, '/purge/x')).headers.get('x-cache-key')!);
      assert.equal(cacheStatus(await get(i, '/purge/x')), 'Hit');
    }
    assert.equal(keys.size, 1, 'every node computes the same key');
    const [key] = keys;
    const entry = await s.A('GET', `/proxy-cache/${plugin.id}/caches/${key}`);
    assert.equal(entry.status, 200);
    assert.equal(entry.body.key, key);
    assert.equal(entry.body.plugin, plugin.id);
    assert.equal(entry.body.entry.status, 200);
    const r = await s.A('DELETE', `/proxy-cache/${plugin.id}/caches/${key}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const nodeIds = await Promise.all(s.dps.map(async (dp) => ((await (await fetch(`${dp.status}/status`)).json()) as { node: { id: string } }).node.id));
    assert.deepEqual(r.body.purged.map((p: { node_id: string }) => p.node_id).sort(), [...nodeIds].sort());
    assert.ok(r.body.purged.every((p: { entries: number }) => p.entries === 1));
    assert.deepEqual(r.body.not_answered, []);
    for (let i = 0; i < 3; i++) assert.equal(cacheStatus(await get(i, '/purge/x')), 'Miss');
    assert.equal((await s.A('GET', `/proxy-cache/${plugin.id}/caches/${'0'.repeat(64)}`)).status, 404);
  });

  it('purges by route and by path prefix, leaving the rest', async () => {
    await cachedRoute('purge-a', { strategy: 'redis' });
    await cachedRoute('purge-b', { strategy: 'memory' });
    for (const p of ['/purge-a/x', '/purge-a/y', '/purge-b/keep', '/purge-b/drop/1']) await get(0, p);
    const byRoute = await s.A('DELETE', '/proxy-cache?route=purge-a');
    assert.equal(byRoute.status, 200);
    assert.equal(byRoute.body.purged.reduce((n: number, p: { entries: number }) => n + p.entries, 0) >= 2, true);
    assert.equal(cacheStatus(await get(1, '/purge-a/x')), 'Miss', 'gone from Redis too');
    const byPrefix = await s.A('DELETE', '/proxy-cache?prefix=/purge-b/drop');
    assert.equal(byPrefix.status, 200);
    assert.equal(cacheStatus(await get(0, '/purge-b/drop/1')), 'Miss');
    assert.equal(cacheStatus(await get(0, '/purge-b/keep')), 'Hit');
  });

  it('ignores a purge put on NATS without the control plane\'s signature', async () => {
    await cachedRoute('purge-forged', { strategy: 'memory' });
    await get(0, '/purge-forged/x');
    const nc = await connect({ servers: s.nats.url });
    try {
      const forged = JSON.stringify({ id: randomUUID(), issued_at: Date.now(), op: 'purge' });
      await assert.rejects(nc.request(CACHE_SUBJECT, forged, { timeout: 500 }), 'no DP answers it');
    } finally {
      await nc.close();
    }
    assert.equal(cacheStatus(await get(0, '/purge-forged/x')), 'Hit');
  });

  it('purges in the all-in-one too (in-process bus, no NATS)', async () => {
    const g = await startGateway('all-in-one', { env: { DATABASE_URL: undefined, NATS_URL: undefined, REDIS_URL: undefined, PORTICO_ACCESS_LOG: 'off' } });
    try {
      await admin(g.admin, 'POST', '/services', { name: 'svc', url: s.upstream.url });
      await admin(g.admin, 'POST', '/services/svc/routes', { name: 'aio', paths: ['/aio'] });
      await admin(g.admin, 'POST', '/routes/aio/plugins', { name: 'proxy-cache', config: { strategy: 'memory' } });
      const one = async () => { const r = await fetch(`${g.proxy}/aio/x`); await r.arrayBuffer(); return r.headers.get('x-cache-status'); };
      await waitFor('plugin applied', async () => (await one()) === 'Miss');
      assert.equal(await one(), 'Hit');
      // The embedded DP reports by heartbeat; once listed it is expected to answer.
      await waitFor('node listed', async () => (await admin(g.admin, 'GET', '/clustering/data-planes')).body.data.length === 1);
      const r = await admin(g.admin, 'DELETE', '/proxy-cache');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.purged.length, 1);
      assert.equal(r.body.purged[0].entries, 1);
      assert.equal(await one(), 'Miss');
    } finally {
      await g.kill();
      g.cleanup();
    }
  });

  it('refuses bad purges with a clear error', async () => {
    assert.equal((await s.A('DELETE', '/proxy-cache?colour=red')).status, 400);
    assert.equal((await s.A('DELETE', '/proxy-cache?prefix=nope')).status, 400);
    assert.equal((await s.A('DELETE', '/proxy-cache?route=no-such-route')).status, 404);
    // Control characters, a 10 KB value and a hostile key are refused before anything goes on the bus.
    for (const q of ['prefix=/a%00b', 'prefix=/a%0d%0aX-Evil:%201', 'tag=a%0ab', `tag=${'x'.repeat(10_000)}`, 'tag=']) {
      const r = await s.A('DELETE', `/proxy-cache?${q}`);
      assert.equal(r.status, 400, `${q.slice(0, 40)}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.match(r.body.message, /must be a non-empty string without control characters/);
    }
    for (const key of ['a%0d%0ab', 'a%00b', 'x'.repeat(300), '*']) {
      const r = await s.A('DELETE', `/proxy-cache/${key}`);
      assert.equal(r.status, 400, key.slice(0, 40));
      assert.match(r.body.message, /invalid cache key/);
      assert.ok(!/[\r\n\0]/.test(r.body.message), 'the key is not echoed with its control characters');
    }
    // A non-ASCII prefix is a path like any other: it purges (nothing) and answers which nodes ran it.
    const accented = await s.A('DELETE', '/proxy-cache?prefix=/caf%C3%A9');
    assert.equal(accented.status, 200, JSON.stringify(accented.body));
    assert.equal(accented.body.filter.prefix, '/café');
    const svc = await s.A('GET', '/services/svc');
    assert.equal((await s.A('DELETE', `/proxy-cache/${svc.body.id}/caches/abc`)).status, 404, 'not a proxy-cache plugin');
  });
});

describe('config', () => {
  it('refuses bad config with the field and why, and changes nothing', async () => {
    await s.write('POST', '/services/svc/routes', { name: 'bad', paths: ['/bad'] });
    const cases: [Record<string, unknown>, string][] = [
      [{ strategy: 'disk' }, 'strategy'],
      [{ response_code: [] }, 'response_code'],
      [{ cache_ttl: 0 }, 'cache_ttl'],
      [{ cache_ttl: 60, storage_ttl: 10 }, 'storage_ttl'],
      [{ vary_headers: ['bad header'] }, 'vary_headers'],
      [{ request_method: ['TRACE'] }, 'request_method'],
      [{ cache_scope: 'everyone' }, 'cache_scope'],
      [{ colour: 'red' }, 'colour'],
    ];
    for (const [config, field] of cases) {
      const r = await s.A('POST', '/routes/bad/plugins', { name: 'proxy-cache', config });
      assert.equal(r.status, 400, JSON.stringify(config));
      assert.ok(JSON.stringify(r.body.fields?.config ?? r.body).includes(field), `${JSON.stringify(r.body)} names ${field}`);
    }
    const list = await s.A('GET', '/routes/bad/plugins');
    assert.equal(list.body.data.length, 0);
    // Kong's fields are accepted as Kong writes them.
    const kong = await s.A('POST', '/routes/bad/plugins', {
      name: 'proxy-cache',
      config: { strategy: 'memory', response_code: [200], request_method: ['GET'], content_type: ['application/json'], cache_ttl: 30, cache_control: false, ignore_uri_case: true, vary_headers: ['X-Lang'], vary_query_params: ['page'], storage_ttl: 60, memory: { dictionary_name: 'kong_db_cache' } },
    });
    assert.equal(kong.status, 201, JSON.stringify(kong.body));
  });
});

// Last: it stops a DP for good.
describe('a node that does not answer', () => {
  it('is listed under not_answered, and the purge still reaches the others', async () => {
    await cachedRoute('gone', { strategy: 'memory' });
    for (let i = 0; i < 3; i++) await get(i, '/gone/x');
    const stopped = s.dps[2];
    const stoppedId = ((await (await fetch(`${stopped.status}/status`)).json()) as { node: { id: string } }).node.id;
    await stopped.kill();
    const r = await s.A('DELETE', '/proxy-cache?route=gone');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.not_answered.map((n: { node_id: string }) => n.node_id), [stoppedId]);
    assert.equal(r.body.purged.length, 2);
    for (let i = 0; i < 2; i++) assert.equal(cacheStatus(await get(i, '/gone/x')), 'Miss');
  });
});
