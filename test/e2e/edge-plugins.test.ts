// The edge plugins (issue 11) through real CP and DP processes, and the real client address behind
// trusted proxies (IPv4 and IPv6), Expect: 100-continue, and the correlation id in logs, error
// bodies and tracker ids.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startStack, type Stack } from '../harness/stack.ts';
import type { Echo } from '../harness/upstream.ts';
import { startGateway, statusOf } from '../harness/gateway.ts';
import { waitFor } from '../harness/procs.ts';
import { raw, statusOf as rawStatus } from '../harness/raw.ts';
import net from 'node:net';

let s: Stack;

async function call(p: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(s.dps[0].proxy + p, init);
  const text = await r.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, body, headers: r.headers };
}

async function route(name: string, plugin: { name: string; config?: Record<string, unknown> }): Promise<string> {
  await s.A('POST', '/services/edge/routes', { name, paths: [`/${name}`] });
  const r = await s.write('POST', `/routes/${name}/plugins`, plugin);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

before(async () => {
  s = await startStack({ dps: 1 });
  await s.A('POST', '/services', { name: 'edge', url: s.upstream.url });
});
after(async () => { await s?.stop(); });

describe('cors', () => {
  before(async () => {
    await route('cors', { name: 'cors', config: { origins: ['https://app.test', '(.*)\\.example\\.org'], credentials: true, exposed_headers: ['X-Total'], max_age: 600 } });
  });

  it('adds Allow-Origin, credentials, exposed headers and Vary to an allowed origin, nothing for another', async () => {
    const ok = await call('/cors/x', { headers: { origin: 'https://shop.example.org' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://shop.example.org');
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(ok.headers.get('access-control-expose-headers'), 'X-Total');
    assert.match(ok.headers.get('vary') ?? '', /Origin/);
    const other = await call('/cors/x', { headers: { origin: 'https://evil.test' } });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  it('puts its headers on another plugin\'s refusal too (a browser can read a 401), and echoes a correlation id there', async () => {
    const id = await route('cors-auth', { name: 'cors', config: { origins: ['https://app.test'] } });
    const routeId = (await s.A('GET', `/plugins/${id}`)).body.route.id;
    await s.A('POST', `/routes/${routeId}/plugins`, { name: 'correlation-id', config: { echo_downstream: true } });
    await s.write('POST', `/routes/${routeId}/plugins`, { name: 'key-auth' });
    const r = await call('/cors-auth/x', { headers: { origin: 'https://app.test' } });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.test');
    assert.match(r.headers.get('kong-request-id') ?? '', /^[0-9a-f-]{36}#\d+$/, 'uuid#counter, Kong\'s default generator');
  });

  it('answers a preflight at the gateway without calling the upstream', async () => {
    const hits = s.upstream.hits;
    const r = await call('/cors/x', { method: 'OPTIONS', headers: { origin: 'https://app.test', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-one' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.test');
    assert.equal(r.headers.get('access-control-allow-methods'), 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT');
    assert.equal(r.headers.get('access-control-allow-headers'), 'x-one');
    assert.equal(r.headers.get('access-control-max-age'), '600');
    assert.deepEqual([r.body, r.headers.get('content-length'), r.headers.get('content-type')], ['', '0', null], 'an empty preflight answer, as Kong');
    assert.equal(s.upstream.hits, hits);
  });
});

describe('ip-restriction', () => {
  it('refuses a denied client with Kong’s message, then follows allow lists and custom answers', async () => {
    const id = await route('ipr', { name: 'ip-restriction', config: { deny: ['127.0.0.1'] } });
    const denied = await call('/ipr');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.message, 'IP address not allowed: 127.0.0.1');
    await s.write('PATCH', `/plugins/${id}`, { config: { deny: null, allow: ['127.0.0.0/8', '::1'] } });
    assert.equal((await call('/ipr')).status, 200);
    await s.write('PATCH', `/plugins/${id}`, { config: { allow: ['10.0.0.0/8', '2001:db8::/32'], status: 401, message: 'Not from here' } });
    const custom = await call('/ipr');
    assert.deepEqual([custom.status, custom.body.message], [401, 'Not from here']);
  });
});

describe('ip-restriction over IPv6', () => {
  it('matches IPv6 addresses and CIDRs for a client on ::1', async () => {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer().listen(0, '::1', () => { const p = (srv.address() as net.AddressInfo).port; srv.close(() => resolve(p)); }).on('error', reject);
    });
    const dp = await startGateway('data-plane', { env: { NATS_URL: s.nats.url, PORTICO_PROXY_LISTEN: `[::1]:${port}` } });
    try {
      const id = await route('ipr6', { name: 'ip-restriction', config: { deny: ['::1/128'] } });
      const v = (await s.A('GET', '/status')).body.configuration.version;
      await waitFor('the IPv6 DP has the route', async () => (await statusOf(dp)).version >= v);
      const v6 = () => fetch(`http://[::1]:${port}/ipr6`);
      const denied = await v6();
      assert.deepEqual([denied.status, (await denied.json() as { message: string }).message], [403, 'IP address not allowed: ::1']);
      assert.equal((await call('/ipr6')).status, 200, 'the IPv4 client is not in the IPv6 deny list');
      await s.write('PATCH', `/plugins/${id}`, { config: { deny: null, allow: ['::1'] } });
      await waitFor('the IPv6 DP has the change', async () => (await v6()).status === 200);
      assert.equal((await call('/ipr6')).status, 403);
    } finally {
      await dp.stop();
      dp.cleanup();
    }
  });
});

describe('the real client address behind trusted proxies (PORTICO_TRUSTED_IPS)', () => {
  it('believes X-Forwarded-For only from a trusted peer, walking past trusted hops, for ip-restriction and upstream headers', async () => {
    const dp = await startGateway('data-plane', {
      env: { NATS_URL: s.nats.url, PORTICO_TRUSTED_IPS: '127.0.0.1,10.0.0.0/8', PORTICO_REAL_IP_HEADER: 'X-Forwarded-For', PORTICO_REAL_IP_RECURSIVE: 'on' },
    });
    try {
      await route('realip', { name: 'ip-restriction', config: { deny: ['203.0.113.9'] } });
      const v = (await s.A('GET', '/status')).body.configuration.version;
      await waitFor('the trusting DP has the route', async () => (await statusOf(dp)).version >= v);
      const via = (xff: string, extra: Record<string, string> = {}) => fetch(dp.proxy + '/realip', { headers: { 'x-forwarded-for': xff, ...extra } });
      // The peer (127.0.0.1) is trusted; from the right, 10.0.0.7 is a trusted hop, 203.0.113.9 the client.
      const denied = await via('203.0.113.9, 10.0.0.7');
      assert.equal(denied.status, 403);
      assert.equal(((await denied.json()) as { message: string }).message, 'IP address not allowed: 203.0.113.9');
      const other = await via('198.51.100.4, 10.0.0.7', { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' });
      assert.equal(other.status, 200);
      const seen = (await other.json()) as Echo;
      assert.equal(seen.headers['x-real-ip'], '198.51.100.4');
      assert.equal(seen.headers['x-forwarded-for'], '198.51.100.4, 10.0.0.7, 198.51.100.4');
      assert.deepEqual([seen.headers['x-forwarded-proto'], seen.headers['x-forwarded-host']], ['https', 'public.example'], 'a trusted proxy\'s X-Forwarded-* stand');
      // The node without trusted IPs sees the TCP peer whatever the header says.
      const plain = await call('/realip', { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' } });
      assert.equal(plain.status, 200);
      assert.equal((plain.body as Echo).headers['x-real-ip'], '127.0.0.1');
      assert.equal((plain.body as Echo).headers['x-forwarded-proto'], 'http');
    } finally {
      await dp.kill(); dp.cleanup();
    }
  });
});

describe('request-size-limiting', () => {
  it('answers 413 to a body whose Content-Length is over the limit, before the upstream sees it', async () => {
    await route('size', { name: 'request-size-limiting', config: { allowed_payload_size: 1, size_unit: 'kilobytes' } });
    const hits = s.upstream.hits;
    const big = await call('/size', { method: 'POST', body: Buffer.alloc(1025, 97) });
    assert.deepEqual([big.status, big.body.message], [413, 'Request size limit exceeded']);
    assert.equal(s.upstream.hits, hits);
    const small = await call('/size', { method: 'POST', body: Buffer.alloc(1024, 97) });
    assert.equal(small.status, 200);
    assert.equal((small.body as Echo).bodyBytes, 1024);
  });

  it('answers 417 to an over-limit body announced with Expect: 100-continue, without asking for it; a body within the limit gets 100 first', async () => {
    const host = new URL(s.dps[0].proxy).host;
    const refused = await raw(s.dps[0].proxy, `POST /size HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n`, { idleMs: 500 });
    assert.equal(rawStatus(refused), 417, refused);
    assert.doesNotMatch(refused, /100 Continue/);
    const accepted = await raw(s.dps[0].proxy, `POST /size HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      { idleMs: 1500, then: { afterMs: 300, data: 'hello' } });
    assert.match(accepted, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, accepted);
    assert.match(accepted, /"bodyBytes":5/);
  });

  it('answers 413 to a chunked body once it passes the limit, aborting the upstream request', async () => {
    await route('chunked', { name: 'request-size-limiting', config: { allowed_payload_size: 1, size_unit: 'kilobytes' } });
    const send = (chunks: number) => new Promise<number>((resolve, reject) => {
      const r = http.request(`${s.dps[0].proxy}/chunked`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode!); });
      r.on('error', reject);
      for (let i = 0; i < chunks; i++) r.write(Buffer.alloc(512, 97));
      r.end();
    });
    assert.equal(await send(2), 200, 'exactly 1 KiB passes');
    assert.equal(await send(8), 413);
    // The rest arriving later, after the limit was passed, is read and dropped, then answered
    // (this used to end the process).
    const slow = await new Promise<number>((resolve, reject) => {
      const r = http.request(`${s.dps[0].proxy}/chunked`, { method: 'POST', headers: { 'transfer-encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode!); });
      r.on('error', reject);
      r.write(Buffer.alloc(4096, 97));
      setTimeout(() => { r.write(Buffer.alloc(4096, 97)); r.end(); }, 500);
    });
    assert.equal(slow, 413);
    assert.equal((await fetch(s.dps[0].status + '/status')).status, 200, 'the node is still up');
    await waitFor('the log line', async () => s.dps[0].logs().includes('request body over the route\'s size limit'));
  });

  it('holds the limit for a chunked body that a plugin reads before the access phase (key-auth key_in_body)', async () => {
    await route('inbody', { name: 'request-size-limiting', config: { allowed_payload_size: 1, size_unit: 'kilobytes' } });
    await s.write('POST', '/routes/inbody/plugins', { name: 'key-auth', config: { key_in_body: true } });
    await s.A('POST', '/consumers', { username: 'inbody-user' });
    await s.write('POST', '/consumers/inbody-user/key-auth', { key: 'inbody-key-0123456789' });
    const send = (filler: number) => new Promise<number>((resolve, reject) => {
      const r = http.request(`${s.dps[0].proxy}/inbody`, { method: 'POST', headers: { 'transfer-encoding': 'chunked', 'content-type': 'application/json' } }, (res) => { res.resume(); resolve(res.statusCode!); });
      r.on('error', reject);
      r.end(JSON.stringify({ apikey: 'inbody-key-0123456789', filler: 'a'.repeat(filler) }));
    });
    assert.equal(await send(100), 200, 'a small body with the key passes');
    assert.equal(await send(8192), 413, 'a chunked body over 1 KiB is refused although the plugin buffers up to 8 MiB');
  });

  it('answers 411 without a Content-Length when one is required', async () => {
    await route('sized', { name: 'request-size-limiting', config: { require_content_length: true } });
    const r = await call('/sized');
    assert.deepEqual([r.status, r.body.message], [411, 'A valid Content-Length header is required']);
  });
});

describe('request-termination', () => {
  it('answers in place of the upstream, by default and on a trigger', async () => {
    const hits = s.upstream.hits;
    await route('maint', { name: 'request-termination' });
    const r = await call('/maint');
    assert.deepEqual([r.status, r.body], [503, { message: 'Service unavailable' }]);
    await route('trig', { name: 'request-termination', config: { status_code: 418, message: 'teapot', trigger: 'X-Stop' } });
    assert.deepEqual([(await call('/trig?stop')).status, (await call('/trig', { headers: { 'x-stop': '1' } })).body], [200, { message: 'teapot' }]);
    assert.equal((await call('/trig?X-Stop')).status, 418);
    assert.equal(s.upstream.hits, hits + 1);
  });

  it('answers a raw body with its content type, and a bodiless status with nothing', async () => {
    await route('html', { name: 'request-termination', config: { status_code: 503, body: '<h1>Maintenance</h1>', content_type: 'text/html; charset=utf-8' } });
    const r = await call('/html');
    assert.deepEqual([r.status, r.body, r.headers.get('content-type'), r.headers.get('content-length')], [503, '<h1>Maintenance</h1>', 'text/html; charset=utf-8', '20']);
    await route('empty', { name: 'request-termination', config: { status_code: 204 } });
    const e = await call('/empty');
    assert.deepEqual([e.status, e.body], [204, '']);
  });

  it('answers on a route that has no service at all; without a terminating plugin such a route is Kong\'s 503', async () => {
    await s.A('POST', '/routes', { name: 'svcless', paths: ['/svcless'] });
    await s.write('POST', '/routes/svcless/plugins', { name: 'request-termination', config: { status_code: 200, message: 'maintenance page' } });
    const r = await call('/svcless/x');
    assert.deepEqual([r.status, r.body], [200, { message: 'maintenance page' }]);
    await s.A('POST', '/routes', { name: 'svcless2', paths: ['/svcless2'] });
    await s.write('POST', '/routes/svcless2/plugins', { name: 'correlation-id' });
    const none = await call('/svcless2/x');
    assert.equal(none.status, 503);
    assert.match(none.body.message, /no Service found/i);
  });

  it('echoes the request as JSON', async () => {
    await route('echo', { name: 'request-termination', config: { echo: true, status_code: 200 } });
    const r = await call('/echo/a?x=1&x=2', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":7}' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.request.query, { x: ['1', '2'] });
    assert.deepEqual(r.body.request.body, { id: 7 });
    assert.equal(r.body.request.path, '/echo/a');
    assert.equal(r.body.matched_route.name, 'echo');
    assert.deepEqual([r.body.request.scheme, r.body.request.port, r.body.request.raw_body], ['http', Number(new URL(s.dps[0].proxy).port), '{"id":7}']);
    const nodeId = (await (await fetch(s.dps[0].status + '/status')).json() as { node_id?: string; id?: string });
    assert.equal(typeof r.body.kong.node_id, 'string');
    if (nodeId.node_id !== undefined) assert.equal(r.body.kong.node_id, nodeId.node_id);
    await s.A('POST', '/services/edge/routes', { name: 'echo-cap', paths: ['~/echo-cap/(?<id>\\d+)$'] });
    await s.write('POST', '/routes/echo-cap/plugins', { name: 'request-termination', config: { echo: true, status_code: 200 } });
    const c = await call('/echo-cap/42');
    assert.deepEqual(c.body.request.uri_captures, { named: { id: '42' }, unnamed: ['42'] });
  });
});

describe('correlation-id', () => {
  it('sends a generated id upstream and back, and keeps a client’s', async () => {
    await route('corr', { name: 'correlation-id', config: { echo_downstream: true } });
    const r = await call('/corr');
    const sent = (r.body as Echo).headers['kong-request-id'] as string;
    assert.match(sent, /^[0-9a-f-]{36}#\d+$/);
    assert.equal(r.headers.get('kong-request-id'), sent);
    const mine = await call('/corr', { headers: { 'Kong-Request-ID': 'trace-42' } });
    assert.equal((mine.body as Echo).headers['kong-request-id'], 'trace-42');
    assert.equal(mine.headers.get('kong-request-id'), 'trace-42');
    await waitFor('the access log carries the id', async () => s.dps[0].logs().split('\n').some((l) => l.includes('"correlation_id":"trace-42"') && l.includes('"path":"/corr"')));
  });

  it('puts the id into the gateway\'s own 502 body', async () => {
    await s.A('POST', '/services', { name: 'dead', url: 'http://127.0.0.1:1' });
    await s.A('POST', '/services/dead/routes', { name: 'dead', paths: ['/dead'] });
    await s.write('POST', '/routes/dead/plugins', { name: 'correlation-id', config: { echo_downstream: true } });
    const r = await call('/dead', { headers: { accept: 'application/json' } });
    assert.equal(r.status, 502);
    assert.equal(r.body.correlation_id, r.headers.get('kong-request-id'));
    assert.match(r.body.correlation_id, /#\d+$/);
  });

  it('tracker ids carry the connection: one connection, successive request numbers', async () => {
    await route('track', { name: 'correlation-id', config: { generator: 'tracker', echo_downstream: true } });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise<string>((resolve, reject) => {
      http.get(s.dps[0].proxy + '/track', { agent }, (res) => { res.resume(); res.on('end', () => resolve(String(res.headers['kong-request-id']))); }).on('error', reject);
    });
    const [a, b] = [await get(), await get()];
    agent.destroy();
    const port = new URL(s.dps[0].proxy).port;
    const re = new RegExp(`^127\\.0\\.0\\.1-${port}-\\d+-(\\d+)-(\\d+)-\\d+\\.\\d{3}$`);
    const [ma, mb] = [re.exec(a), re.exec(b)];
    assert.ok(ma && mb, `${a} ${b}`);
    assert.equal(ma[1], mb[1], 'same connection');
    assert.equal(Number(mb[2]), Number(ma[2]) + 1, 'the next request on it');
  });
});

describe('hostile configuration', () => {
  it('is refused at write time with the field named, and changes nothing', async () => {
    const before = (await s.A('GET', '/plugins')).body.data.length;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'ip-restriction', config: { allow: ['10.0.0.0/33'] } }, /invalid ip or cidr range: '10.0.0.0\/33'/],
      [{ name: 'cors', config: { origins: ['(a)\\1'] } }, /is not a valid regex/],
      [{ name: 'cors', config: { headers: ['X-A\r\nSet-Cookie: a=b'] } }, /bad header name/],
      [{ name: 'request-termination', config: { body: 'x', content_type: 'text/plain\r\nX-Evil: 1' } }, /must not contain control characters/],
      [{ name: 'correlation-id', config: { header_name: 'bad header' } }, /bad header name/],
      [{ name: 'request-size-limiting', config: { size_unit: 'gigabytes' } }, /expected one of: megabytes, kilobytes, bytes/],
    ];
    for (const [plugin, message] of cases) {
      const r = await s.A('POST', '/plugins', plugin);
      assert.equal(r.status, 400, JSON.stringify(plugin));
      assert.match(JSON.stringify(r.body.fields), message);
    }
    assert.equal((await s.A('GET', '/plugins')).body.data.length, before);
  });
});
