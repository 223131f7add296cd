// The proxy through a real CP and DP on Postgres and NATS, to a real upstream
// (Kong's spec/02-integration/05-proxy: router, path handling, headers, errors, streaming).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, type Stack } from '../harness/stack.ts';
import { wsRoundTrip, type Echo } from '../harness/upstream.ts';
import { freePort, waitFor } from '../harness/procs.ts';
import { httpRequest } from '../harness/raw.ts';

let s: Stack;
let dpUrl: string;

const req = (path: string, opts?: Parameters<typeof httpRequest>[2]) => httpRequest(dpUrl, path, opts);
const echo = (body: string) => JSON.parse(body) as Echo;

before(async () => {
  s = await startStack({ dps: 1 });
  dpUrl = s.dps[0].proxy;
  await s.write('POST', '/services', { name: 'example_service', url: s.upstream.url });
  await s.write('POST', '/services/example_service/routes', new URLSearchParams('paths[]=/mock&name=example_route'));
});
after(async () => { if (process.env.PORTICO_TEST_LOGS) { const fs = await import("node:fs"); fs.writeFileSync("test/.tmp/dp.log", s.dps[0].logs()); } await s?.stop(); });

describe('proxying', () => {
  it("runs Kong's getting-started flow: /mock/anything reaches /anything", async () => {
    const r = await req('/mock/anything?x=1&y', { headers: { host: 'gw.test:8000' } });
    assert.equal(r.status, 200);
    const e = echo(r.body);
    assert.equal(e.url, '/anything?x=1&y');
    assert.equal(e.headers.host, `127.0.0.1:${s.upstream.port}`);
    assert.equal(e.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(e.headers['x-real-ip'], '127.0.0.1');
    assert.equal(e.headers['x-forwarded-proto'], 'http');
    assert.equal(e.headers['x-forwarded-host'], 'gw.test');
    assert.equal(e.headers['x-forwarded-path'], '/mock/anything');
    assert.equal(e.headers['x-forwarded-prefix'], '/mock');
    assert.equal(e.headers.via, '1.1 portico/0.1.0');
    assert.match(r.headers['x-portico-request-id'] as string, /^[0-9a-f]{32}$/);
    assert.equal(e.headers['x-portico-request-id'], r.headers['x-portico-request-id']);
    assert.equal(r.headers.via, '1.1 portico/0.1.0');
    assert.match(r.headers['x-portico-upstream-latency'] as string, /^\d+$/);
    assert.match(r.headers['x-portico-proxy-latency'] as string, /^\d+$/);
    assert.equal(r.headers['x-drop-me'], undefined, 'headers named in Connection are hop-by-hop');
  });

  it('appends to a client X-Forwarded-For and replaces untrusted X-Forwarded-* and X-Real-IP', async () => {
    const r = await req('/mock/h', { headers: { 'x-forwarded-for': '10.0.0.1', 'x-forwarded-proto': 'https', 'x-real-ip': '6.6.6.6', 'x-forwarded-host': 'evil.test' } });
    const e = echo(r.body);
    assert.equal(e.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.equal(e.headers['x-forwarded-proto'], 'http');
    assert.equal(e.headers['x-real-ip'], '127.0.0.1');
    assert.notEqual(e.headers['x-forwarded-host'], 'evil.test');
  });

  it('drops hop-by-hop request headers', async () => {
    const r = await req('/mock/hop', { headers: { connection: 'keep-alive, x-secret-hop', 'x-secret-hop': '1', 'proxy-connection': 'x', te: 'gzip' } });
    const e = echo(r.body);
    assert.equal(e.headers['x-secret-hop'], undefined);
    assert.equal(e.headers['proxy-connection'], undefined);
    assert.equal(e.headers.te, undefined);
  });

  it('forwards request bodies and methods', async () => {
    const r = await req('/mock/post', { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    const e = echo(r.body);
    assert.deepEqual([e.method, e.body], ['POST', '{"a":1}']);
  });
});

describe('path handling (path_handling v0, reference §3.4)', () => {
  // [service path, route path, strip_path, request, expected upstream path]
  const rows: [string | null, string | null, boolean, string, string][] = [
    ['/', '/route', true, '/route', '/'],
    ['/', '/route', true, '/routereq', '/req'],
    ['/srv', '/rou', true, '/roureq', '/srv/req'],
    ['/srv', '/rou', false, '/roureq', '/srv/roureq'],
    ['/srv/', '/rou', true, '/rou', '/srv'],
    ['/service', '/', true, '/', '/service'],
    ['/service', '/', false, '/', '/service'],
    ['/service', '/route', true, '/route/', '/service/'],
    ['/service/', '/route', true, '/routereq', '/service/req'],
    ['/service', null, true, '/route/', '/service/route/'],
    ['/service', '/route', true, '/route%2E%2E/req', '/service/req'],
    [null, '/route', false, '/route/x', '/route/x'],
    ['/s', '~/users/\\d+', true, '/users/12/x', '/s/x'],
  ];
  before(async () => {
    for (const [i, [sp, rp, strip]] of rows.entries()) {
      await s.A('POST', '/services', { name: `ph${i}`, url: `${s.upstream.url}${sp ?? ''}` });
      await s.A('POST', `/services/ph${i}/routes`, { hosts: [`ph${i}.test`], paths: rp ? [rp] : null, strip_path: strip });
    }
    await s.write('POST', '/services', { name: 'ph-sync', host: '127.0.0.1' });
  });
  for (const [i, [sp, rp, strip, request, expected]] of rows.entries()) {
    it(`service ${sp} route ${rp} strip ${strip}: ${request} → ${expected}`, async () => {
      const r = await req(request, { headers: { host: `ph${i}.test` } });
      assert.equal(r.status, 200, r.body);
      assert.equal(echo(r.body).url, expected);
    });
  }
});

describe('router', () => {
  before(async () => {
    await s.A('POST', '/services', { name: 'a', url: `${s.upstream.url}/a` });
    await s.A('POST', '/services', { name: 'b', url: `${s.upstream.url}/b` });
    await s.A('POST', '/services/a/routes', { paths: ['/r'], hosts: ['router.test'] });
    await s.A('POST', '/services/b/routes', { paths: ['/r/longer'], hosts: ['router.test'] });
    await s.A('POST', '/services/a/routes', { paths: ['~/rx/\\d+$'], hosts: ['router.test'] });
    await s.A('POST', '/services/b/routes', { paths: ['/rx'], hosts: ['router.test'] });
    await s.A('POST', '/services/a/routes', { hosts: ['*.wild.test'] });
    await s.A('POST', '/services/b/routes', { hosts: ['exact.wild.test'] });
    await s.A('POST', '/services/a/routes', { paths: ['/hdr'], headers: { 'x-version': ['v2'] } });
    await s.A('POST', '/services/b/routes', { paths: ['/hdr'] });
    await s.A('POST', '/services/a/routes', { paths: ['/meth'], methods: ['POST'] });
    await s.write('POST', '/services/b/routes', { paths: ['/meth'], methods: ['GET'] });
  });
  const svc = (body: string) => echo(body).url.split('/')[1];

  it('prefers the longest prefix', async () => {
    assert.equal(svc((await req('/r/longer/x', { headers: { host: 'router.test' } })).body), 'b');
    assert.equal(svc((await req('/r/short', { headers: { host: 'router.test' } })).body), 'a');
  });
  it('prefers a regex path over a prefix at equal weight', async () => {
    assert.equal(svc((await req('/rx/42', { headers: { host: 'router.test' } })).body), 'a');
    assert.equal(svc((await req('/rx/abc', { headers: { host: 'router.test' } })).body), 'b');
  });
  it('prefers a plain host over a wildcard one', async () => {
    assert.equal(svc((await req('/', { headers: { host: 'exact.wild.test' } })).body), 'b');
    assert.equal(svc((await req('/', { headers: { host: 'deep.other.wild.test' } })).body), 'a');
  });
  it('prefers the route with more matchers (headers)', async () => {
    assert.equal(svc((await req('/hdr', { headers: { 'x-version': 'V2' } })).body), 'a');
    assert.equal(svc((await req('/hdr')).body), 'b');
  });
  it('matches methods', async () => {
    assert.equal(svc((await req('/meth', { method: 'POST', body: '' })).body), 'a');
    assert.equal(svc((await req('/meth')).body), 'b');
    assert.equal((await req('/meth', { method: 'PUT', body: '' })).status, 404);
  });
});

describe('errors', () => {
  it('answers 404 with Kong body and the request id, JSON by default and text on request', async () => {
    const r = await req('/no/such/route');
    assert.equal(r.status, 404);
    const body = JSON.parse(r.body);
    assert.deepEqual(body, { message: 'no Route matched with those values', request_id: r.headers['x-portico-request-id'] });
    const t = await req('/no/such/route', { headers: { accept: 'text/plain' } });
    assert.equal(t.body, `no Route matched with those values\nrequest_id: ${t.headers['x-portico-request-id']}\n`);
  });

  it('answers 503 for a route without a service', async () => {
    await s.write('POST', '/routes', { paths: ['/orphan'] });
    const r = await req('/orphan');
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.body).message, 'no Service found with those values');
  });

  it('answers 502 when the upstream refuses connections, 504 when it is too slow', async () => {
    const closed = await freePort();
    await s.A('POST', '/services', { name: 'dead', url: `http://127.0.0.1:${closed}`, retries: 1 });
    await s.A('POST', '/services/dead/routes', { paths: ['/dead'] });
    await s.A('POST', '/services', { name: 'slow', url: s.upstream.url, read_timeout: 200 });
    await s.write('POST', '/services/slow/routes', { paths: ['/slow'] });
    const bad = await req('/dead');
    assert.equal(bad.status, 502);
    assert.equal(bad.body, `An invalid response was received from the upstream server\nrequest_id: ${bad.headers['x-portico-request-id']}\n`);
    const slow = await req('/slow?delay_ms=1500', { headers: { accept: 'application/json' } });
    assert.equal(slow.status, 504);
    assert.equal(JSON.parse(slow.body).message, 'The upstream server is timing out');
  });

  it('answers an https-only route over http with 426, or the configured redirect', async () => {
    await s.A('POST', '/services/example_service/routes', { paths: ['/secure'], protocols: ['https'] });
    await s.write('POST', '/services/example_service/routes', { paths: ['/moved'], protocols: ['https'], https_redirect_status_code: 301 });
    const r = await req('/secure/x');
    assert.equal(r.status, 426);
    assert.equal(JSON.parse(r.body).message, 'Please use HTTPS protocol');
    assert.equal(r.headers.upgrade, 'TLS/1.2, HTTP/1.1');
    const m = await req('/moved/x?y=1', { headers: { host: 'gw.test' } });
    assert.deepEqual([m.status, m.headers.location], [301, 'https://gw.test/moved/x?y=1']);
  });

  it('answers 504 when the upstream stops taking the request body for write_timeout', async () => {
    await s.A('POST', '/services', { name: 'stall', url: s.upstream.url, write_timeout: 300, read_timeout: 60_000 });
    await s.write('POST', '/services/stall/routes', { paths: ['/stall'], strip_path: false });
    const u = new URL(dpUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const r = http.request({ host: u.hostname, port: u.port, path: '/stall', method: 'POST', headers: { 'content-length': 256 * 1024 * 1024 } }, (res) => { res.resume(); resolve(res.statusCode!); });
      r.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 99);
      const pump = () => { while (r.write(chunk)) { /* until the socket pushes back */ } r.once('drain', pump); };
      pump();
    });
    assert.equal(status, 504);
  });

  it('forwards upstream error statuses unchanged', async () => {
    const r = await req('/mock/x?status=418');
    assert.equal(r.status, 418);
    assert.equal(echo(r.body).url, '/x?status=418');
  });
});

describe('preserve_host, streaming and upgrades', () => {
  it('forwards the client Host with preserve_host', async () => {
    await s.write('POST', '/services/example_service/routes', { paths: ['/keep'], preserve_host: true });
    const r = await req('/keep', { headers: { host: 'client.test:1234' } });
    assert.equal(echo(r.body).headers.host, 'client.test:1234');
  });

  it('streams a 64 MB upload and a 64 MB download without buffering them', async () => {
    const size = 64 * 1024 * 1024;
    const rssBefore = (await (await fetch(`${s.dps[0].status}/status`)).json() as any).memory.rss_bytes;
    const u = new URL(dpUrl);
    const up = await new Promise<Echo>((resolve, reject) => {
      const r = http.request({ host: u.hostname, port: u.port, path: '/mock/upload', method: 'PUT', headers: { 'content-length': size } }, (res) => {
        let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => resolve(JSON.parse(b)));
      });
      r.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 98);
      let sent = 0;
      const pump = () => {
        while (sent < size) { sent += chunk.length; if (!r.write(chunk)) { r.once('drain', pump); return; } }
        r.end();
      };
      pump();
    });
    assert.equal(up.bodyBytes, size);
    const down = await new Promise<number>((resolve, reject) => {
      http.get({ host: u.hostname, port: u.port, path: `/mock/download/${size}` }, (res) => {
        let n = 0; res.on('data', (d) => { n += d.length; }); res.on('end', () => resolve(n));
      }).on('error', reject);
    });
    assert.equal(down, size);
    const rssAfter = (await (await fetch(`${s.dps[0].status}/status`)).json() as any).memory.rss_bytes;
    assert.ok(rssAfter - rssBefore < 48 * 1024 * 1024, `DP memory grew by ${(rssAfter - rssBefore) >> 20} MB for 128 MB moved`);
  });

  it('proxies WebSocket upgrades', async () => {
    assert.equal(await wsRoundTrip(`${dpUrl.replace('http', 'ws')}/mock/socket`, 'hello'), 'echo:/socket:hello');
  });

  it('writes one JSON access-log line per request with the request id', async () => {
    const r = await req('/mock/logged');
    const id = r.headers['x-portico-request-id'] as string;
    const line = await waitFor('access log line', async () => s.dps[0].logs().split('\n').find((l) => l.includes(id)));
    const entry = JSON.parse(line);
    assert.equal(entry.status, 200);
    assert.equal(entry.method, 'GET');
    assert.equal(entry.path, '/mock/logged');
    assert.ok(entry.route && entry.service && entry.upstream);
    assert.equal(typeof entry.latency_ms, 'number');
  });
});
