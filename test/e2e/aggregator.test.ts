// The aggregator plugin (issue 14, composition) through a real CP on Postgres, a DP over NATS and
// real upstream processes that the test slows, breaks and watches: the home-screen case,
// parallel legs, required/optional outcomes and their statuses, an open breaker, dependent legs
// and fan-out, deadlines that abort the slow upstream's request, and bad configs refused at write.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../harness/stack.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { freePort, waitFor } from '../harness/procs.ts';
import { startOtlpReceiver } from '../harness/otlp.ts';

let s: Stack;
const ups: Upstream[] = [];
const up = async () => { const u = await startUpstream(); ups.push(u); return u; };
let n = 0;

/** A service on `url` (retries 0, so a failure is one attempt); returns its name. */
async function service(url: string, extra: Record<string, unknown> = {}): Promise<string> {
  const name = `svc-${++n}`;
  const r = await s.A('POST', '/services', { name, url, retries: 0, ...extra });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return name;
}

/** A route /<path> carrying an aggregator with `config`; returns the admin answer. */
async function composition(path: string, config: Record<string, unknown>, plugins: Record<string, unknown>[] = []) {
  const route = await s.A('POST', '/routes', { name: path.slice(1).replace(/\//g, '-'), paths: [path] });
  assert.equal(route.status, 201, JSON.stringify(route.body));
  for (const p of plugins) assert.equal((await s.A('POST', `/routes/${route.body.id}/plugins`, p)).status, 201);
  return s.write('POST', `/routes/${route.body.id}/plugins`, { name: 'aggregator', config });
}

async function get(path: string, headers: Record<string, string> = {}) {
  const r = await fetch(s.dps[0].proxy + path, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  let body: any = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: r.status, body, headers: r.headers };
}

before(async () => { s = await startStack({ dps: 1 }); });
after(async () => { await s?.stop(); await Promise.all(ups.map((u) => u.close().catch(() => {}))); });

describe('aggregator: GET /home', () => {
  let profile: string, orders: string, recs: Upstream, wallet: string;
  before(async () => {
    const u = await up();
    recs = await up();
    profile = await service(u.url);
    orders = await service(u.url);
    wallet = await service(u.url);
    const r = await composition('/home', {
      timeout_ms: 2_000,
      legs: [
        { name: 'profile', service: profile, path: '/profile', query: { reply: JSON.stringify({ id: 'u1', name: 'Ada' }) } },
        { name: 'orders', service: orders, path: '/orders', query: { reply: JSON.stringify({ recent: [1, 2] }) } },
        { name: 'recommendations', service: await service(recs.url), path: '/recs', required: false, timeout_ms: 300, query: { reply: '{"items":["book"]}' } },
        { name: 'wallet', service: wallet, path: '/wallet', required: false, query: { reply: '{"balance":12}' } },
      ],
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  });

  it('answers 200 with every leg under its own key, in declared order, marked complete', async () => {
    const r = await get('/home');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body), ['profile', 'orders', 'recommendations', 'wallet']);
    assert.deepEqual(r.body.orders, { recent: [1, 2] });
    assert.deepEqual(r.body.recommendations, { items: ['book'] });
    assert.deepEqual(r.body.wallet, { balance: 12 });
    assert.deepEqual(r.body.profile, { id: 'u1', name: 'Ada' });
    assert.equal(r.headers.get('x-aggregate-completed'), 'true');
    assert.equal(r.headers.get('cache-control'), null);
  });

  it('still renders when recommendations is slow: 200, _errors names it (timeout), no-store, incomplete', async () => {
    recs.mode.delayMs = 3_000;
    try {
      const r = await get('/home');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.wallet, { balance: 12 });
      assert.equal(r.body.recommendations, undefined);
      assert.deepEqual(r.body._errors.map((e: any) => [e.leg, e.reason]), [['recommendations', 'timeout']]);
      assert.equal(r.headers.get('x-aggregate-completed'), 'false');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      await waitFor('the slow upstream sees its request aborted', async () => recs.aborted >= 1, 5_000);
    } finally { recs.mode.delayMs = undefined; }
  });

  it('still renders when recommendations is down: connect_error, and an upstream 5xx: upstream_5xx', async () => {
    recs.mode.status = 503;
    try {
      const r = await get('/home');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body._errors.map((e: any) => [e.leg, e.reason, e.status]), [['recommendations', 'upstream_5xx', 503]]);
    } finally { recs.mode.status = undefined; }
    const dead = await service(`http://127.0.0.1:${await freePort()}`);
    const r2 = await composition('/home-down', {
      legs: [{ name: 'profile', service: profile, query: { reply: '{}' } }, { name: 'recommendations', service: dead, required: false }],
    });
    assert.equal(r2.status, 201);
    const r = await get('/home-down');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body._errors.map((e: any) => [e.leg, e.reason]), [['recommendations', 'connect_error']]);
  });

  it('counts each leg on /metrics by outcome', async () => {
    const text = await (await fetch(`${s.dps[0].status}/metrics`)).text();
    assert.match(text, /portico_aggregate_leg_total\{route="[^"]+",leg="profile",outcome="ok"\} [1-9]/);
    assert.match(text, /portico_aggregate_leg_total\{route="[^"]+",leg="recommendations",outcome="timeout"\} [1-9]/);
  });

  it('drops a deleted route\'s leg series', async () => {
    const r = await composition('/gone', { legs: [{ name: 'only', service: profile, query: { reply: '{}' } }] });
    assert.equal((await get('/gone')).status, 200);
    const metrics = async () => (await fetch(`${s.dps[0].status}/metrics`)).text();
    assert.match(await metrics(), new RegExp(`portico_aggregate_leg_total\\{route="${r.body.route.id}",leg="only",outcome="ok"\\} 1`));
    await s.A('DELETE', `/plugins/${r.body.id}`);
    assert.equal((await s.write('DELETE', `/routes/${r.body.route.id}`)).status, 204);
    assert.doesNotMatch(await metrics(), new RegExp(`route="${r.body.route.id}"`));
  });
});

describe('aggregator: parallelism and deadlines', () => {
  it('runs independent legs at the same time: the upstream sees all three in flight at once', async () => {
    const u = await up();
    const svc = await service(u.url);
    const legs = ['a', 'b', 'c'].map((name) => ({ name, service: svc, path: `/${name}`, query: { delay_ms: '300' } }));
    assert.equal((await composition('/parallel', { legs })).status, 201);
    const r = await get('/parallel');
    assert.equal(r.status, 200);
    assert.equal(u.maxActive, 3, 'three legs overlapped on the upstream');
  });

  it('a required leg past its deadline: 504, and the slow upstream sees its request aborted', async () => {
    const slow = await up();
    const r0 = await composition('/deadline', { timeout_ms: 5_000, legs: [{ name: 'slow', service: await service(slow.url), timeout_ms: 200, query: { delay_ms: '5000' } }] });
    assert.equal(r0.status, 201);
    const r = await get('/deadline');
    assert.equal(r.status, 504);
    assert.deepEqual(r.body.legs.map((e: any) => [e.leg, e.reason]), [['slow', 'timeout']]);
    await waitFor('the upstream saw the abort', async () => slow.aborted === 1, 5_000);
  });

  it('a failed required leg cancels the others at once: 502, and the slow leg\'s upstream sees its request aborted', async () => {
    const bad = await up();
    const slow = await up();
    bad.mode.status = 500;
    const r0 = await composition('/failfast', {
      timeout_ms: 10_000,
      legs: [{ name: 'slow', service: await service(slow.url), required: false, query: { delay_ms: '8000' } }, { name: 'bad', service: await service(bad.url) }],
    });
    assert.equal(r0.status, 201);
    const r = await get('/failfast');
    assert.equal(r.status, 502);
    assert.deepEqual(r.body.legs, [{ leg: 'bad', reason: 'upstream_5xx', status: 500, message: 'the service answered 500' }]);
    assert.equal(typeof r.body.request_id, 'string');
    await waitFor('the slow upstream saw the abort', async () => slow.aborted === 1, 5_000);
  });

  it('a client that leaves takes its legs with it: the slow upstream sees its request aborted', async () => {
    const slow = await up();
    assert.equal((await composition('/left', { timeout_ms: 20_000, legs: [{ name: 'slow', service: await service(slow.url), query: { delay_ms: '10000' } }] })).status, 201);
    await assert.rejects(fetch(`${s.dps[0].proxy}/left`, { signal: AbortSignal.timeout(300) }));
    await waitFor('the upstream saw the abort', async () => slow.aborted === 1, 5_000);
  });

  it('a required leg answering invalid JSON, or a connect error: 502', async () => {
    const u = await up();
    const r0 = await composition('/badjson', { legs: [{ name: 'x', service: await service(u.url), query: { reply: 'not json' } }] });
    assert.equal(r0.status, 201);
    const r = await get('/badjson');
    assert.equal(r.status, 502);
    assert.equal(r.body.legs[0].reason, 'invalid_json');
    const r1 = await composition('/refused', { legs: [{ name: 'x', service: await service(`http://127.0.0.1:${await freePort()}`) }] });
    assert.equal(r1.status, 201);
    const r2 = await get('/refused');
    assert.deepEqual([r2.status, r2.body.legs[0].reason], [502, 'connect_error']);
  });

  it('a leg whose breaker is open fails with 503 circuit_open without an upstream attempt', async () => {
    const u = await up();
    u.mode.status = 500;
    const svc = await service(u.url, { circuit_breaker: { failures: 1, open_timeout: 60 } });
    assert.equal((await composition('/breaker', { legs: [{ name: 'x', service: svc }] })).status, 201);
    assert.equal((await get('/breaker')).status, 502, 'the first failure opens the breaker');
    const hits = u.hits;
    const r = await get('/breaker');
    assert.equal(r.status, 503);
    assert.deepEqual(r.body.legs.map((e: any) => e.reason), ['circuit_open']);
    assert.equal(u.hits, hits, 'no upstream attempt while open');
  });
});

describe('aggregator: dependent legs, fan-out and templates', () => {
  it('feeds an earlier leg\'s fields into a later one (percent-encoded), and runs one call per list item', async () => {
    const u = await up();
    const svc = await service(u.url);
    const r0 = await composition('/deps', {
      legs: [
        { name: 'user', service: svc, path: '/user', query: { reply: JSON.stringify({ id: 'u 1/x', cart: { items: [{ sku: 'a' }, { sku: 'b' }] } }) }, allow: ['id'] },
        { name: 'orders', service: svc, path: '/users/$(legs.user.id)/orders', depends_on: ['user'], forward_query: ['page'], allow: ['url'] },
        { name: 'items', service: svc, path: '/items/$(item.sku)', depends_on: ['user'], for_each: 'user.cart.items', allow: ['url', 'method'], rename: { url: 'href' } },
      ],
    });
    assert.equal(r0.status, 201, JSON.stringify(r0.body));
    const r = await get('/deps?page=2&other=x');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, {
      user: { id: 'u 1/x' },
      orders: { url: '/users/u%201%2Fx/orders?page=2' },
      items: [{ method: 'GET', href: '/items/a' }, { method: 'GET', href: '/items/b' }],
    });
  });

  it('never lets a client value split a leg\'s header (CR/LF: 502, the service never called), and percent-encodes non-ASCII in its path', async () => {
    const u = await up();
    const svc = await service(u.url);
    const r0 = await composition('/hostile', { legs: [{ name: 'echo', service: svc, path: '/p/$(query_params.name)', headers: { 'x-name': '$(query_params.name)' } }] });
    assert.equal(r0.status, 201, JSON.stringify(r0.body));
    const before = u.hits;
    for (const name of ['a%0d%0aX-Injected:%201', 'a%00b', 'a%0aX-Injected:%201']) {
      const bad = await get(`/hostile?name=${name}`);
      assert.equal(bad.status, 502, `${name}: ${JSON.stringify(bad.body)}`);
      assert.equal(bad.body.legs[0].leg, 'echo');
    }
    assert.equal(u.hits, before, 'no request with a split header reached the service');
    const ok = await get('/hostile?name=caf%C3%A9%2F..');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.echo.url, '/p/caf%C3%A9%2F..');
    assert.equal(ok.body.echo.headers['x-injected'], undefined);
  });

  it('fails a fan-out over more items than max_fan_out, and skips a leg whose value is missing', async () => {
    const u = await up();
    const svc = await service(u.url);
    const r0 = await composition('/fanout', {
      legs: [
        { name: 'list', service: svc, query: { reply: JSON.stringify({ ids: [1, 2, 3], none: null }) } },
        { name: 'each', service: svc, path: '/e/$(item)', depends_on: ['list'], for_each: 'list.ids', max_fan_out: 2, required: false },
        { name: 'missing', service: svc, path: '/m/$(legs.list.none)', depends_on: ['list'], required: false },
      ],
    });
    assert.equal(r0.status, 201, JSON.stringify(r0.body));
    const hits = u.hits;
    const r = await get('/fanout');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body._errors.map((e: any) => [e.leg, e.reason]), [['each', 'fan_out_too_large'], ['missing', 'dependency_null']]);
    assert.equal(u.hits, hits + 1, 'only the list leg reached the upstream');
  });

  it('runs after auth: no key, no leg is called; the consumer reaches the legs', async () => {
    const u = await up();
    const svc = await service(u.url);
    await s.A('POST', '/consumers', { username: 'ada' });
    await s.A('POST', '/consumers/ada/key-auth', { key: 'ada-key-123' });
    const r0 = await composition('/mine', { legs: [{ name: 'me', service: svc, path: '/u/$(consumer.username)', allow: ['url', 'headers.x-consumer-username'] }] }, [{ name: 'key-auth' }]);
    assert.equal(r0.status, 201);
    const hits = u.hits;
    assert.equal((await get('/mine')).status, 401);
    assert.equal(u.hits, hits);
    const r = await get('/mine', { apikey: 'ada-key-123' });
    assert.deepEqual(r.body, { me: { url: '/u/ada', headers: { 'x-consumer-username': 'ada' } } });
  });
});

describe('aggregator: tracing', () => {
  it('gives each leg a client span under the request\'s span, its id in the traceparent the leg\'s service receives', async () => {
    const otlp = await startOtlpReceiver();
    try {
      const u = await up();
      const svc = await service(u.url);
      const r0 = await composition('/traced-home', { legs: [{ name: 'profile', service: svc, path: '/p' }, { name: 'orders', service: svc, path: '/o' }] },
        [{ name: 'opentelemetry', config: { traces_endpoint: `${otlp.url}/v1/traces`, sampling_rate: 1, queue: { max_coalescing_delay: 0.05 } } }]);
      assert.equal(r0.status, 201);
      // sdk-node loads on first use: wait until spans arrive.
      await waitFor('the exporter to run', async () => { await get('/traced-home'); return otlp.received.length > 0; }, 20_000, 200);
      const traceId = '0af7651916cd43dd8448eb211c80319c';
      assert.equal((await get('/traced-home', { traceparent: `00-${traceId}-b7ad6b7169203331-01` })).status, 200);
      const spans = await waitFor('three spans', async () => { const x = otlp.received.filter((sp) => sp.traceId === traceId); return x.length >= 3 ? x : undefined; });
      const server = spans.find((sp) => sp.kind === 2)!;
      const legs = spans.filter((sp) => sp.kind === 3);
      assert.deepEqual(legs.map((sp) => sp.name).sort(), ['kong.aggregate.orders', 'kong.aggregate.profile']);
      assert.ok(legs.every((sp) => sp.parentSpanId === server.spanId));
      const profileSpan = legs.find((sp) => sp.attributes['portico.leg'] === 'profile')!;
      const seen = u.seen.filter((x) => x.url === '/p').at(-1)!;
      assert.equal(seen.headers.traceparent, `00-${traceId}-${profileSpan.spanId}-01`);
    } finally { await otlp.close(); }
  });
});

describe('aggregator: configs refused at write time', () => {
  let svc: string;
  before(async () => { svc = await service(s.upstream.url); });
  const post = (config: Record<string, unknown>) => s.A('POST', '/plugins', { name: 'aggregator', config });

  it('describes its config on GET /schemas/plugins/aggregator', async () => {
    const r = await s.A('GET', '/schemas/plugins/aggregator');
    assert.equal(r.status, 200);
    assert.match(JSON.stringify(r.body), /depends_on/);
  });

  it('refuses an unknown leg in depends_on and a cycle, with the path', async () => {
    const r = await post({ legs: [{ name: 'a', service: svc }, { name: 'b', service: svc, depends_on: ['nope'] }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.fields.config.legs[1].depends_on[0], "unknown leg 'nope'");
    const c = await post({ legs: [{ name: 'a', service: svc, depends_on: ['b'] }, { name: 'b', service: svc, depends_on: ['a'] }] });
    assert.equal(c.status, 400);
    assert.equal(c.body.fields.config.legs[0].depends_on, 'dependency cycle: a → b → a');
  });

  it('refuses a dangling service (id or name), two writes, and a template reading a leg it does not wait for', async () => {
    const id = await post({ legs: [{ name: 'a', service: '00000000-0000-4000-8000-000000000000' }] });
    assert.equal(id.status, 400);
    assert.deepEqual(id.body.fields, { config: { legs: { 0: { service: { id: '00000000-0000-4000-8000-000000000000' } } } } });
    const name = await post({ legs: [{ name: 'a', service: 'no-such-service' }] });
    assert.equal(name.status, 400);
    assert.equal(name.body.fields.config.legs[0].service, "no service named 'no-such-service'");
    const writes = await post({ legs: [{ name: 'a', service: svc, method: 'POST' }, { name: 'b', service: svc, method: 'PATCH' }] });
    assert.equal(writes.status, 400);
    assert.match(writes.body.fields.config.legs[1].method, /more than one non-idempotent leg \(a, b\)/);
    assert.equal((await post({ allow_multiple_writes: true, legs: [{ name: 'a', service: svc, method: 'POST' }, { name: 'b', service: svc, method: 'PATCH' }] })).status, 201);
    const tpl = await post({ legs: [{ name: 'a', service: svc }, { name: 'b', service: svc, path: '/x/$(legs.a.id)' }] });
    assert.equal(tpl.status, 400);
    assert.equal(tpl.body.fields.config.legs[1], "a template reads leg 'a', which is not in depends_on");
  });

  it('refuses deleting or renaming a service a leg names', async () => {
    const own = await service(s.upstream.url);
    assert.equal((await composition('/pinned', { legs: [{ name: 'a', service: own }] })).status, 201);
    const del = await s.A('DELETE', `/services/${own}`);
    assert.equal(del.status, 400);
    assert.match(del.body.message, /referenced by plugins/);
    const ren = await s.A('PATCH', `/services/${own}`, { name: 'renamed' });
    assert.equal(ren.status, 400);
    assert.equal((await s.A('GET', `/services/${own}`)).status, 200, 'the service is still there, unchanged');
  });

  it('refuses a kong.yml whose leg names a service that is not there', async () => {
    const file = `_format_version: "3.0"\n_info: {select_tags: [agg-file]}\nplugins:\n- name: aggregator\n  config:\n    legs:\n    - {name: a, service: ghost}\n`;
    const r = await s.A('POST', '/config', file, { 'content-type': 'application/yaml' });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), /references a service that is neither in the file nor managed elsewhere: \\"ghost\\"/);
  });
});
