// Entity validation under hostile input: every string field refuses CR, LF and NUL and is bounded,
// rule names are HTTP tokens, regexes are RE2's, jwt keys fit their algorithm, and no input makes
// validation throw or writes onto a prototype.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { z } from 'zod';
import {
  aclSchema, basicAuthCredentialSchema, compileRoutePathRegex, consumerSchema, jwtSecretSchema, keyAuthCredentialSchema, pluginSchema,
  publicKeyError, routeSchema, SafeRegex, schemaViolation, serviceSchema, targetSchema, upstreamSchema, violationsFromZod,
} from '@portico/shared';
import { PLUGIN_DEFINITIONS } from '../plugins/schemas.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);
const ID = '4a6a4bc5-6c18-4d40-9a4f-58c8b3e4f0a1';
const base = { id: ID, created_at: 1, updated_at: 1 };

function fieldErrors(schema: z.ZodType, value: unknown): Record<string, unknown> | null {
  const r = schema.safeParse(value);
  return r.success ? null : (schemaViolation(violationsFromZod(r.error)).body.fields as Record<string, unknown>);
}

describe('string fields', () => {
  it('refuse CR, LF and NUL wherever a value can reach a header or a log line', () => {
    for (const bad of ['a\r\nb', 'a\nb', 'a\u0000b', 'a\rb']) {
      assert.ok(fieldErrors(consumerSchema, { ...base, username: bad })?.username, `username ${JSON.stringify(bad)}`);
      assert.ok(fieldErrors(consumerSchema, { ...base, custom_id: bad })?.custom_id);
      assert.ok(fieldErrors(consumerSchema, { ...base, username: 'u', tags: [bad] })?.tags);
      assert.ok(fieldErrors(basicAuthCredentialSchema, { id: ID, created_at: 1, consumer: { id: ID }, username: bad, password: 'p' })?.username);
      assert.ok(fieldErrors(aclSchema, { id: ID, created_at: 1, consumer: { id: ID }, group: bad })?.group);
      assert.ok(fieldErrors(routeSchema, { ...base, paths: ['/a'], headers: { 'x-a': [bad] } })?.headers);
      assert.ok(fieldErrors(serviceSchema, { ...base, name: bad, host: 'x.test' })?.name);
      assert.ok(fieldErrors(upstreamSchema, { ...base, name: 'up', host_header: bad })?.host_header);
    }
    assert.equal(fieldErrors(consumerSchema, { ...base, username: 'José ユーザー\tx' }), null, 'non-ASCII and tab are fine');
  });

  it('bound lengths: a 50 MB tag or name is a field error, not a stored value (probe 4.4)', () => {
    const huge = 'a'.repeat(50 * 1024 * 1024);
    assert.deepEqual(fieldErrors(serviceSchema, { ...base, host: 'x.test', tags: [huge] }), { tags: ['length must be at most 128'] });
    assert.deepEqual(fieldErrors(consumerSchema, { ...base, username: huge }), { username: 'length must be at most 4096' });
    assert.deepEqual(fieldErrors(serviceSchema, { ...base, host: 'x.test', name: huge }), { name: 'length must be at most 256' });
  });
});

describe('route rules', () => {
  it('take only RFC 9110 tokens as header and query names, and refuse reserved ones (probe 4.2, 4.8)', () => {
    for (const name of ['x y', 'x\r\ny', ':authority', 'ユーザー', 'constructor', 'prototype', 'a:b', '']) {
      assert.ok(fieldErrors(routeSchema, { ...base, headers: { [name]: ['1'] } }), `header ${JSON.stringify(name)}`);
      assert.ok(fieldErrors(routeSchema, { ...base, query: { [name]: ['1'] } }), `query ${JSON.stringify(name)}`);
    }
    const errs = fieldErrors(routeSchema, { ...base, headers: { constructor: ['x'] } })!;
    assert.ok(Object.hasOwn(errs.headers as object, 'constructor'), 'the error names the rule');
    assert.equal(fieldErrors(routeSchema, { ...base, headers: { 'X-Tenant_1': ['a', '~*^b+$'] } }), null);
  });

  it('validate path and header regexes with RE2 and report its reason (probe 4.3)', () => {
    for (const p of ['~/(a)\\1', '~/(?=x)', '~/(?<!x)a', '~/(']) {
      const e = fieldErrors(routeSchema, { ...base, paths: [p] });
      assert.match((e?.paths as string[])[0], /^invalid regex: '.*' \(RE2 returned: .+\)$/, p);
    }
    assert.match((fieldErrors(routeSchema, { ...base, headers: { 'x-a': ['~*(?=x)'] } })?.headers as Record<string, string>)['x-a'], /RE2 returned/);
    assert.equal(fieldErrors(routeSchema, { ...base, paths: ['~/(a+)+$', '~/users/(?<id>\\d+)$'] }), null);
  });

  it('compileRoutePathRegex gives an anchored linear-time SafeRegex', () => {
    const re = compileRoutePathRegex('/users/(?<id>\\d+)');
    assert.ok(re instanceof SafeRegex);
    assert.deepEqual(re.exec('/users/42/x'), { matched: '/users/42', unnamed: ['42'], named: Object.assign(Object.create(null), { id: '42' }) });
    assert.equal(re.test('/x/users/42'), false, 'anchored at the start');
    // The probe's attack input: answered at all (a backtracking engine takes hours at this length).
    assert.equal(compileRoutePathRegex('/(a+)+$').test(`/${'a'.repeat(5000)}!`), false);
    assert.throws(() => compileRoutePathRegex('(a)\\1'), SyntaxError);
  });

  it("types sources and destinations as Kong's {ip, port} (probe 4.5)", () => {
    const r = { ...base, protocols: ['tcp'] };
    assert.equal(fieldErrors(routeSchema, { ...r, sources: [{ ip: '10.0.0.0/8' }, { port: 80 }], destinations: [{ ip: '::1', port: 1 }] }), null);
    for (const bad of [[{ a: 1 }], [{}], [{ ip: '300.1.1.1' }], [{ ip: '10.0.0.0/40' }], [{ port: -1 }], [[[]]]]) {
      assert.ok(fieldErrors(routeSchema, { ...r, sources: bad })?.sources, JSON.stringify(bad));
    }
  });
});

describe('jwt public keys', () => {
  const gen = (type: string, namedCurve?: string) =>
    (generateKeyPairSync as any)(type, { modulusLength: 2048, namedCurve, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const rsa = gen('rsa'); const p256 = gen('ec', 'prime256v1'); const p384 = gen('ec', 'secp384r1'); const p521 = gen('ec', 'secp521r1');
  const ed = gen('ed25519'); const ed448 = gen('ed448');

  it('accepts the key type and curve each algorithm verifies with', () => {
    for (const [alg, k] of [['RS256', rsa], ['PS384', rsa], ['ES256', p256], ['ES384', p384], ['ES512', p521], ['EdDSA', ed], ['EdDSA', ed448]] as const) {
      assert.equal(publicKeyError(alg, k.publicKey), null, alg);
    }
  });
  it("refuses garbage, private keys and mismatched keys with Kong's 'invalid key'", () => {
    for (const [alg, pem] of [['RS256', 'garbage'], ['RS256', rsa.privateKey], ['RS256', p256.publicKey], ['ES256', p384.publicKey],
      ['ES512', p256.publicKey], ['EdDSA', p256.publicKey], ['PS256', ed.publicKey], ['ES256', '-----BEGIN PUBLIC KEY-----\nzz\n-----END PUBLIC KEY-----']] as const) {
      assert.match(publicKeyError(alg, pem) ?? '', /^invalid key/, `${alg} ${pem.slice(0, 20)}`);
    }
    const e = fieldErrors(jwtSecretSchema, { id: ID, created_at: 1, consumer: { id: ID }, key: 'k', algorithm: 'RS256', rsa_public_key: 'garbage' });
    assert.match(e?.rsa_public_key as string, /^invalid key/);
  });
});

describe('error bodies', () => {
  it('name reserved keys as own fields and never write onto a prototype', () => {
    const err = schemaViolation([{ path: ['__proto__', 'apikey'], message: 'x' }, { path: ['constructor'], message: 'y' }, { path: ['a', 'prototype', 0], message: 'z' }]);
    const fields = err.body.fields as Record<string, unknown>;
    assert.ok(Object.hasOwn(fields, '__proto__'));
    assert.ok(Object.hasOwn(fields, 'constructor'));
    assert.equal(({} as Record<string, unknown>).apikey, undefined);
    assert.deepEqual(JSON.parse(JSON.stringify(fields)), JSON.parse('{"__proto__":{"apikey":"x"},"a":{"prototype":["z"]},"constructor":"y"}'));
  });
});

// ------------------------------------------------------------------------------------------------
// Fuzz: any input gives a clean result; what is accepted is safe to put in a header or a log.

const hostile = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '\r\n', '\u0000', 'a\u0000b', '~/(a+)+$', '~/(a)\\1', '~*(?=x)', '/a/../b', '/%zz',
    '*.example.com', 'a.*.b', '[::1]', '10.0.0.0/8', 'ユーザー', '\uD800', 'x'.repeat(5000), ':authority', 'GET', '/ok'),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, hostile, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), tie('arr'), tie('obj')),
  arr: fc.array(tie('v'), { maxLength: 3 }),
  obj: fc.dictionary(hostile, tie('v'), { maxKeys: 3 }),
})).v;

const SCHEMAS: [string, z.ZodType, string[]][] = [
  ['services', serviceSchema, ['name', 'host', 'path', 'tags']],
  ['routes', routeSchema, ['name', 'paths', 'hosts', 'headers', 'query', 'methods', 'snis', 'tags', 'sources']],
  ['consumers', consumerSchema, ['username', 'custom_id', 'tags']],
  ['upstreams', upstreamSchema, ['name', 'hash_on_header', 'host_header', 'tags']],
  ['targets', targetSchema, ['target', 'tags']],
  ['plugins', pluginSchema, ['name', 'instance_name', 'tags']],
  ['keyauth_credentials', keyAuthCredentialSchema, ['key_prefix', 'tags']],
  ['jwt_secrets', jwtSecretSchema, ['key', 'secret', 'algorithm', 'rsa_public_key']],
  ['basicauth_credentials', basicAuthCredentialSchema, ['username', 'password']],
  ['acls', aclSchema, ['group']],
];

/** Every string in an accepted single-line field is free of CR, LF and NUL. */
function singleLineSafe(v: unknown): boolean {
  if (typeof v === 'string') return !/[\r\n\0]/.test(v);
  if (Array.isArray(v)) return v.every(singleLineSafe);
  if (v && typeof v === 'object') return Object.entries(v).every(([k, x]) => !/[\r\n\0]/.test(k) && singleLineSafe(x));
  return true;
}

describe('entity validation fuzz', () => {
  for (const [name, schema, fields] of SCHEMAS) {
    it(`${name}: hostile field values give a clean result, and what passes is header-safe`, () => {
      fc.assert(fc.property(fc.dictionary(fc.constantFrom(...fields), value, { maxKeys: 4 }), (input) => {
        const r = schema.safeParse({ ...base, consumer: { id: ID }, ...input });
        if (!r.success) {
          const err = schemaViolation(violationsFromZod(r.error));
          assert.equal(err.status, 400);
          JSON.stringify(err.body);
          return;
        }
        for (const f of fields) if (f !== 'rsa_public_key') assert.ok(singleLineSafe((r.data as Record<string, unknown>)[f]), `${f}: ${JSON.stringify(input)}`);
        const headers = (r.data as { headers?: Record<string, unknown> | null }).headers;
        if (headers) for (const k of Object.keys(headers)) assert.match(k, /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/);
        const paths = (r.data as { paths?: string[] | null }).paths;
        for (const p of paths ?? []) if (p.startsWith('~')) compileRoutePathRegex(p.slice(1));
      }), { numRuns: RUNS });
    });
  }

  it('plugin configs: hostile values give a clean result', () => {
    const defs = [...PLUGIN_DEFINITIONS.values()];
    fc.assert(fc.property(fc.constantFrom(...defs), fc.dictionary(hostile, value, { maxKeys: 4 }), (def, config) => {
      const r = def.configSchema.safeParse(config);
      if (!r.success) JSON.stringify(schemaViolation(violationsFromZod(r.error)).body);
    }), { numRuns: RUNS });
    assert.deepEqual(Object.keys(Object.prototype), []);
  });
});
