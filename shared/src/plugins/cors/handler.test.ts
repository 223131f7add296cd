// cors with in-memory ports: Kong's preflight and actual-request behaviour (spec/03-plugins/13-cors).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { corsConfig } from './schema.ts';
import { corsHandler, normalizeOrigin } from './handler.ts';
import fc from 'fast-check';
import { instantiate, testCtx } from '../test-ports.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);

const preflight = (origin: string, extra: Record<string, string> = {}) =>
  testCtx({ method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', ...extra } });
const simple = (origin?: string) => testCtx({ headers: origin ? { origin } : {} });

describe('cors handler', () => {
  it('answers a preflight with 200, no body and the configured headers', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['http://a.test'], headers: ['X-One', 'X-Two'], methods: ['GET', 'POST'], max_age: 3600 });
    assert.deepEqual(p.access(preflight('http://a.test')), {
      status: 200, body: '',
      headers: {
        vary: 'Origin', 'access-control-allow-origin': 'http://a.test', 'access-control-allow-headers': 'X-One,X-Two',
        'access-control-allow-methods': 'GET,POST', 'access-control-max-age': '3600',
      },
    });
  });

  it('echoes Access-Control-Request-Headers when no headers are configured, and lists every method by default', () => {
    const p = instantiate(corsHandler, corsConfig, {});
    const exit = p.access(preflight('http://x.test', { 'access-control-request-headers': 'content-type,x-trace' })) as { headers: Record<string, string> };
    assert.deepEqual(exit.headers, {
      'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type,x-trace',
      'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT',
    });
  });

  it('treats OPTIONS without Origin or Access-Control-Request-Method as an ordinary request', () => {
    const p = instantiate(corsHandler, corsConfig, {});
    assert.equal(p.access(testCtx({ method: 'OPTIONS', headers: { origin: 'http://x.test' } })), undefined);
    assert.equal(p.access(testCtx({ method: 'OPTIONS', headers: { 'access-control-request-method': 'GET' } })), undefined);
    assert.equal(p.access(simple('http://x.test')), undefined);
  });

  it('hands preflights to the upstream with preflight_continue, adding nothing to its answer', () => {
    const p = instantiate(corsHandler, corsConfig, { preflight_continue: true });
    const ctx = preflight('http://x.test');
    assert.equal(p.access(ctx), undefined);
    assert.deepEqual(p.response(ctx, { 'access-control-allow-origin': 'http://upstream.test' }), { 'access-control-allow-origin': 'http://upstream.test' });
  });

  it('allows a private-network preflight only when enabled and requested', () => {
    const on = instantiate(corsHandler, corsConfig, { private_network: true });
    const asked = { 'access-control-request-private-network': 'true' };
    assert.equal((on.access(preflight('http://x.test', asked)) as { headers: Record<string, string> }).headers['access-control-allow-private-network'], 'true');
    assert.equal((on.access(preflight('http://x.test')) as { headers: Record<string, string> }).headers['access-control-allow-private-network'], undefined);
    const off = instantiate(corsHandler, corsConfig, {});
    assert.equal((off.access(preflight('http://x.test', asked)) as { headers: Record<string, string> }).headers['access-control-allow-private-network'], undefined);
  });

  it('sends * on actual responses for any origin, without Vary', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['*'], exposed_headers: ['X-Total', 'X-Page'] });
    assert.deepEqual(p.response(simple('http://x.test')), { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'X-Total,X-Page' });
    assert.deepEqual(p.response(simple()), { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'X-Total,X-Page' });
  });

  it('never sends * with credentials: echoes the Origin with Vary instead', () => {
    const p = instantiate(corsHandler, corsConfig, { credentials: true });
    assert.deepEqual(p.response(simple('http://x.test'), { vary: 'Accept-Encoding' }), {
      vary: 'Accept-Encoding, Origin', 'access-control-allow-origin': 'http://x.test', 'access-control-allow-credentials': 'true',
    });
    // No Origin to echo: * stays, and credentials are not claimed.
    assert.deepEqual(p.response(simple()), { 'access-control-allow-origin': '*' });
    const exit = p.access(preflight('http://x.test')) as { headers: Record<string, string> };
    assert.equal(exit.headers['access-control-allow-origin'], 'http://x.test');
    assert.equal(exit.headers['access-control-allow-credentials'], 'true');
    assert.equal(exit.headers.vary, 'Origin');
  });

  it('sends credentials with a listed origin, and Vary: Origin whenever origins are listed', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['http://a.test', 'https://b.test:8443'], credentials: true });
    assert.deepEqual(p.response(simple('https://b.test:8443')), { vary: 'Origin', 'access-control-allow-origin': 'https://b.test:8443', 'access-control-allow-credentials': 'true' });
    // Not listed: no Allow-Origin (an upstream's is removed), the request still goes through.
    assert.deepEqual(p.response(simple('http://evil.test'), { 'access-control-allow-origin': '*' }), { vary: 'Origin', 'access-control-allow-credentials': 'true' });
  });

  it('always sends a single exact origin, whatever the request Origin', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['https://app.test'] });
    assert.deepEqual(p.response(simple('http://evil.test')), { vary: 'Origin', 'access-control-allow-origin': 'https://app.test' });
  });

  it('compares exact origins by scheme, host and port (default ports dropped)', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['http://a.test:80', 'https://b.test'] });
    assert.equal(p.response(simple('http://a.test'))['access-control-allow-origin'], 'http://a.test');
    assert.equal(p.response(simple('https://b.test:443'))['access-control-allow-origin'], 'https://b.test');
    assert.equal(p.response(simple('https://a.test'))['access-control-allow-origin'], undefined);
    assert.equal(p.response(simple('http://b.test'))['access-control-allow-origin'], undefined);
  });

  it('matches regex origins anchored, by host when the entry has no colon', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['(.*)\\.example\\.org', 'https://[a-z]+\\.partner\\.test'] });
    assert.equal(p.response(simple('https://api.example.org'))['access-control-allow-origin'], 'https://api.example.org');
    assert.equal(p.response(simple('http://x.example.org:8080'))['access-control-allow-origin'], 'http://x.example.org:8080');
    assert.equal(p.response(simple('https://example.org.evil.test'))['access-control-allow-origin'], undefined);
    assert.equal(p.response(simple('https://shop.partner.test'))['access-control-allow-origin'], 'https://shop.partner.test');
    assert.equal(p.response(simple('http://shop.partner.test'))['access-control-allow-origin'], undefined);
    assert.equal(p.response(simple('https://shop.partner.test.evil'))['access-control-allow-origin'], undefined);
  });

  it('decides each origin once, with a bounded memory of decisions', () => {
    const p = instantiate(corsHandler, corsConfig, { origins: ['(.*)\\.example\\.org'] });
    for (let i = 0; i < 3000; i++) p.response(simple(`https://h${i}.evil.test`));
    assert.ok((p.state as { decided: Map<string, unknown> }).decided.size <= 1024);
    for (let round = 0; round < 2; round++) {
      assert.equal(p.response(simple('https://a.example.org'))['access-control-allow-origin'], 'https://a.example.org');
      assert.equal(p.response(simple('https://a.example.org.evil.test'))['access-control-allow-origin'], undefined);
    }
  });

  it('never pairs Allow-Origin * with Allow-Credentials, and echoes only allowed origins (property)', () => {
    const origin = fc.constantFrom('https://a.test', 'http://a.test:80', 'https://x.example.org', 'null', 'https://evil.test', 'https://a.test.evil');
    const config = fc.record({
      origins: fc.option(fc.subarray(['*', 'https://a.test', 'http://a.test', '(.*)\\.example\\.org'], { minLength: 1 }), { nil: null }),
      credentials: fc.boolean(), allow_origin_absent: fc.boolean(),
    });
    fc.assert(fc.property(config, fc.option(origin, { nil: undefined }), fc.boolean(), (c, o, pre) => {
      const p = instantiate(corsHandler, corsConfig, c);
      const h = pre && o ? (p.access(preflight(o)) as { headers: Record<string, string> }).headers : p.response(simple(o));
      const acao = h['access-control-allow-origin'];
      if (acao === '*' && h['access-control-allow-credentials'] === 'true') return false;
      const wildcard = !c.origins || c.origins.includes('*');
      const single = c.origins?.length === 1 && c.origins[0] !== '*' && !c.origins[0].includes('(');
      // Without a wildcard, a single exact entry is sent as is; otherwise only an allowed Origin is echoed.
      return wildcard || single || acao === undefined || (o !== undefined && acao !== undefined && ['https://a.test', 'http://a.test', 'https://x.example.org'].includes(String(acao)));
    }), { numRuns: RUNS });
  });

  it('adds nothing when the Origin is absent and allow_origin_absent is off', () => {
    const p = instantiate(corsHandler, corsConfig, { allow_origin_absent: false });
    assert.deepEqual(p.response(simple()), {});
  });

  it('normalizes origins as Kong (userinfo, path and default port dropped)', () => {
    assert.equal(normalizeOrigin('http://u:p@a.test:80/x'), 'http://a.test');
    assert.equal(normalizeOrigin('https://a.test:8443'), 'https://a.test:8443');
    assert.equal(normalizeOrigin('null'), 'null');
    assert.equal(normalizeOrigin('http://[::1]:80'), 'http://[::1]');
  });

  it('refuses regexes RE2 cannot run, and header names that would split a header, at write time', () => {
    const r = corsConfig.safeParse({ origins: ['(a)\\1', '(?=x)y'], headers: ['X-Ok', 'X-Bad\r\nSet-Cookie: a=b'], exposed_headers: ['a b'], methods: ['GET', 'BREW'] });
    assert.equal(r.success, false);
    const messages = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    assert.ok(messages.some((m) => /^origins\.0: '\(a\)\\1' is not a valid regex/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /^origins\.1: /.test(m)), messages.join('\n'));
    assert.ok(messages.includes('headers.1: bad header name'), messages.join('\n'));
    assert.ok(messages.includes('exposed_headers.0: bad header name'), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('methods.1: expected one of')), messages.join('\n'));
  });

  it("fills Kong's defaults", () => {
    assert.deepEqual(corsConfig.parse({}), {
      origins: null, headers: null, exposed_headers: null, methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'],
      max_age: null, credentials: false, private_network: false, preflight_continue: false, allow_origin_absent: true,
    });
  });
});
