// Hostile input to the admin API of an all-in-one on its embedded defaults (PGlite, in-process
// bus), as the probe report ran it (../shared/reviews/2026-11-24-probe.md §4). Every answer is a
// clean 4xx in Kong's shape, nothing changes, and the proxy keeps authenticating.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { admin, startGateway, statusOf, type GatewayProcess } from '../harness/gateway.ts';
import { waitFor } from '../harness/procs.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { makeCa } from '../harness/certs.ts';
import { EXAMPLE_UUID } from '../../shared/src/entities/certificate-example.ts';
import { collectionPath, ENTITIES } from '../../control-plane/src/services/entity.ts';

const FUZZ_RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 60);

let g: GatewayProcess; let up: Upstream;
const A = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => admin(g.admin, method, path, body, headers);
const json = { 'content-type': 'application/json' };

/** The config version the CP has committed and published. */
async function configVersion(): Promise<number> {
  return (await A('GET', '/status')).body.configuration.version;
}
/** Wait until the embedded DP runs at least `version`. */
async function applied(version: number): Promise<void> {
  await waitFor(`DP at version ${version}`, async () => (await statusOf(g)).version >= version);
}
const versionOf = (r: { headers: Headers }) => Number(r.headers.get('x-portico-config-version'));

before(async () => {
  up = await startUpstream();
  g = await startGateway('all-in-one', { env: { DATABASE_URL: undefined, NATS_URL: undefined, REDIS_URL: undefined } });
  assert.equal((await A('POST', '/services', new URLSearchParams({ name: 'svc', url: up.url }))).status, 201);
  assert.equal((await A('POST', '/services/svc/routes', new URLSearchParams('paths[]=/k&name=rk'))).status, 201);
  assert.equal((await A('POST', '/routes/rk/plugins', new URLSearchParams('name=key-auth'))).status, 201);
  assert.equal((await A('POST', '/consumers', new URLSearchParams('username=u'))).status, 201);
  const key = await A('POST', '/consumers/u/key-auth', new URLSearchParams('key=k'));
  assert.equal(key.status, 201);
  await applied(versionOf(key));
});
after(async () => { await g?.kill(); g?.cleanup(); await up?.close(); });

describe('prototype pollution (probe 4.1)', () => {
  it('refuses __proto__[apikey] with a 400 field error; key-auth still refuses and later writes still work', async () => {
    const r = await A('POST', '/consumers', new URLSearchParams([['username', 'p'], ['__proto__[apikey]', 'k']]));
    assert.deepEqual([r.status, r.body], [400, JSON.parse(`{
      "code": 2, "name": "schema violation", "message": "schema violation (__proto__: '__proto__' is a reserved name)",
      "fields": { "__proto__": "'__proto__' is a reserved name" }
    }`)]);
    assert.equal((await fetch(`${g.proxy}/k/a`)).status, 401, 'no key: still refused');
    const echo = await fetch(`${g.proxy}/k/a?apikey=k`);
    assert.equal(echo.status, 200);
    const next = await A('POST', '/consumers', new URLSearchParams('username=after-pollution'));
    assert.equal(next.status, 201, 'later writes still work');
    assert.equal((await A('GET', '/consumers/p')).status, 404, 'nothing stored');
  });

  it('refuses constructor and prototype in form keys and JSON keys at any depth', async () => {
    for (const body of [
      new URLSearchParams([['username', 'p'], ['constructor[prototype][apikey]', 'k']]),
      '{"username":"p","__proto__":{"apikey":"k"}}',
      '{"username":"p","tags":["a"],"x":{"y":{"prototype":1}}}',
    ]) {
      const r = await A('POST', '/consumers', body, typeof body === 'string' ? json : {});
      assert.equal(r.status, 400, String(body));
      assert.equal(r.body.code, 2);
    }
    assert.equal((await fetch(`${g.proxy}/k/a`)).status, 401);
  });
});

describe('referenced entities (item 2, on PGlite)', () => {
  it("refuses to delete a service routes use with Kong's 400 code 4, changing nothing", async () => {
    const before = await configVersion();
    const r = await A('DELETE', '/services/svc');
    assert.deepEqual([r.status, r.body], [400, {
      code: 4, name: 'foreign key violation',
      message: "an existing 'routes' entity references this 'services' entity", fields: { '@referenced_by': 'routes' },
    }]);
    assert.equal((await A('GET', '/services/svc')).status, 200);
    assert.equal(await configVersion(), before);
  });

  it('cascades what Kong cascades: deleting a consumer takes its credentials', async () => {
    await A('POST', '/consumers', { username: 'gone' });
    const cred = await A('POST', '/consumers/gone/key-auth', { key: 'gone-key' });
    assert.equal(cred.status, 201);
    assert.equal((await A('DELETE', '/consumers/gone')).status, 204);
    assert.equal((await A('GET', `/key-auths/${cred.body.id}`)).status, 404);
  });

  it('answers a credential without its consumer with a field error, not a database 500', async () => {
    const r = await A('POST', '/key-auths', { key: 'orphan' });
    assert.deepEqual([r.status, r.body.fields], [400, { consumer: 'required field missing' }]);
  });
});

describe('path parameters (probe 4.10, review C12)', () => {
  it('answers malformed escapes and NUL with 400', async () => {
    for (const p of ['/services/%', '/services/%ZZ', '/services/%E0%A4%A', '/services/svc%00', '/consumers/%FF/key-auth', '/services/%25%']) {
      const r = await A('GET', p);
      assert.equal(r.status, 400, p);
      assert.equal(typeof r.body.message, 'string');
    }
  });

  it('decodes once: %2525 names the key "%25", not "%"', async () => {
    const created = await A('POST', '/consumers', { username: '%' });
    assert.equal(created.status, 201);
    // Published before the next test reads the version it must not change.
    await applied(Number(created.headers.get('x-portico-config-version')));
    assert.equal((await A('GET', '/consumers/%25')).body.username, '%');
    assert.equal((await A('GET', '/consumers/%2525')).status, 404);
  });
});

describe('NUL, CR and LF (probe 4.9, 4.11, 1.14)', () => {
  it('answers tags=%00 and a NUL custom_id filter with 400', async () => {
    const t = await A('GET', '/services?tags=%00');
    assert.deepEqual([t.status, t.body.code], [400, 11]);
    assert.equal((await A('GET', '/consumers?custom_id=%00')).status, 400);
  });

  it('refuses NUL, CR and LF in every string that reaches a header or a log line', async () => {
    const before = await configVersion();
    const cases: [string, string, unknown, string][] = [
      ['POST', '/consumers', { username: 'a\u0000b' }, 'username'],
      ['POST', '/consumers', { username: 'a\r\nX-Consumer-Username: admin' }, 'username'],
      ['POST', '/consumers', { custom_id: 'a\nb' }, 'custom_id'],
      ['POST', '/consumers', { username: 'ok', tags: ['a\u0000'] }, 'tags'],
      ['POST', '/consumers/u/basic-auth', { username: 'bob\r\n', password: 'pw' }, 'username'],
      ['POST', '/consumers/u/jwt', { key: 'iss\n' }, 'key'],
      ['POST', '/consumers/u/acls', { group: 'g\r' }, 'group'],
      ['POST', '/routes', { paths: ['/h'], headers: { 'x-a': ['v\r\nx: y'] } }, 'headers'],
      ['POST', '/services', { name: 'a\u0000', host: 'x.test' }, 'name'],
      ['POST', '/routes/rk/plugins', { name: 'rate-limiting', config: { minute: 1, error_message: 'x\r\ny' } }, 'config'],
    ];
    for (const [method, path, body, field] of cases) {
      const r = await A(method, path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.ok(r.body.fields && field in r.body.fields, JSON.stringify(r.body));
    }
    assert.equal(await configVersion(), before);
  });
});

describe('header and query rule names (probe 4.2, 4.8)', () => {
  it('refuses names that are not RFC 9110 tokens, and reserved names, with 400', async () => {
    for (const name of ['x y', 'x\r\ny', ':authority', 'ユーザー', '__proto__', 'constructor', 'prototype', '']) {
      const h = await A('POST', '/routes', { paths: ['/h'], headers: { [name]: ['1'] } });
      assert.equal(h.status, 400, `header ${JSON.stringify(name)}`);
      const q = await A('POST', '/routes', { paths: ['/h'], query: { [name]: ['1'] } });
      assert.equal(q.status, 400, `query ${JSON.stringify(name)}`);
    }
    const ok = await A('POST', '/schemas/routes/validate', { paths: ['/h'], headers: { 'X-Tenant_1': ['a'] }, query: { 'page.size': ['1'] } });
    assert.equal(ok.status, 200);
  });
});

describe('regexes (probe 4.3)', () => {
  it('refuses what RE2 cannot run in linear time, with its reason', async () => {
    const back = await A('POST', '/routes', { paths: ['~/(a)\\1'] });
    assert.equal(back.status, 400);
    assert.match(back.body.fields.paths[0], /^invalid regex: '\/\(a\)\\1' \(RE2 returned: .+\)$/);
    const look = await A('POST', '/routes', { paths: ['~/(?<=x)a'] });
    assert.equal(look.status, 400);
    const header = await A('POST', '/routes', { headers: { 'x-a': ['~*(?=x)'] } });
    assert.match(header.body.fields.headers['x-a'], /^invalid regex: /);
  });

  it('accepts ~/(a+)+$ and the attack path is answered (linear-time matching)', async () => {
    const r = await A('POST', '/services/svc/routes', { name: 'redos', paths: ['~/(a+)+$'] });
    assert.equal(r.status, 201);
    await applied(versionOf(r));
    const res = await fetch(`${g.proxy}/${'a'.repeat(40)}!`);
    assert.equal(res.status, 404);
    assert.equal((await fetch(`${g.proxy}/${'a'.repeat(40)}`)).status, 200);
    await A('DELETE', '/routes/redos');
  });
});

describe('jwt public keys (item 4)', () => {
  const pem = (type: 'rsa' | 'ec' | 'ed25519', namedCurve?: string) =>
    (generateKeyPairSync as any)(type, { modulusLength: 2048, namedCurve, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  it("refuses a key OpenSSL cannot read, a private key, or one of the wrong type or curve with Kong's 'invalid key'", async () => {
    const rsa = pem('rsa'); const p256 = pem('ec', 'prime256v1'); const p384 = pem('ec', 'secp384r1'); const ed = pem('ed25519');
    const bad: [string, string][] = [
      ['RS256', 'garbage'], ['RS256', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'], ['RS256', rsa.privateKey],
      ['RS256', p256.publicKey], ['ES256', p384.publicKey], ['ES384', p256.publicKey], ['EdDSA', rsa.publicKey], ['PS256', ed.publicKey],
    ];
    for (const [algorithm, key] of bad) {
      const r = await A('POST', '/consumers/u/jwt', { algorithm, rsa_public_key: key });
      assert.equal(r.status, 400, `${algorithm} ${key.slice(0, 30)}`);
      assert.match(r.body.fields.rsa_public_key, /^invalid key/);
    }
    const good: [string, string][] = [['RS256', rsa.publicKey], ['PS512', rsa.publicKey], ['ES256', p256.publicKey], ['ES384', p384.publicKey], ['EdDSA', ed.publicKey]];
    for (const [algorithm, key] of good) {
      const r = await A('POST', '/consumers/u/jwt', { algorithm, rsa_public_key: key });
      assert.equal(r.status, 201, `${algorithm}: ${JSON.stringify(r.body)}`);
      await A('DELETE', `/jwts/${r.body.id}`);
    }
  });
});

describe('sizes (probe 4.4–4.6, item 16)', () => {
  it('answers a body over 10 MB with 413 from Content-Length, and a streamed one too', async () => {
    const big = JSON.stringify({ name: 'big', host: 'x.test', tags: ['a'.repeat(11 * 1024 * 1024)] });
    const r = await A('POST', '/services', big, json);
    assert.deepEqual([r.status, r.body], [413, { message: 'Payload too large' }]);
    const chunk = new Uint8Array(1024 * 1024).fill(0x61);
    let sent = 0;
    const stream = new ReadableStream({
      pull(ctrl) { if (sent++ < 12) ctrl.enqueue(chunk); else ctrl.close(); },
    });
    const s = await fetch(`${g.admin}/services`, { method: 'POST', body: stream, headers: json, duplex: 'half' } as RequestInit);
    assert.equal(s.status, 413);
    assert.equal((await A('POST', '/consumers', { username: 'after-413' })).status, 201);
  });

  it('bounds tags, strings and nesting with 400s', async () => {
    assert.equal((await A('POST', '/services', { host: 'x.test', tags: ['a'.repeat(129)] })).status, 400);
    assert.equal((await A('POST', '/services', { host: 'x.test', tags: Array.from({ length: 65 }, (_, i) => `t${i}`) })).status, 400);
    assert.equal((await A('POST', '/consumers', { username: 'u'.repeat(5000) })).status, 400);
    const deepKey = await A('POST', '/services', `name=f&url=http://127.0.0.1:1&tags${'[x]'.repeat(5000)}=1`, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.deepEqual([deepKey.status, deepKey.body.code], [400, 2]);
    const deepJson = '{"name":"d","paths":["/d"],"sources":[' + '{"a":'.repeat(3000) + '1' + '}'.repeat(3000) + ']}';
    assert.deepEqual([(await A('POST', '/routes', deepJson, json)).status], [400]);
  });

  it('answers a plugin name that is not a string (an object, an array of objects, a prototype key) with a 400, not a 500', async () => {
    for (const name of [{}, [{}], 'constructor', '__proto__', 'toString']) {
      const r = await A('POST', '/plugins', { name });
      assert.equal(r.status, 400, `${JSON.stringify(name)}: ${JSON.stringify(r.body)}`);
    }
  });

  it("gives route sources and destinations Kong's schema: {ip, port}", async () => {
    const ok = await A('POST', '/schemas/routes/validate', { protocols: ['tcp'], sources: [{ ip: '10.0.0.0/8' }, { port: 80 }], destinations: [{ ip: '::1', port: 443 }] });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    for (const sources of [[{ a: 1 }], [{}], [{ ip: 'nope' }], [{ ip: '10.0.0.0/33' }], [{ port: 70000 }], ['x']]) {
      const r = await A('POST', '/schemas/routes/validate', { protocols: ['tcp'], sources });
      assert.equal(r.status, 400, JSON.stringify(sources));
    }
  });
});

/** A value of the field's declared type, as a client reading only the schema would choose it. */
function sample(f: any): unknown {
  if (f.default !== undefined && f.default !== null) return f.default;
  if (f.example !== undefined) return f.example;
  if (f.one_of) return f.one_of[0];
  switch (f.type) {
    case 'string': return (f.starts_with ?? '') + 'example';
    case 'integer': case 'number': return f.between ? f.between[0] : f.gt !== undefined ? f.gt + 1 : 1;
    case 'boolean': return true;
    case 'array': case 'set': return [sample(f.elements)];
    case 'map': return {};
    case 'record': return fill(f.fields, f.entity_checks ?? []);
    default: throw new Error(`no sample for ${JSON.stringify(f)}`);
  }
}

/** Required fields filled, plus the first field of every at-least-one-of check (Kong's `config.x` names). */
function fill(fields: Record<string, any>[], checks: any[], prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const byName = new Map(fields.map((f) => Object.entries(f)[0]));
  const want = new Set<string>();
  for (const [name, f] of byName) if (f.required && !f.auto && f.type !== 'foreign' && f.default === undefined) want.add(name);
  for (const c of checks) {
    const list: string[] | undefined = c.at_least_one_of ?? c.conditional_at_least_one_of?.then_at_least_one_of;
    if (list) want.add(list[0].slice(prefix.length));
  }
  for (const name of want) out[name] = sample(byName.get(name));
  return out;
}

describe('schemas describe what POST accepts (item 5)', () => {
  it('lists key-auth key and ttl as write-only input, and no stored hash', async () => {
    const s = await A('GET', '/schemas/keyauth_credentials');
    const f = Object.fromEntries(s.body.fields.map((x: any) => Object.entries(x)[0]));
    assert.deepEqual([f.key.type, f.key.write_only, f.key.encrypted, f.key.required], ['string', true, true, false]);
    assert.deepEqual([f.ttl.type, f.ttl.required], ['integer', false]);
    assert.equal(f.key_hash, undefined);
    assert.equal(f.key_prefix, undefined);
    const fromForm = await A('POST', '/consumers/u/key-auth', new URLSearchParams('key=form-ttl&ttl=60'));
    assert.equal(fromForm.status, 201, 'a form ttl is coerced as the schema says: an integer');
    await A('DELETE', `/key-auths/${fromForm.body.id}`);
    assert.deepEqual([f.id.auto, f.id.required, f.created_at.auto], [true, false, true]);
    assert.deepEqual([f.consumer.type, f.consumer.reference, f.consumer.required], ['foreign', 'consumers', true]);
    const b = await A('GET', '/schemas/basicauth_credentials');
    const password = b.body.fields.find((x: any) => x.password).password;
    assert.deepEqual([password.required, password.encrypted], [true, true]);
  });

  const created: string[] = [];
  /** Create one entity of `entity` from its schema alone; returns its id. */
  async function createFromSchema(entity: string, endpoints: string[]): Promise<string> {
    const def = ENTITIES.find((d) => d.name === entity)!;
    const schema = await A('GET', `/schemas/${entity}`);
    assert.equal(schema.status, 200, entity);
    const fields: Record<string, any>[] = schema.body.fields;
    const body = fill(fields, schema.body.entity_checks);
    let path = `/${collectionPath(def)}`;
    for (const f of fields) {
      const [name, spec] = Object.entries(f)[0] as [string, any];
      if (spec.type !== 'foreign' || !spec.required) continue;
      const parent = await createFromSchema(spec.reference, endpoints);
      if (endpoints.includes(path)) body[name] = { id: parent };
      else path = `/${spec.reference}/${parent}/${collectionPath(def)}`;
    }
    if (entity === 'plugins') {
      // A plugin's config comes from its own schema.
      const p = await A('GET', `/schemas/plugins/${body.name}`);
      const config = p.body.fields.find((x: any) => x.config).config;
      body.config = fill(config.fields, p.body.entity_checks, 'config.');
    }
    const r = await A('POST', path, body);
    assert.equal(r.status, 201, `${entity} from ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    created.push(`/${collectionPath(def)}/${r.body.id}`);
    return r.body.id;
  }
  async function cleanup(): Promise<void> {
    for (const path of created.reverse()) {
      const r = await A('DELETE', path);
      // Targets live under their upstream only, and go with it.
      assert.ok([204, 404].includes(r.status), `${path}: ${r.status}`);
    }
    created.length = 0;
  }

  it('creates an entity of every kind from GET /schemas/{entity} alone', async () => {
    const endpoints: string[] = (await A('GET', '/endpoints')).body.data;
    for (const def of ENTITIES) {
      await createFromSchema(def.name, endpoints);
      await cleanup();
    }
  });

  it('creates every plugin from GET /schemas/plugins/{name} alone', async () => {
    const names: string[] = (await A('GET', '/plugins/enabled')).body.enabled_plugins;
    assert.ok(names.length >= 6);
    // The schemas' example ids (mtls-auth's ca_certificates) must name a stored entity, as on Kong.
    assert.equal((await A('POST', '/ca_certificates', { id: EXAMPLE_UUID, cert: makeCa().cert })).status, 201);
    // And a service named as the sample names one (the aggregator's legs).
    assert.equal((await A('POST', '/services', { name: 'example', host: 'example.test' })).status, 201);
    for (const name of names) {
      const p = await A('GET', `/schemas/plugins/${name}`);
      const config = p.body.fields.find((x: any) => x.config).config;
      const body = { name, config: fill(config.fields, p.body.entity_checks, 'config.') };
      const r = await A('POST', '/plugins', body);
      assert.equal(r.status, 201, `${name} from ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      await A('DELETE', `/plugins/${r.body.id}`);
    }
    assert.equal((await A('DELETE', `/ca_certificates/${EXAMPLE_UUID}`)).status, 204);
    assert.equal((await A('DELETE', '/services/example')).status, 204);
  });
});

describe('admin fuzz against a running node', () => {
  it('hostile writes get a 4xx or succeed, never a 500, and rejected writes change no config version', async () => {
    assert.equal((await A('POST', '/services', { name: 'fz', host: 'fz.test' })).status, 201);
    const fixture = await A('POST', '/consumers', { username: 'fzc' });
    assert.equal(fixture.status, 201);
    const start = versionOf(fixture);
    let accepted = 0;
    const key = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'name', 'username', 'tags', 'paths', 'headers', 'config', 'host', 'url', 'sources'), fc.string({ maxLength: 12 }));
    const leaf = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('a\u0000b', 'a\r\nb', '~/(a+)+$', '~/(a)\\1', 'x'.repeat(5000), 'ユーザー', '%00'), fc.integer(), fc.boolean(), fc.constant(null));
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, leaf, tie('arr'), tie('obj')),
      arr: fc.array(tie('v'), { maxLength: 3 }),
      obj: fc.dictionary(key, tie('v'), { maxKeys: 4 }),
    })).v;
    const body = fc.oneof(
      fc.dictionary(key, value, { maxKeys: 5 }).map((o) => ({ text: JSON.stringify(o), ctype: 'application/json' })),
      fc.array(fc.tuple(fc.oneof(key, fc.constantFrom('__proto__[x]', 'tags[]', 'config.minute', 'headers[x][]', 'a[b][c][d]')), fc.string({ maxLength: 10 })), { maxLength: 6 })
        .map((pairs) => ({ text: new URLSearchParams(pairs).toString(), ctype: 'application/x-www-form-urlencoded' })),
    );
    const target = fc.constantFrom(['POST', '/services'], ['POST', '/routes'], ['POST', '/consumers'], ['POST', '/plugins'], ['POST', '/upstreams'],
      ['POST', '/consumers/fzc/key-auth'], ['POST', '/consumers/fzc/jwt'], ['POST', '/consumers/fzc/basic-auth'], ['POST', '/consumers/fzc/acls'],
      ['PATCH', '/services/fz'], ['PATCH', '/consumers/fzc'], ['PUT', '/consumers/fuzzed'], ['POST', '/services/fz/routes']);
    await fc.assert(fc.asyncProperty(target, body, async ([method, path], b) => {
      const r = await A(method, path, b.text, { 'content-type': b.ctype });
      assert.ok(r.status < 500, `${method} ${path} ${b.text} → ${r.status} ${JSON.stringify(r.body)}`);
      if (r.status >= 300) return;
      accepted++;
      // Remove what was created, so later cases start from the same fixtures (one more version).
      if (method === 'POST' && r.body?.id && (await A('DELETE', `${path}/${r.body.id}`)).status === 204) accepted++;
    }), { numRuns: FUZZ_RUNS });
    // Every accepted write bumped the version once (and its cleanup once more); rejected ones none.
    await waitFor('snapshot of the last write', async () => (await configVersion()) >= start + accepted);
    assert.equal(await configVersion(), start + accepted);
    assert.equal((await fetch(`${g.proxy}/k/a`)).status, 401, 'key-auth still refuses');
    assert.equal((await fetch(`${g.proxy}/k/a?apikey=k`)).status, 200);
  });
});
