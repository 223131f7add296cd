// rate-limiting through real CP and 3 DP processes sharing the harness's Redis (issue 4).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startStack, type Stack } from '../harness/stack.ts';
import { startRedis, waitFor, type RedisHandle } from '../harness/procs.ts';

let s: Stack;
let redis: RedisHandle;

interface Res { status: number; headers: Headers; body: any }
async function get(i: number, path: string, headers: Record<string, string> = {}): Promise<Res> {
  // A request that hangs on Redis would hit this bound and fail the test.
  const r = await fetch(s.dps[i % s.dps.length].proxy + path, { headers, signal: AbortSignal.timeout(3_000) });
  const text = await r.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, headers: r.headers, body };
}
const spread = (n: number, path: string, headers?: Record<string, string>) => Promise.all(Array.from({ length: n }, (_, i) => get(i, path, headers)));
const count = (rs: Res[], status: number) => rs.filter((r) => r.status === status).length;
/** Start a burst early enough in the current window that it cannot straddle two. */
async function earlyInMinute(): Promise<void> {
  const sec = new Date().getUTCSeconds();
  if (sec >= 50) await new Promise((r) => setTimeout(r, (61 - sec) * 1000));
}
async function atFraction(f: number): Promise<void> {
  const frac = (Date.now() % 1000) / 1000;
  await new Promise((r) => setTimeout(r, (frac <= f ? f - frac : 1 - frac + f) * 1000));
}
async function route(name: string, config: Record<string, unknown>, extra?: (r: string) => Promise<void>) {
  await s.A('POST', '/services/svc/routes', { name, paths: [`/${name}`] });
  await extra?.(name);
  await s.write('POST', `/routes/${name}/plugins`, { name: 'rate-limiting', config });
}

before(async () => {
  redis = await startRedis();
  s = await startStack({ dps: 3, dpEnv: { REDIS_URL: redis.url, PORTICO_ACCESS_LOG: 'off' } });
  await s.write('POST', '/services', { name: 'svc', url: s.upstream.url });
});
after(async () => { await s?.stop(); await redis?.stop(); });

describe('exact limits across data planes', () => {
  it('lets exactly 100 of 600 concurrent requests over 3 DPs through a 100/minute limit', async () => {
    await route('exact', { minute: 100, policy: 'redis', limit_by: 'route' });
    await earlyInMinute();
    const rs = await spread(600, '/exact');
    assert.equal(count(rs, 200), 100);
    assert.equal(count(rs, 429), 500);
    const denied = rs.find((r) => r.status === 429)!;
    assert.equal(denied.body.message, 'API rate limit exceeded');
    assert.match(denied.body.request_id, /^[0-9a-f]{32}$/);
    assert.equal(denied.headers.get('x-ratelimit-limit-minute'), '100');
    assert.equal(denied.headers.get('x-ratelimit-remaining-minute'), '0');
    assert.equal(denied.headers.get('ratelimit-limit'), '100');
    assert.equal(denied.headers.get('ratelimit-remaining'), '0');
    const reset = Number(denied.headers.get('ratelimit-reset'));
    assert.ok(reset >= 1 && reset <= 60);
    assert.equal(denied.headers.get('retry-after'), String(reset));
    const okOne = rs.find((r) => r.status === 200)!;
    assert.equal(okOne.headers.get('x-ratelimit-limit-minute'), '100');
  });

  it('local policy counts per node: 3 DPs allow up to 3× the limit', async () => {
    await route('local', { minute: 10, policy: 'local', limit_by: 'route' });
    await earlyInMinute();
    const rs = await spread(90, '/local');
    assert.equal(count(rs, 200), 30, 'each of the 3 nodes allows its own 10');
  });

  it('sliding-window refuses the double burst a fixed window allows at the boundary', async () => {
    await route('fixedw', { second: 20, policy: 'redis', limit_by: 'route' });
    await route('slidew', { second: 20, policy: 'redis', limit_by: 'route', algorithm: 'sliding-window' });
    await atFraction(0.75);
    const [f1, s1] = await Promise.all([spread(20, '/fixedw'), spread(20, '/slidew')]);
    await atFraction(0.15);
    const [f2, s2] = await Promise.all([spread(20, '/fixedw'), spread(20, '/slidew')]);
    assert.equal(count(f1, 200) + count(f2, 200), 40, 'fixed: two full bursts around the boundary');
    assert.equal(count(s1, 200), 20);
    assert.ok(count(s2, 200) <= 8, `sliding: ${count(s2, 200)} passed right after the boundary`);
  });

  it('token bucket allows a burst, then refills at its rate', async () => {
    await route('bucket', { second: 5, burst: 10, policy: 'redis', limit_by: 'route', algorithm: 'token-bucket' });
    const burst = await spread(15, '/bucket');
    assert.equal(count(burst, 200), 10);
    await new Promise((r) => setTimeout(r, 1_000));
    const after1s = await spread(10, '/bucket');
    assert.ok(count(after1s, 200) >= 4 && count(after1s, 200) <= 6, `refilled ${count(after1s, 200)} tokens in 1 s at 5/s`);
  });
});

describe('who is counted', () => {
  it('holds consumer tiers independently (consumer-scoped configs) and per-route limits apart', async () => {
    await s.A('POST', '/consumers', { username: 'free' });
    await s.A('POST', '/consumers', { username: 'pro' });
    await s.A('POST', '/consumers/free/key-auth', { key: 'free-key' });
    await s.A('POST', '/consumers/pro/key-auth', { key: 'pro-key' });
    await s.A('POST', '/services/svc/routes', { name: 'tiers', paths: ['/tiers'] });
    await s.A('POST', '/services/svc/routes', { name: 'tiers2', paths: ['/tiers2'] });
    await s.A('POST', '/services/svc/plugins', { name: 'key-auth' });
    await s.A('POST', '/routes/tiers/plugins', { name: 'rate-limiting', config: { minute: 5, policy: 'redis' } });
    await s.A('POST', '/consumers/free/plugins', { name: 'rate-limiting', config: { minute: 3, policy: 'redis' } });
    await s.write('POST', '/consumers/pro/plugins', { name: 'rate-limiting', config: { minute: 10, policy: 'redis' } });
    await earlyInMinute();
    const free = await spread(20, '/tiers', { apikey: 'free-key' });
    const pro = await spread(20, '/tiers', { apikey: 'pro-key' });
    assert.equal(count(free, 200), 3, 'free tier');
    assert.equal(count(pro, 200), 10, 'pro tier');
    assert.equal(free.find((r) => r.status === 200)!.headers.get('x-ratelimit-limit-minute'), '3');
    // The consumer-scoped config (precedence 5) beats the route config (6) on every route.
    const free2 = await spread(5, '/tiers2', { apikey: 'free-key' });
    assert.equal(count(free2, 200), 0, 'the free consumer already used its 3 on the consumer-scoped counter');
    await s.write('DELETE', '/services/svc/plugins/' + (await s.A('GET', '/services/svc/plugins')).body.data[0].id);
  });

  it('limits by header, with the client IP when the header is missing', async () => {
    await route('byheader', { minute: 2, policy: 'redis', limit_by: 'header', header_name: 'X-Tenant' });
    await earlyInMinute();
    const a = await spread(4, '/byheader', { 'x-tenant': 'a' });
    const b = await spread(4, '/byheader', { 'x-tenant': 'b' });
    const none = await spread(4, '/byheader');
    assert.deepEqual([count(a, 200), count(b, 200), count(none, 200)], [2, 2, 2]);
  });

  it('limits by ip', async () => {
    await route('byip', { minute: 3, policy: 'redis', limit_by: 'ip' });
    await earlyInMinute();
    assert.equal(count(await spread(6, '/byip'), 200), 3);
  });

  it('hides the headers when asked', async () => {
    await route('hidden', { minute: 1, policy: 'redis', limit_by: 'route', hide_client_headers: true });
    const rs = await spread(2, '/hidden');
    for (const r of rs) {
      assert.equal(r.headers.get('x-ratelimit-limit-minute'), null);
      assert.equal(r.headers.get('ratelimit-remaining'), null);
    }
    assert.equal(count(rs, 429), 1);
  });
});

describe('when Redis fails', () => {
  it('answers as configured while Redis is down, without waiting on it, and counts again when it is back', async () => {
    await route('ft-mid', { minute: 1000, policy: 'redis', limit_by: 'route' });
    await route('ft-allow', { minute: 1000, policy: 'redis', limit_by: 'route' });
    await route('ft-strict', { minute: 1000, policy: 'redis', limit_by: 'route', fault_tolerant: false });
    await route('ft-local', { minute: 2, policy: 'redis', limit_by: 'route', on_store_failure: 'local' });
    // Kill Redis in the middle of a burst: requests in flight at that moment still complete.
    const midLoad = spread(60, '/ft-mid');
    await new Promise((r) => setTimeout(r, 15));
    await redis.service.kill();
    assert.equal(count(await midLoad, 200), 60, 'nothing hangs or fails while Redis dies mid-load');
    const allow = await spread(30, '/ft-allow');
    assert.equal(count(allow, 200), 30, 'fault_tolerant lets traffic through');
    assert.equal(allow[0].headers.get('x-ratelimit-limit-minute'), null);
    const strict = await spread(9, '/ft-strict');
    assert.equal(count(strict, 503), 9);
    assert.equal(strict[0].body.message, 'Rate limiting is unavailable: the counter store did not answer');
    const local = await spread(12, '/ft-local');
    assert.equal(count(local, 200), 6, 'node-local counting: 2 per node');
    const metrics = await (await fetch(`${s.dps[0].status}/metrics`)).text();
    assert.match(metrics, /portico_rate_limiting_store_failures_total \d+/);
    await redis.service.start();
    // Each DP has its own breaker: wait until every one of them reaches Redis again.
    for (let i = 0; i < s.dps.length; i++) {
      await waitFor(`DP ${i} rate limiting against Redis again`, async () => (await get(i, '/ft-strict')).status === 200, 15_000, 200);
    }
    await route('ft-after', { minute: 5, policy: 'redis', limit_by: 'route' });
    await earlyInMinute();
    assert.equal(count(await spread(12, '/ft-after'), 200), 5, 'exact again');
  });
});

describe('Redis connections', () => {
  it('keeps one connection per DP when the plugin\'s redis.timeout is edited 20 times', async () => {
    // A Redis of its own, so CLIENT LIST counts only this plugin's connections.
    const own = await startRedis();
    const admin = new Redis(own.url);
    try {
      // Generous timeouts: every request must really count in Redis (fault_tolerant off), even on a loaded machine.
      const redis = (timeout: number) => ({ host: '127.0.0.1', port: Number(new URL(own.url).port), timeout });
      await route('conns', { minute: 10_000, policy: 'redis', limit_by: 'route', fault_tolerant: false, redis: redis(5_000) });
      const id = (await s.A('GET', '/routes/conns/plugins')).body.data[0].id;
      for (let i = 1; i <= 20; i++) {
        const w = await s.write('PATCH', `/plugins/${id}`, { config: { minute: 10_000, policy: 'redis', limit_by: 'route', fault_tolerant: false, redis: redis(5_000 + i) } });
        assert.equal(w.status, 200);
        for (let d = 0; d < s.dps.length; d++) assert.equal((await get(d, '/conns')).status, 200);
      }
      const others = async () => String(await admin.call('CLIENT', 'LIST')).trim().split('\n').length - 1;
      await waitFor('replaced connections closed', async () => (await others()) === s.dps.length, 10_000);
      assert.equal(await others(), s.dps.length, 'one connection per DP');
    } finally {
      admin.disconnect();
      await own.stop();
    }
  });
});

describe('config validation', () => {
  it('refuses bad configs with Kong-style field errors and stores nothing', async () => {
    const before = (await s.A('GET', '/plugins')).body.data.length;
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ minute: -1 }, { config: { minute: 'value should be greater than 0' } }],
      [{ minute: 100, hour: 10 }, { config: { hour: 'The limit for hour(10) cannot be lower than the limit for minute(100)' } }],
      [{ minute: 1, policy: 'cluster' }, { config: { policy: "'cluster' is not supported: use 'redis' (exact across nodes) or 'local' (per node)" } }],
      [{ minute: 1, policy: 'memcached' }, { config: { policy: 'expected one of: local, redis, cluster' } }],
      [{ minute: 1, limit_by: 'header' }, { config: { header_name: 'required field missing' } }],
      [{}, { config: { '@entity': "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'" } }],
    ];
    for (const [config, fields] of cases) {
      const r = await s.A('POST', '/plugins', { name: 'rate-limiting', config });
      assert.equal(r.status, 400, JSON.stringify(config));
      assert.deepEqual(r.body.fields, fields, JSON.stringify(config));
    }
    assert.equal((await s.A('GET', '/plugins')).body.data.length, before);
  });
});
