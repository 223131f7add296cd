import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { encodeHeaderValue, requestHead, responseHead, sealUpstreamHeaders, upstreamRequestHeaders } from './headers.ts';
import { errorBody } from './errors.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);

/** What Node's parser hands over: lower-case token names, latin1 values without control characters. */
function fakeReq(headers: Record<string, string | string[]>): IncomingMessage {
  return { headers, httpVersion: '1.1', httpVersionMinor: 1 } as unknown as IncomingMessage;
}
const build = (headers: Record<string, string | string[]>, underscores = false) => upstreamRequestHeaders({
  req: fakeReq(headers), requestId: 'r1', host: 'up.test', clientHost: 'gw.test:8000', clientIp: '10.0.0.1',
  listenPort: 8000, originalPath: '/a', strippedPrefix: '', underscores,
});
const FORBIDDEN = /[\r\n\0]/;

describe('upstream headers', () => {
  it('drops client headers whose names hold an underscore unless allowed (nginx underscores_in_headers)', () => {
    const client = { x_consumer_username: 'admin', 'x-consumer-username': 'admin', 'x-ok': '1' };
    const out = build(client);
    assert.equal(out.x_consumer_username, undefined);
    assert.equal(out['x-consumer-username'], undefined, 'identity headers are the gateway\'s');
    assert.equal(out['x-ok'], '1');
    assert.equal(build(client, true).x_consumer_username, 'admin');
  });

  it('refuses a gateway-set value with CR, LF or NUL, naming the header and not the value', () => {
    for (const bad of ['a\r\nX-Injected: 1', 'a\nb', 'a\rb', 'a\0b', 'a\x01b']) {
      const h = build({});
      h['x-user-name'] = bad;
      assert.deepEqual(sealUpstreamHeaders(h, {}), { name: 'x-user-name', reason: 'control' });
    }
    const h = build({});
    h['bad name'] = 'v';
    assert.deepEqual(sealUpstreamHeaders(h, {}), { name: 'bad name', reason: 'name' });
  });

  it('sends non-ASCII gateway-set values as RFC 8187 UTF-8 percent-encoding, ASCII ones unchanged', () => {
    const h = build({});
    h['x-consumer-username'] = 'ユーザー';
    h['x-user'] = ['ålice☃', 'bob'];
    h['x-plain'] = 'José? no: Jose';
    assert.equal(sealUpstreamHeaders(h, {}), null);
    assert.equal(h['x-consumer-username'], "UTF-8''%E3%83%A6%E3%83%BC%E3%82%B6%E3%83%BC");
    assert.deepEqual(h['x-user'], ["UTF-8''%C3%A5lice%E2%98%83", 'bob']);
    assert.equal(h['x-plain'], "UTF-8''Jos%C3%A9%3F%20no%3A%20Jose", 'every byte outside attr-char is encoded once a value is');
    assert.equal(decodeURIComponent((h['x-consumer-username'] as string).slice(7)), 'ユーザー');
    assert.equal(encodeHeaderValue('a\uD800b'), "UTF-8''a%EF%BF%BDb", 'a lone surrogate becomes U+FFFD');
  });

  it('copies only the client\'s own headers, whatever Object.prototype holds', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.apikey = 'k';
    try {
      assert.equal(Object.hasOwn(build({ 'x-a': '1' }), 'apikey'), false);
    } finally {
      delete proto.apikey;
    }
  });

  it('leaves client values as received (their latin1 bytes round-trip)', () => {
    const client = { 'x-raw': 'caf\u00e9' };
    const h = build(client);
    assert.equal(sealUpstreamHeaders(h, client), null);
    assert.equal(h['x-raw'], 'caf\u00e9');
  });

  it('fuzz: any names and values plugins set give a sealed set with no CR, LF or NUL, or a refusal; never a throw', () => {
    const latin1NoCtl = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)) });
    const token = fc.stringMatching(/^[a-z0-9_-]{1,12}$/);
    const anyChar = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 });
    const anyText = fc.string({ unit: fc.oneof(fc.constantFrom('\r', '\n', '\0', '\t', ' ', '_', 'ユ', '☃', 'å', '\uD800'), anyChar) });
    fc.assert(fc.property(
      fc.dictionary(token, latin1NoCtl), fc.dictionary(fc.oneof(token, anyText), fc.oneof(anyText, fc.array(anyText, { maxLength: 3 }))), fc.boolean(),
      (client, set, underscores) => {
        const h = build(client, underscores);
        for (const [k, v] of Object.entries(set)) h[k] = v;
        const refused = sealUpstreamHeaders(h, client);
        if (refused) return;
        const head = requestHead('GET', '/a', h);
        assert.equal(FORBIDDEN.test(head.slice(0, -4).replaceAll('\r\n', '')), false);
        if (!underscores) for (const name of Object.keys(client)) if (name.includes('_') && !Object.hasOwn(set, name)) assert.equal(Object.hasOwn(h, name), false);
      },
    ), { numRuns: RUNS });
  });

  it('fuzz: a raw response head never carries CR, LF or NUL from a header value', () => {
    fc.assert(fc.property(fc.dictionary(fc.string(), fc.string({ unit: fc.oneof(fc.constantFrom('\r', '\n', '\0'), fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 })) })), (headers) => {
      const head = responseHead(401, 'Unauthorized', headers);
      const lines = head.split('\r\n');
      assert.equal(lines.at(-1), '');
      assert.equal(lines.at(-2), '');
      for (const line of lines.slice(1, -2)) assert.equal(/[\r\n\0]/.test(line), false);
    }), { numRuns: RUNS });
  });
});

describe('error bodies', () => {
  it('stay valid JSON whatever the configured message holds', () => {
    fc.assert(fc.property(fc.string(), (message) => {
      const b = errorBody({}, 'gateway', message, 'id');
      assert.deepEqual(JSON.parse(b.body), { message, request_id: 'id' });
    }), { numRuns: RUNS });
    assert.equal(JSON.parse(errorBody({}, 'gateway', 'say "no" \\ please', 'id').body).message, 'say "no" \\ please');
  });
});
