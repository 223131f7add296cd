// The proxy under hostile input and faults (issue 9; reproductions from
// ../shared/reviews/2026-11-24-probe.md, numbers in brackets), through a real CP, DP and upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { startStack, type Stack } from '../harness/stack.ts';
import { httpRequest, raw, statusOf } from '../harness/raw.ts';
import { wsRoundTrip, type Echo } from '../harness/upstream.ts';
import { waitFor } from '../harness/procs.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 40);
const JWT_SECRET = 'hostile-test-secret';

let s: Stack;
let P: string;

const req = (path: string, opts?: Parameters<typeof httpRequest>[2]) => httpRequest(P, path, opts);
const echo = (body: string) => JSON.parse(body) as Echo;
const b64 = (v: string | Buffer) => Buffer.from(v).toString('base64url');
/** An HS256 token signed with the consumer's own secret: what any consumer can mint. */
function token(claims: Record<string, unknown>): string {
  const input = `${b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64(JSON.stringify(claims))}`;
  return `${input}.${b64(createHmac('sha256', JWT_SECRET).update(input).digest())}`;
}
const upgrade = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: gw.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`
  + `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;
const logLines = () => s.dps[0].logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

before(async () => {
  s = await startStack({ dps: 1, dpEnv: { PORTICO_CLIENT_BODY_TIMEOUT_MS: '400' } });
  P = s.dps[0].proxy;
  const svc = (name: string, path: string, extra: Record<string, unknown> = {}) => s.write('POST', '/services', { name, url: `${s.upstream.url}${path}`, ...extra });
  await svc('svc', '/base');
  await svc('other', '/other');
  await svc('slow', '/slow', { read_timeout: 300, retries: 5 });
  const route = (service: string, body: Record<string, unknown>) => s.write('POST', `/services/${service}/routes`, body);
  await route('svc', { name: 'open', paths: ['/x'] });
  await route('slow', { name: 'slow', paths: ['/slow'] });
  await route('svc', { name: 'key', paths: ['/k'] });
  await route('svc', { name: 'keybody', paths: ['/kb'] });
  await route('svc', { name: 'keypre', paths: ['/kp'] });
  await route('svc', { name: 'jwt', paths: ['/jws'] });
  await route('svc', { name: 'token', paths: ['/tok'] });
  await route('svc', { name: 'limited', paths: ['/rl'] });
  await route('other', { name: 'internal', hosts: ['internal.example'], paths: ['/h'] });
  await route('svc', { name: 'public', hosts: ['public.example'], paths: ['/h'] });
  await s.write('POST', '/routes/key/plugins', { name: 'key-auth' });
  await s.write('POST', '/routes/keybody/plugins', { name: 'key-auth', config: { key_in_body: true } });
  await s.write('POST', '/routes/keypre/plugins', { name: 'key-auth', config: { run_on_preflight: false } });
  await s.write('POST', '/routes/token/plugins', { name: 'key-auth', config: { key_names: ['Token'] } });
  await s.write('POST', '/routes/jwt/plugins', { name: 'jwt', config: { claims_to_headers: { name: 'X-User-Name' } } });
  await s.write('POST', '/routes/limited/plugins', { name: 'rate-limiting', config: { minute: 1, policy: 'local', error_message: 'say "no" \\ please' } });
  await s.write('POST', '/consumers', { username: 'u' });
  await s.write('POST', '/consumers/u/key-auth', { key: 'k' });
  await s.write('POST', '/consumers/u/jwt', { key: 'iss1', secret: JWT_SECRET });
  await s.write('POST', '/consumers', { username: 'ユーザー' });
  await s.write('POST', `/consumers/${encodeURIComponent('ユーザー')}/key-auth`, { key: 'unikey' });
});
after(async () => { await s?.stop(); });

describe('retries never replay what is not idempotent', () => {
  it('sends a bodiless POST that hangs past read_timeout to the upstream exactly once (retries 5) [C2]', async () => {
    const marker = `once-${Date.now()}`;
    const r = await req(`/slow/${marker}?delay_ms=1500`, { method: 'POST' });
    assert.equal(r.status, 504);
    await new Promise((res) => setTimeout(res, 400));
    assert.equal(s.upstream.seen.filter((q) => q.url.includes(marker)).length, 1);
  });

  it('still retries an idempotent GET after a read timeout', async () => {
    const marker = `again-${Date.now()}`;
    const r = await req(`/slow/${marker}?delay_ms=1500`);
    assert.equal(r.status, 504);
    assert.equal(s.upstream.seen.filter((q) => q.url.includes(marker)).length, 6);
  });
});

describe('identity headers', () => {
  it('never forwards X_Consumer_Username or other underscore names [2.2]', async () => {
    for (const path of ['/x/a', '/k/a']) {
      const r = await req(path, { headers: { apikey: 'k', X_Consumer_Username: 'admin', X_Consumer_ID: '0', 'X-Fine': '1' } });
      assert.equal(r.status, 200);
      const e = echo(r.body);
      assert.equal(e.headers.x_consumer_username, undefined);
      assert.equal(e.headers.x_consumer_id, undefined);
      assert.equal(e.headers['x-fine'], '1');
    }
  });

  it('refuses a jwt claim with CRLF copied by claims_to_headers, over HTTP and WebSocket: nothing is smuggled [1.14]', async () => {
    const evil = token({ iss: 'iss1', name: 'a\r\nContent-Length: 0\r\n\r\nGET /internal-only HTTP/1.1\r\nHost: internal\r\nX-Consumer-Username: admin\r\nX-Pad: ' });
    const before = s.upstream.seen.length;
    const r = await req('/jws/s', { headers: { authorization: `Bearer ${evil}` } });
    assert.equal(r.status, 400);
    assert.match(JSON.parse(r.body).message, /header set for the upstream is invalid/);
    const ws = await raw(P, upgrade('/jws/s', `Authorization: Bearer ${evil}\r\n`));
    assert.equal(statusOf(ws), 400);
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(s.upstream.seen.length, before, 'the upstream saw nothing');
    assert.equal(s.upstream.seen.some((q) => q.url === '/internal-only'), false);
    assert.ok(logLines().some((l) => l.msg === 'refused: a header set for the upstream is invalid' && l.header === 'x-user-name'));
  });

  it('sends a non-Latin-1 consumer name and claim as UTF-8 percent-encoding, never a 502 [3.6]', async () => {
    const r = await req('/k/a', { headers: { apikey: 'unikey' } });
    assert.equal(r.status, 200);
    const sent = echo(r.body).headers['x-consumer-username'] as string;
    assert.equal(sent, "UTF-8''%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC");
    assert.equal(decodeURIComponent(sent.slice("UTF-8''".length)), 'ユーザー');

    const t = token({ iss: 'iss1', name: 'ålice☃' });
    const h = await req('/jws/a', { headers: { authorization: `Bearer ${t}` } });
    assert.equal(h.status, 200);
    assert.equal(echo(h.body).headers['x-user-name'], "UTF-8''%C3%A5lice%E2%98%83");

    assert.equal(await wsRoundTrip(`${P.replace('http', 'ws')}/jws/ws-claim`, 'hi', { authorization: `Bearer ${t}` }), 'echo:/base/ws-claim:hi');
    const seen = s.upstream.seen.filter((q) => q.upgrade && q.url === '/base/ws-claim').at(-1)!;
    assert.equal(seen.headers['x-user-name'], "UTF-8''%C3%A5lice%E2%98%83");
    assert.equal(seen.headers['x-consumer-username'], 'u');
    const line = await waitFor('the WebSocket access-log line', async () => logLines().find((l) => l.path === '/jws/ws-claim'));
    assert.equal(line.status, 101, 'upgrades end in the same finish as other requests');
  });
});

describe('request lines and Host [1.5, 1.6, 1.8]', () => {
  it('answers 400 to two Host headers', async () => {
    const r = await raw(P, 'GET /h/a HTTP/1.1\r\nHost: internal.example\r\nHost: public.example\r\n\r\n');
    assert.equal(statusOf(r), 400);
    assert.match(r, /more than one Host header/);
  });

  it('answers 400 to HTTP/0.9-style and HTTP/2.0 request lines, and serves HTTP/1.0', async () => {
    assert.equal(statusOf(await raw(P, 'GET /x/a\r\n\r\n')), 400);
    assert.equal(statusOf(await raw(P, 'GET /x/a HTTP/2.0\r\nHost: a\r\n\r\n')), 400);
    assert.equal(statusOf(await raw(P, 'GET /x/a HTTP/1.0\r\n\r\n')), 200);
  });

  it('routes an absolute-form request by its authority, and sends the upstream the path only', async () => {
    const r = await raw(P, 'GET http://internal.example/h/a?q=1 HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(r), 200);
    // The echo answers chunked: the JSON is the one chunk.
    const e = JSON.parse(r.slice(r.indexOf('{'), r.lastIndexOf('}') + 1)) as Echo;
    assert.equal(e.url, '/other/a?q=1');
    assert.equal(e.headers['x-forwarded-host'], 'internal.example');
  });
});

describe('upgrades', () => {
  it('never lets OPTIONS with Upgrade skip authentication (run_on_preflight=false) [3.9]', async () => {
    const r = await raw(P, upgrade('/kp/s').replace(/^GET/, 'OPTIONS'));
    assert.equal(statusOf(r), 400);
    assert.match(r, /OPTIONS cannot upgrade/);
    const authed = await raw(P, upgrade('/kp/s', 'apikey: k\r\n'), { idleMs: 300 });
    assert.equal(statusOf(authed), 101, 'a GET upgrade with a key still works');
  });

  it('answers an unauthenticated upgrade with 401 and keeps serving [4.2, 6.1]', async () => {
    assert.equal(statusOf(await raw(P, upgrade('/k/s'))), 401);
    assert.equal((await req('/x/a')).status, 200);
  });
});

describe('buffered bodies [5.2, 5.3]', () => {
  it('answers 408 when a buffered body stops arriving (client_body_timeout)', async () => {
    const r = await raw(P, 'POST /kb/a HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\napikey=k', { idleMs: 5000 });
    assert.equal(statusOf(r), 408);
    assert.match(r, /connection: close/i);
  });

  it('delivers a 413 (not a reset) over the buffering limit, with a log line', async () => {
    const big = Buffer.alloc(9 * 1024 * 1024, 'a');
    const r = await req('/kb/a', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: big });
    assert.equal(r.status, 413);
    assert.equal(JSON.parse(r.body).message, 'Request size limit exceeded');
    await waitFor('the 413 log line', async () => logLines().some((l) => l.msg === 'request body over the buffering limit'));
    // Chunked, so the size shows only while reading.
    const chunked = await new Promise<number>((resolve, reject) => {
      const r = http.request(`${P}/kb/a`, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' } }, (res) => { res.resume(); resolve(res.statusCode!); });
      r.on('error', reject);
      for (let i = 0; i < 9; i++) r.write(Buffer.alloc(1024 * 1024, 'a'));
      r.end();
    });
    assert.equal(chunked, 413);
  });

  it('still authenticates a key sent in a small body', async () => {
    const r = await req('/kb/a', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'apikey=k&x=1' });
    assert.equal(r.status, 200);
  });
});

describe('logs', () => {
  it('redacts keys and tokens in query strings, including names a route configures [11]', async () => {
    await req('/k/a?apikey=k&keep=1');
    await req('/tok/a?token=sekrit-token&x=2');
    await req('/jws/a?jwt=not.a.token');
    await waitFor('access log lines', async () => logLines().filter((l) => typeof l.path === 'string' && /^\/(k|tok|jws)\/a\?/.test(l.path as string)).length >= 3);
    const text = s.dps[0].logs();
    assert.equal(text.includes('apikey=k&'), false);
    assert.equal(text.includes('sekrit-token'), false);
    assert.equal(text.includes('not.a.token'), false);
    const paths = logLines().map((l) => l.path);
    assert.ok(paths.includes('/k/a?apikey=[REDACTED]&keep=1'));
    assert.ok(paths.includes('/tok/a?token=[REDACTED]&x=2'));
    assert.ok(paths.includes('/jws/a?jwt=[REDACTED]'));
  });

  it('writes an access-log line for a request its client abandoned [C3]', async () => {
    const marker = `gone-${Date.now()}`;
    await new Promise<void>((resolve) => {
      const r = http.request(`${P}/x/${marker}?delay_ms=1000`, { agent: false });
      r.on('error', () => resolve());
      r.end();
      setTimeout(() => { r.destroy(); resolve(); }, 150);
    });
    const line = await waitFor('the aborted request\'s line', async () => logLines().find((l) => String(l.path).includes(marker)));
    assert.equal(line.status, 499);
    assert.equal(line.aborted, true);
  });
});

describe('error bodies', () => {
  it('stay valid JSON with a quote and a backslash in a configured error_message [C6]', async () => {
    await req('/rl/a');
    const r = await req('/rl/a');
    assert.equal(r.status, 429);
    assert.equal(JSON.parse(r.body).message, 'say "no" \\ please');
  });
});

describe('fuzz: request lines through a running gateway', () => {
  it('answers every random request line with a 4xx, 404 or 200, never a 5xx, and stays up', async () => {
    const seg = fc.string({ unit: fc.constantFrom('a', 'x', 'k', '/', '.', '%', '2', 'e', 'F', '?', '=', '&', ';', '~', '*', '@', ':', '#', '\\', '+', 'ü', ' ') , maxLength: 24 });
    const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'BREW', 'get', 'CONNECT');
    const target = fc.oneof(seg.map((p) => `/${p}`), seg.map((p) => `/x/${p}`), seg.map((p) => `http://internal.example/h/${p}`), fc.constant('*'), seg);
    const version = fc.constantFrom(' HTTP/1.1', ' HTTP/1.0', ' HTTP/2.0', ' HTTP/0.9', '', ' HTTP/1.2', ' http/1.1');
    const extra = fc.constantFrom('', 'Host: b\r\n', 'Upgrade: websocket\r\nConnection: Upgrade\r\n', 'X_Consumer_Username: admin\r\n', 'Content-Length: 3\r\n\r\nabc');
    await fc.assert(fc.asyncProperty(method, target, version, extra, async (m, t, v, e) => {
      const text = `${m} ${t}${v}\r\nHost: a\r\n${e}${e.includes('\r\n\r\n') ? '' : '\r\n'}`;
      const out = await raw(P, Buffer.from(text, 'utf8'), { idleMs: 300 });
      const status = statusOf(out);
      assert.ok(status === 0 || status < 500, `${JSON.stringify(text)} → ${out.slice(0, 80)}`);
    }), { numRuns: RUNS });
    assert.equal(s.dps[0].proc.exitCode, null, 'the data plane is still running');
    assert.equal((await req('/x/a')).status, 200);
  });
});
