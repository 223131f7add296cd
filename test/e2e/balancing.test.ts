// Upstreams, balancing, health checks, the circuit breaker, retries, canary and query routes,
// through real CP and DP processes and real upstream processes the test stops, slows and breaks (issue 5).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../harness/stack.ts';
import { startUpstream, type Upstream, wsRoundTrip } from '../harness/upstream.ts';
import { freePort, waitFor } from '../harness/procs.ts';

let s: Stack;
const ups: Upstream[] = [];
const up = async () => { const u = await startUpstream(); ups.push(u); return u; };

async function get(path: string, init: RequestInit = {}): Promise<{ status: number; port: string | null; body: string }> {
  const r = await fetch(s.dps[0].proxy + path, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: r.status, port: r.headers.get('x-upstream-port'), body: await r.text() };
}
const tally = (rs: { port: string | null }[]) => rs.reduce<Record<string, number>>((m, r) => { const k = r.port ?? 'none'; m[k] = (m[k] ?? 0) + 1; return m; }, {});
async function many(n: number, path: string, init?: RequestInit, parallel = 10) {
  const out: Awaited<ReturnType<typeof get>>[] = [];
  for (let i = 0; i < n; i += parallel) out.push(...await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, () => get(path, init))));
  return out;
}
async function health(upstream: string) {
  const r = await fetch(`${s.dps[0].status}/upstreams/${upstream}/health`);
  return (await r.json()) as { data: { target: string; health: string; circuit_breaker: string | null }[] };
}
/** An upstream entity with targets, a service on it, and a route /<name>. */
async function setup(name: string, upstream: Record<string, unknown>, targets: [Upstream | string, number?][]) {
  await s.A('POST', '/upstreams', { name: `${name}.internal`, ...upstream });
  for (const [t, weight] of targets) {
    const target = typeof t === 'string' ? t : `127.0.0.1:${t.port}`;
    const r = await s.A('POST', `/upstreams/${name}.internal/targets`, { target, ...(weight !== undefined ? { weight } : {}) });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  await s.A('POST', '/services', { name, host: `${name}.internal`, port: 80, retries: 2, connect_timeout: 500 });
  await s.write('POST', `/services/${name}/routes`, { name, paths: [`/${name}`] });
}

before(async () => { s = await startStack({ dps: 1 }); });
after(async () => { await s?.stop(); await Promise.all(ups.map((u) => u.close().catch(() => {}))); });

describe('balancing', () => {
  it('spreads traffic by weight (round-robin) within a few percent over 1,000 requests', async () => {
    const [a, b, c] = [await up(), await up(), await up()];
    await setup('weighted', {}, [[a, 50], [b, 30], [c, 20]]);
    const t = tally(await many(1000, '/weighted', undefined, 20));
    assert.ok(Math.abs(t[a.port] - 500) <= 30 && Math.abs(t[b.port] - 300) <= 30 && Math.abs(t[c.port] - 200) <= 30, JSON.stringify(t));
  });

  it('sends more to the faster target with least-connections', async () => {
    const [fast, slow] = [await up(), await up()];
    slow.mode.delayMs = 300;
    await setup('leastconn', { algorithm: 'least-connections' }, [[fast], [slow]]);
    // Keep 10 requests in flight: a freed slot goes to whichever target has fewer open requests.
    const results: Awaited<ReturnType<typeof get>>[] = [];
    let started = 0;
    await Promise.all(Array.from({ length: 10 }, async () => { while (started++ < 80) results.push(await get('/leastconn')); }));
    const t = tally(results);
    assert.ok(t[fast.port] > 2 * (t[slow.port] ?? 0), JSON.stringify(t));
  });

  it('prefers the faster target with the latency algorithm', async () => {
    const [fast, slow] = [await up(), await up()];
    slow.mode.delayMs = 150;
    await setup('latency', { algorithm: 'latency' }, [[fast], [slow]]);
    const t = tally(await many(40, '/latency', undefined, 1));
    assert.ok(t[fast.port] >= 30, JSON.stringify(t));
  });

  it('hash_on cookie sets the cookie when absent, and the cookie keeps a client on its target', async () => {
    const targets = [await up(), await up(), await up()];
    await setup('sticky', { hash_on: 'cookie', hash_on_cookie: 'portico-sticky', hash_on_cookie_path: '/sticky' }, targets.map((t) => [t]));
    const first = await fetch(`${s.dps[0].proxy}/sticky`);
    const cookie = first.headers.get('set-cookie')!;
    assert.match(cookie, /^portico-sticky=[0-9a-f]{32}; Path=\/sticky$/);
    const port = first.headers.get('x-upstream-port');
    await first.arrayBuffer();
    const again = await many(10, '/sticky', { headers: { cookie: cookie.split(';')[0] } });
    assert.ok(again.every((r) => r.port === port), 'every request with the cookie lands on the first target');
  });

  it('hashes a header to a stable target and moves about 1/N of keys when a target is added', async () => {
    const targets = [await up(), await up(), await up()];
    await setup('hashed', { hash_on: 'header', hash_on_header: 'x-user' }, targets.map((t) => [t]));
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const where = async () => Object.fromEntries(await Promise.all(keys.map(async (k) => [k, (await get('/hashed', { headers: { 'x-user': k } })).port])));
    const first = await where();
    assert.deepEqual(await where(), first, 'the same key goes to the same target');
    const added = await up();
    await s.write('POST', '/upstreams/hashed.internal/targets', { target: `127.0.0.1:${added.port}` });
    const second = await where();
    const moved = keys.filter((k) => second[k] !== first[k]);
    assert.ok(moved.length > 20 && moved.length < 90, `${moved.length} of 200 keys moved (ideal 50)`);
    assert.ok(moved.every((k) => second[k] === String(added.port)), 'keys only move to the new target');
  });
});

describe('health checks and the circuit breaker', () => {
  it('passive checks take a failing target out after the threshold; active checks bring it back', async () => {
    const [good, bad] = [await up(), await up()];
    await setup('passive', {
      healthchecks: {
        passive: { unhealthy: { http_failures: 3 } },
        active: { http_path: '/health', healthy: { interval: 0 }, unhealthy: { interval: 0.2, http_statuses: [500, 503] }, timeout: 1 },
      },
    }, [[good], [bad]]);
    // Active probes of unhealthy targets would heal `bad` at once; make them fail too until it is fixed.
    bad.mode.status = 500;
    await many(20, '/passive', undefined, 1);
    const h = await health('passive.internal');
    assert.equal(h.data.find((t) => t.target.endsWith(`:${bad.port}`))!.health, 'UNHEALTHY');
    const hitsBefore = bad.hits;
    const t = tally(await many(20, '/passive', undefined, 1));
    assert.equal(t[good.port], 20, 'no traffic to the unhealthy target');
    assert.ok(bad.hits - hitsBefore <= 5, 'only active probes reach it');
    // Kong's active check needs healthy.successes to mark it healthy again.
    await s.write('PATCH', '/upstreams/passive.internal', { healthchecks: { passive: { unhealthy: { http_failures: 3 } }, active: { http_path: '/health', healthy: { interval: 0, successes: 2 }, unhealthy: { interval: 0.2 }, timeout: 1 } } });
    bad.mode.status = undefined;
    await waitFor('active checks mark the target healthy', async () => (await health('passive.internal')).data.every((x) => x.health === 'HEALTHY'), 10_000, 100);
    const back = tally(await many(20, '/passive', undefined, 1));
    assert.ok((back[bad.port] ?? 0) > 0, 'traffic returns');
  });

  it('proxies WebSocket upgrades to an upstream\'s targets', async () => {
    const t = await up();
    await setup('wsup', {}, [[t]]);
    assert.equal(await wsRoundTrip(`${s.dps[0].proxy.replace('http', 'ws')}/wsup/chat`, 'ping'), 'echo:/chat:ping');
  });

  it('manual PUT …/unhealthy and …/healthy on the admin API, carried to the data plane', async () => {
    const [a, b] = [await up(), await up()];
    await setup('manual', {}, [[a], [b]]);
    const healthOf = async (port: number) => ((await (await fetch(`${s.dps[0].status}/upstreams/manual.internal/health`)).json()) as any)
      .data.find((t: any) => t.target === `127.0.0.1:${port}`).health;
    const put = await s.A('PUT', `/upstreams/manual.internal/targets/127.0.0.1:${b.port}/unhealthy`);
    assert.equal(put.status, 204);
    await waitFor('the DP marks the target unhealthy', async () => (await healthOf(b.port)) === 'UNHEALTHY');
    assert.deepEqual(tally(await many(10, '/manual')), { [a.port]: 10 });
    await s.write('POST', '/services/manual/routes', { paths: ['/manual-too'] });
    assert.deepEqual(tally(await many(10, '/manual')), { [a.port]: 10 }, 'health survives a config change that does not touch the upstream');
    assert.equal((await s.A('PUT', `/upstreams/manual.internal/targets/127.0.0.1:${b.port}/healthy`)).status, 204);
    await waitFor('the DP marks the target healthy again', async () => (await healthOf(b.port)) !== 'UNHEALTHY');
    assert.ok((tally(await many(10, '/manual'))[b.port] ?? 0) > 0);
    assert.equal((await s.A('PUT', '/upstreams/manual.internal/targets/127.0.0.1:1/healthy')).status, 404, 'an unknown target');
    const direct = await fetch(`${s.dps[0].status}/upstreams/manual.internal/targets/127.0.0.1:${b.port}/unhealthy`, { method: 'PUT' });
    assert.equal(direct.status, 404, 'a data plane\'s status listener changes nothing');
    const cp = await s.A('GET', '/upstreams/manual.internal/health');
    assert.equal(cp.status, 400, 'a CP alone points at the data planes');
  });

  it('opens the breaker after failures, answers fast while open, half-opens and closes', async () => {
    const only = await up();
    await setup('breaker', { circuit_breaker: { failures: 3, open_timeout: 1, half_open_requests: 1 } }, [[only]]);
    only.mode.status = 503;
    const failing = await many(3, '/breaker', undefined, 1);
    assert.deepEqual(failing.map((r) => r.status), [503, 503, 503]);
    const hits = only.hits;
    const open = await many(5, '/breaker', undefined, 1);
    assert.ok(open.every((r) => r.status === 503 && r.body.includes('failure to get a peer from the ring-balancer')));
    assert.equal(only.hits, hits, 'no upstream hit while open');
    assert.equal((await health('breaker.internal')).data[0].circuit_breaker, 'open');
    only.mode.status = undefined;
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal((await get('/breaker')).status, 200, 'the half-open probe passes');
    assert.equal((await health('breaker.internal')).data[0].circuit_breaker, 'closed');
    assert.equal((await get('/breaker')).status, 200);
  });

  it('breaks a whole service whose host is not an upstream (service.circuit_breaker)', async () => {
    const only = await up();
    await s.A('POST', '/services', { name: 'svcbreaker', url: only.url, circuit_breaker: { failures: 2, open_timeout: 60 } });
    await s.write('POST', '/services/svcbreaker/routes', { paths: ['/svcbreaker'] });
    assert.equal((await get('/svcbreaker')).status, 200);
    only.mode.status = 502;
    await many(2, '/svcbreaker', undefined, 1);
    const hits = only.hits;
    const open = await many(5, '/svcbreaker', undefined, 1);
    assert.ok(open.every((r) => r.status === 503));
    assert.equal(only.hits, hits, 'the open service breaker answers without the upstream');
  });

  it('answers 503 with Kong\'s body when every target is down, or the configured fallback', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    await setup('alldown', { circuit_breaker: { failures: 1, open_timeout: 60 } }, [[dead]]);
    await get('/alldown');
    const r = await get('/alldown', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).message, 'failure to get a peer from the ring-balancer');
    await s.write('PATCH', '/upstreams/alldown.internal', { fallback_response: { status: 200, body: '{"items":[]}' } });
    await get('/alldown');
    const fb = await get('/alldown');
    assert.deepEqual([fb.status, fb.body], [200, '{"items":[]}']);
  });
});

describe('retries', () => {
  it('retries connection failures on the next target', async () => {
    const live = await up();
    const dead = `127.0.0.1:${await freePort()}`;
    await setup('retry', {}, [[live], [dead]]);
    const rs = await many(20, '/retry');
    assert.ok(rs.every((r) => r.status === 200 && r.port === String(live.port)));
  });

  it('does not retry a POST whose body was streamed', async () => {
    const rs = await many(10, '/retry', { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } }, 1);
    assert.ok(rs.some((r) => r.status === 502), 'requests that met the dead target failed instead of being replayed');
    assert.ok(rs.some((r) => r.status === 200));
  });

  it('retries 503 for idempotent requests on another target within the budget (opt-in)', async () => {
    const [sick, well] = [await up(), await up()];
    sick.mode.status = 503;
    await setup('statusretry', { status_retries: { statuses: [503], base_delay_ms: 5, budget_ms: 1_000 } }, [[sick], [well]]);
    const rs = await many(10, '/statusretry');
    assert.ok(rs.every((r) => r.status === 200), JSON.stringify(tally(rs)));
    const posts = await many(6, '/statusretry', { method: 'POST', body: 'x' }, 1);
    assert.ok(posts.some((r) => r.status === 503), 'POST is never retried on a status');
  });

  it('stops retrying when the next backoff would overrun the budget, and passes the last answer on', async () => {
    const [a, b] = [await up(), await up()];
    a.mode.status = 503; b.mode.status = 503;
    await s.A('POST', '/upstreams', { name: 'budget.internal', status_retries: { statuses: [503], base_delay_ms: 200, max_delay_ms: 1_000, budget_ms: 100 } });
    for (const t of [a, b]) await s.A('POST', '/upstreams/budget.internal/targets', { target: `127.0.0.1:${t.port}` });
    await s.A('POST', '/services', { name: 'budget', host: 'budget.internal', retries: 10 });
    await s.write('POST', '/services/budget/routes', { paths: ['/budget'] });
    for (let i = 0; i < 5; i++) {
      const before = a.hits + b.hits;
      const r = await get('/budget');
      assert.equal(r.status, 503, 'the last upstream answer is passed on');
      const attempts = a.hits + b.hits - before;
      // retries: 10 would allow 11 attempts; backoffs of up to 200, 400, 800 … ms fit a 100 ms budget only a few times.
      assert.ok(attempts >= 1 && attempts <= 5, `${attempts} attempts within a 100 ms budget`);
    }
  });
});

describe('routing beyond Kong', () => {
  it('splits a route 95/5 with the canary plugin, and keeps header cohorts sticky', async () => {
    const [stable, next] = [await up(), await up()];
    await s.A('POST', '/services', { name: 'stable', url: stable.url });
    await s.A('POST', '/services', { name: 'next', url: next.url });
    await s.A('POST', '/services/stable/routes', { name: 'canary', paths: ['/canary'] });
    await s.write('POST', '/routes/canary/plugins', { name: 'canary', config: { upstream_service: 'next', percentage: 5 } });
    const t = tally(await many(1000, '/canary', undefined, 20));
    assert.ok(t[next.port] >= 25 && t[next.port] <= 80, `canary got ${t[next.port]} of 1000`);
    await s.A('POST', '/services/stable/routes', { name: 'cohort', paths: ['/cohort'] });
    await s.write('POST', '/routes/cohort/plugins', { name: 'canary', config: { upstream_service: 'next', percentage: 50, hash: 'header', hash_header: 'x-user' } });
    for (const user of ['ann', 'bo', 'cy', 'di']) {
      const sides = new Set((await many(5, '/cohort', { headers: { 'x-user': user } })).map((r) => r.port));
      assert.equal(sides.size, 1, `${user} always lands on one side`);
    }
  });

  it('routes on query parameters', async () => {
    const [products, users] = [await up(), await up()];
    await s.A('POST', '/services', { name: 'products', url: products.url });
    await s.A('POST', '/services', { name: 'users', url: users.url });
    await s.A('POST', '/services/products/routes', { paths: ['/search'], query: { type: ['products'] } });
    await s.write('POST', '/services/users/routes', { paths: ['/search'], query: { type: ['users'] } });
    assert.equal((await get('/search?type=products&q=x')).port, String(products.port));
    assert.equal((await get('/search?q=x&type=users')).port, String(users.port));
    assert.equal((await get('/search?q=x')).status, 404);
  });
});

describe('bad input', () => {
  it('refuses bad upstreams and targets with field errors, and duplicates with 409', async () => {
    const cases: [string, Record<string, unknown>, Record<string, unknown>][] = [
      ['/upstreams', { name: 'x.internal', algorithm: 'random' }, { algorithm: 'expected one of: round-robin, consistent-hashing, least-connections, latency' }],
      ['/upstreams', { name: 'y.internal', hash_on: 'header' }, { hash_on_header: 'required field missing' }],
      ['/upstreams', { name: '10.0.0.1' }, { name: 'Invalid name; no ip addresses allowed' }],
      ['/upstreams/weighted.internal/targets', { target: '127.0.0.1:1', weight: 70000 }, { weight: 'value should be between 0 and 65535' }],
      ['/upstreams/weighted.internal/targets', { target: 'not a host' }, { target: 'Invalid target; not a valid hostname or ip address' }],
    ];
    for (const [path, body, fields] of cases) {
      const r = await s.A('POST', path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.deepEqual(r.body.fields, fields, JSON.stringify(body));
    }
    const first = (await s.A('GET', '/upstreams/weighted.internal/targets')).body.data[0];
    const dup = await s.A('POST', '/upstreams/weighted.internal/targets', { target: first.target });
    assert.equal(dup.status, 409);
    assert.equal((await s.A('GET', '/targets')).status, 404, 'targets live under their upstream only');
    const def = await s.A('POST', '/upstreams/weighted.internal/targets', { target: 'default-port.test' });
    assert.deepEqual([def.body.target, def.body.weight], ['default-port.test:8000', 100]);
    // The same target in another upstream is another row, found under its own upstream.
    await s.A('POST', '/upstreams', { name: 'other.internal' });
    const again = await s.A('POST', '/upstreams/other.internal/targets', { target: 'default-port.test', weight: 7 });
    assert.equal(again.status, 201);
    assert.equal((await s.A('GET', '/upstreams/other.internal/targets/default-port.test:8000')).body.weight, 7);
    assert.equal((await s.A('GET', '/upstreams/weighted.internal/targets/default-port.test:8000')).body.weight, 100);
    assert.equal((await s.A('PATCH', '/upstreams/other.internal/targets/default-port.test', { weight: 9 })).body.weight, 9);
    assert.equal((await s.A('DELETE', '/upstreams/other.internal/targets/default-port.test:8000')).status, 204);
    assert.equal((await s.A('GET', '/upstreams/weighted.internal/targets/default-port.test:8000')).status, 200);
  });
});
