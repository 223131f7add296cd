import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AdminError, routeSchema, serviceSchema } from '@portico/shared';
import { coerce, MAX_FORM_KEY_DEPTH, MAX_JSON_DEPTH, nestFormPairs, parseBody, parseJson } from './body.ts';
import { ENTITIES } from '../services/entity.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);

/** Parsed bodies have null prototypes; compare their content as plain JSON. */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));
const enc = (s: string) => new TextEncoder().encode(s);
const FORM = 'application/x-www-form-urlencoded';

/** The 400 a hostile body must produce: an AdminError with Kong's schema-violation body. */
function rejects(fn: () => unknown, field: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AdminError);
    assert.equal(err.status, 400);
    assert.equal(err.body.code, 2);
    assert.ok(Object.hasOwn(err.body.fields as object, field), JSON.stringify(err.body));
    return true;
  });
}

/** Nothing may ever land on Object.prototype: the pollution check behind every test here. */
function assertUnpolluted(): void {
  const probe: Record<string, unknown> = {};
  for (const k of ['apikey', 'x', 'polluted', 'finalize', 'endpointKeyNestedOnly']) assert.equal(probe[k], undefined, `Object.prototype.${k} was written`);
  assert.deepEqual(Object.keys(Object.prototype), []);
}

describe('form bodies (Kong coercion)', () => {
  it('nests dotted and bracketed keys', () => {
    assert.deepEqual(plain(nestFormPairs([['service.id', 'x'], ['config.minute', '5'], ['headers[x-a][]', '1'], ['headers.x-a[]', '2']])),
      { service: { id: 'x' }, config: { minute: '5' }, headers: { 'x-a': ['1', '2'] } });
  });
  it('orders indexed arrays by index', () => {
    assert.deepEqual(plain(nestFormPairs([['paths[2]', '/b'], ['paths[1]', '/a']])), { paths: ['/a', '/b'] });
  });
  it('coerces numbers, booleans, empty strings and single values against the schema', () => {
    const raw = nestFormPairs([['port', '8080'], ['enabled', 'false'], ['path', ''], ['tags', 'one']]);
    assert.deepEqual(plain(coerce(serviceSchema, raw)), { port: 8080, enabled: false, path: null, tags: ['one'] });
    assert.deepEqual(plain(coerce(routeSchema, nestFormPairs([['https_redirect_status_code', '301'], ['methods', 'GET']]))), { https_redirect_status_code: 301, methods: ['GET'] });
  });
  it('leaves non-numeric strings for the schema to reject', () => {
    assert.deepEqual(plain(coerce(serviceSchema, { port: 'eighty' })), { port: 'eighty' });
  });
  it('builds null-prototype objects at every level', () => {
    const r = nestFormPairs([['config.redis.host', 'h'], ['name', 'x']]);
    assert.equal(Object.getPrototypeOf(r), null);
    assert.equal(Object.getPrototypeOf(r.config), null);
    assert.equal(Object.getPrototypeOf((r.config as Record<string, unknown>).redis), null);
  });
});

describe('hostile bodies', () => {
  it('refuses __proto__, constructor and prototype form keys with a 400 and leaves Object.prototype alone (probe 4.1)', () => {
    rejects(() => nestFormPairs([['username', 'p'], ['__proto__[apikey]', 'k']]), '__proto__');
    rejects(() => nestFormPairs([['constructor[prototype][apikey]', 'k']]), 'constructor');
    rejects(() => nestFormPairs([['config.prototype.x', 'k']]), 'config');
    rejects(() => nestFormPairs([['__proto__.apikey', 'k']]), '__proto__');
    rejects(() => nestFormPairs([['%5F_proto__[apikey]', 'k'].map((s) => decodeURIComponent(s)) as [string, string]]), '__proto__');
    assert.equal(({} as Record<string, unknown>).apikey, undefined);
    assertUnpolluted();
  });

  it('refuses reserved JSON keys at any depth', () => {
    rejects(() => parseJson('{"__proto__":{"apikey":"k"}}'), '__proto__');
    rejects(() => parseJson('{"config":{"a":[{"constructor":1}]}}'), 'config');
    rejects(() => parseJson('{"headers":{"prototype":["x"]}}'), 'headers');
    assertUnpolluted();
  });

  it('answers a form key nested 5,000 deep with a 400, not a stack overflow (probe 4.6)', () => {
    rejects(() => nestFormPairs([[`tags${'[x]'.repeat(5000)}`, '1']]), 'tags');
    rejects(() => nestFormPairs([[`a${'.b'.repeat(MAX_FORM_KEY_DEPTH)}`, '1']]), 'a');
  });

  it('answers JSON nested 100,000 deep with a 400 (probe 4.5)', () => {
    const deep = '{"name":"d","sources":[' + '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000) + ']}';
    rejects(() => parseJson(deep), 'sources');
    const atLimit = '{"a":' + '['.repeat(MAX_JSON_DEPTH - 1) + ']'.repeat(MAX_JSON_DEPTH - 1) + '}';
    assert.doesNotThrow(() => parseJson(atLimit));
  });

  it('parses form, multipart and JSON bodies the same way, null-prototype throughout', async () => {
    const fd = new FormData();
    fd.append('name', 'm'); fd.append('__proto__[x]', '1');
    const req = new Request('http://x/', { method: 'POST', body: fd });
    const bytes = new Uint8Array(await req.arrayBuffer());
    await assert.rejects(parseBody(req.headers.get('content-type')!, bytes, () => undefined), (e: unknown) => e instanceof AdminError && e.status === 400);
    const json = await parseBody('application/json', enc('{"a":{"b":1}}'), () => undefined);
    assert.equal(Object.getPrototypeOf(json.a), null);
    assertUnpolluted();
  });
});

/** What a hostile client can put in a key or a value. */
const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '__proto__[x]', 'constructor[prototype][x]', '[]', '[0]', '.', '..', '[', ']',
    '\r\n', '\0', 'a\u0000b', '%00', '%E0%A4%A', 'ユーザー', '\uD800', 'x'.repeat(5000), '[x]'.repeat(40), 'a.b.c.d'),
  fc.array(fc.constantFrom('a', '.', '[', ']', '[]', '0', '__proto__', 'constructor', '%5B', '%5D'), { maxLength: 30 }).map((a) => a.join('')),
);
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
})).value;

/** A parse either answers or throws Kong's 4xx; anything else is a bug. */
async function cleanly(fn: () => unknown): Promise<void> {
  try { await fn(); } catch (err) {
    assert.ok(err instanceof AdminError, `threw ${(err as Error)?.stack ?? err}`);
    assert.ok(err.status >= 400 && err.status < 500);
    JSON.stringify(err.body);
  }
}

describe('body parser fuzz', () => {
  it('form pairs of hostile keys and values give an object or a 400, never a throw or pollution', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(hostileString, hostileString), { maxLength: 20 }), fc.constantFrom(...ENTITIES), async (pairs, def) => {
      const body = new URLSearchParams(pairs).toString();
      await cleanly(() => parseBody(FORM, enc(body), () => def.schema));
      assertUnpolluted();
    }), { numRuns: RUNS });
  });

  it('JSON of any shape gives an object or a 400', async () => {
    await fc.assert(fc.asyncProperty(jsonValue, async (v) => {
      await cleanly(() => parseBody('application/json', enc(JSON.stringify(v) ?? ''), () => undefined));
      assertUnpolluted();
    }), { numRuns: RUNS });
  });

  it('raw bytes under any content type give an object or a 4xx', async () => {
    const ctype = fc.constantFrom(undefined, 'application/json', FORM, 'multipart/form-data; boundary=x', 'multipart/form-data', 'text/plain', 'application/json, text/html');
    await fc.assert(fc.asyncProperty(ctype, fc.uint8Array({ maxLength: 200 }), async (ct, bytes) => {
      await cleanly(() => parseBody(ct, bytes, () => undefined));
    }), { numRuns: RUNS });
  });
});
