// Consumers, credentials and auth plugins through real CP and DP processes (issue 3): Kong's
// getting-started key-auth flow, key expiry and rotation, JWT (HS/RS/ES/PS/EdDSA) and hostile tokens,
// JWKS from an IdP the harness serves and rotates, basic-auth, ACL, scope precedence, admin errors.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { startStack, waitCached, type Stack } from '../harness/stack.ts';
import { TEST_SIGNING } from '../harness/gateway.ts';
import { openSnapshot, parsePublicKeys } from '@portico/shared';
import { wsRoundTrip, type Echo } from '../harness/upstream.ts';

let s: Stack;
const form = (q: string) => new URLSearchParams(q);

async function get(p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const r = await fetch(s.dps[0].proxy + p, { headers });
  const text = await r.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, body, headers: r.headers };
}

/** A tiny identity provider: a JWKS and an OIDC discovery document, swappable and stoppable. */
let jwks: { keys: JWK[] } = { keys: [] };
let idpHits = 0;
let idp: http.Server;
let idpUrl = '';

before(async () => {
  s = await startStack({ dps: 1 });
  idp = http.createServer((req, res) => {
    idpHits++;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: idpUrl, jwks_uri: `${idpUrl}/jwks` }));
    else res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', () => r()));
  idpUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
  await s.write('POST', '/services', form(`name=example_service&url=${s.upstream.url}`));
  await s.write('POST', '/services/example_service/routes', form('paths[]=/mock&name=example_route'));
});
after(async () => { idp?.close(); await s?.stop(); });

describe('key-auth', () => {
  it("runs Kong's getting-started key-auth flow", async () => {
    assert.equal((await s.write('POST', '/consumers/', form('username=luka'))).status, 201);
    const cred = await s.write('POST', '/consumers/luka/key-auth', form('key=top-secret-key'));
    assert.equal(cred.status, 201);
    assert.equal(cred.body.key, 'top-secret-key', 'the key is shown once, on create');
    const plugin = await s.write('POST', '/plugins', form('name=key-auth&config.key_names=apikey'));
    assert.equal(plugin.status, 201);
    assert.deepEqual(plugin.body.config.key_names, ['apikey']);
    const denied = await get('/mock/anything');
    assert.equal(denied.status, 401);
    assert.equal(denied.body.message, 'No API key found in request');
    assert.equal(denied.headers.get('www-authenticate'), 'Key');
    const ok = await get('/mock/anything', { apikey: 'top-secret-key' });
    assert.equal(ok.status, 200);
    const e = ok.body as Echo;
    assert.equal(e.headers['x-consumer-username'], 'luka');
    assert.equal(e.headers['x-consumer-id'], (await s.A('GET', '/consumers/luka')).body.id);
    assert.equal(e.headers['x-credential-identifier'], cred.body.id);
    const wrong = await get('/mock/anything', { apikey: 'nope' });
    assert.deepEqual([wrong.status, wrong.body.message], [401, 'Unauthorized']);
  });

  it('authenticates WebSocket upgrades too', async () => {
    const url = `${s.dps[0].proxy.replace('http', 'ws')}/mock/socket`;
    await assert.rejects(wsRoundTrip(url, 'hi'), /status 401/, 'no key, no socket');
    assert.equal(await wsRoundTrip(url, 'hi', { apikey: 'top-secret-key' }), 'echo:/socket:hi');
  });

  it('stores and distributes only the key hash', async () => {
    const list = await s.A('GET', '/consumers/luka/key-auth');
    assert.equal(list.body.data[0].key, undefined);
    assert.match(list.body.data[0].key_hash, /^[0-9a-f]{64}$/);
    assert.equal((await s.A('GET', '/key-auths/top-secret-key')).status, 200, 'lookup by key works through its hash');
    await waitCached(s.dps[0]);
    const cached = gunzipSync(await openSnapshot(readFileSync(path.join(s.dps[0].dataDir, 'snapshot.signed')), parsePublicKeys(TEST_SIGNING.publicKey))).toString();
    assert.ok(cached.includes(list.body.data[0].key_hash));
    assert.ok(!cached.includes('top-secret-key'), 'the DP never holds the plaintext key');
  });

  it('generates a key when none is given', async () => {
    const r = await s.write('POST', '/consumers/luka/key-auth', {});
    assert.match(r.body.key, /^[A-Za-z0-9]{32}$/);
    assert.equal((await get('/mock/x', { apikey: r.body.key })).status, 200);
  });

  it('refuses a spoofed identity, and clears X-Consumer-* a client sent', async () => {
    const r = await get('/mock/x', { apikey: 'top-secret-key', 'x-consumer-username': 'admin', 'x-anonymous-consumer': 'true' });
    assert.equal((r.body as Echo).headers['x-consumer-username'], 'luka');
    assert.equal((r.body as Echo).headers['x-anonymous-consumer'], undefined);
    const denied = await get('/mock/x', { 'x-consumer-id': 'spoof' });
    assert.equal(denied.status, 401, 'a spoofed header never reaches the upstream');
  });

  it('answers different keys in header and query as a duplicate; the same key twice is fine', async () => {
    const dup = await get('/mock/x?apikey=other', { apikey: 'top-secret-key' });
    assert.deepEqual([dup.status, dup.body.message], [401, 'Duplicate API key found']);
    assert.equal((await get('/mock/x?apikey=top-secret-key', { apikey: 'top-secret-key' })).status, 200);
  });

  it('expires keys with a ttl, and rotates with old and new keys both valid until the old expires', async () => {
    await s.write('POST', '/consumers', { username: 'rota' });
    const oldKey = await s.write('POST', '/consumers/rota/key-auth', { key: 'rota-old', ttl: 2 });
    assert.ok(oldKey.body.expires_at > Date.now() / 1000);
    await s.write('POST', '/consumers/rota/key-auth', { key: 'rota-new' });
    assert.equal((await get('/mock/x', { apikey: 'rota-old' })).status, 200);
    assert.equal((await get('/mock/x', { apikey: 'rota-new' })).status, 200);
    await new Promise((r) => setTimeout(r, 2_200));
    assert.equal((await get('/mock/x', { apikey: 'rota-old' })).status, 401, 'expired');
    assert.equal((await get('/mock/x', { apikey: 'rota-new' })).status, 200);
  });

  it('cascades a consumer delete to its credentials', async () => {
    await s.write('POST', '/consumers', { username: 'gone' });
    const cred = await s.write('POST', '/consumers/gone/key-auth', { key: 'gone-key' });
    assert.equal((await get('/mock/x', { apikey: 'gone-key' })).status, 200);
    await s.write('DELETE', '/consumers/gone');
    assert.equal((await s.A('GET', `/key-auths/${cred.body.id}`)).status, 404);
    assert.equal((await get('/mock/x', { apikey: 'gone-key' })).status, 401);
  });
});

describe('scope precedence and hide_credentials', () => {
  it('a route-level key-auth replaces the global one on that route only', async () => {
    await s.write('POST', '/services/example_service/routes', { name: 'own-keys', paths: ['/own'] });
    await s.write('POST', '/routes/own-keys/plugins', { name: 'key-auth', config: { key_names: ['x-route-key'], hide_credentials: true } });
    const r = await get('/own/x', { 'x-route-key': 'top-secret-key' });
    assert.equal(r.status, 200);
    assert.equal((r.body as Echo).headers['x-route-key'], undefined, 'hide_credentials removed the key');
    assert.equal((await get('/own/x', { apikey: 'top-secret-key' })).status, 401, 'the global key name does not apply here');
    assert.equal((await get('/mock/x', { 'x-route-key': 'top-secret-key' })).status, 401, 'nor the route one elsewhere');
  });

  it('a service-level config beats the global one; a route-level one beats the service one', async () => {
    await s.write('POST', '/services', { name: 'svc2', url: s.upstream.url });
    await s.write('POST', '/services/svc2/routes', { name: 'svc2-a', paths: ['/svc2a'] });
    await s.write('POST', '/services/svc2/routes', { name: 'svc2-b', paths: ['/svc2b'] });
    await s.write('POST', '/services/svc2/plugins', { name: 'key-auth', config: { key_names: ['svc-key'] } });
    await s.write('POST', '/routes/svc2-b/plugins', { name: 'key-auth', config: { key_names: ['rt-key'] } });
    assert.equal((await get('/svc2a', { 'svc-key': 'top-secret-key' })).status, 200);
    assert.equal((await get('/svc2a', { apikey: 'top-secret-key' })).status, 401);
    assert.equal((await get('/svc2b', { 'rt-key': 'top-secret-key' })).status, 200);
    assert.equal((await get('/svc2b', { 'svc-key': 'top-secret-key' })).status, 401);
  });

  it('reads a key from a form or JSON body and hides it from the upstream', async () => {
    await s.write('POST', '/services/example_service/routes', { name: 'body-key', paths: ['/bodykey'] });
    await s.write('POST', '/routes/body-key/plugins', { name: 'key-auth', config: { key_in_body: true, key_in_header: false, hide_credentials: true } });
    const post = (body: string, ctype: string) => fetch(`${s.dps[0].proxy}/bodykey`, { method: 'POST', body, headers: { 'content-type': ctype } });
    const f = await post('apikey=top-secret-key&item=3', 'application/x-www-form-urlencoded');
    assert.equal(f.status, 200);
    const fe = await f.json() as Echo;
    assert.equal(fe.body, 'item=3');
    assert.equal(Number(fe.headers['content-length']), 6);
    const j = await post('{"apikey":"top-secret-key","item":3}', 'application/json');
    assert.equal(j.status, 200);
    assert.deepEqual(JSON.parse((await j.json() as Echo).body), { item: 3 });
    assert.equal((await post('{"apikey":"wrong"}', 'application/json')).status, 401);
  });

  it('falls back to the anonymous consumer when configured', async () => {
    await s.write('POST', '/consumers', { username: 'anon' });
    await s.write('POST', '/services/example_service/routes', { name: 'open', paths: ['/open'] });
    await s.write('POST', '/routes/open/plugins', { name: 'key-auth', config: { anonymous: 'anon' } });
    const r = await get('/open/x');
    assert.equal(r.status, 200);
    assert.equal((r.body as Echo).headers['x-consumer-username'], 'anon');
    assert.equal((r.body as Echo).headers['x-anonymous-consumer'], 'true');
    const known = await get('/open/x', { apikey: 'top-secret-key' });
    assert.equal((known.body as Echo).headers['x-consumer-username'], 'luka');
    assert.equal((known.body as Echo).headers['x-anonymous-consumer'], undefined);
  });
});

describe('plugin admin API', () => {
  it('refuses a second instance on the same scope with Kong\'s 409', async () => {
    const r = await s.A('POST', '/plugins', { name: 'key-auth' });
    assert.equal(r.status, 409);
    assert.deepEqual(r.body.fields, { name: 'key-auth', service: null, route: null, consumer: null });
    assert.equal(r.body.message, 'UNIQUE violation detected on \'{consumer=null,name="key-auth",route=null,service=null}\'');
  });

  it('refuses unknown plugins, bad config, consumer-scoped auth plugins, and stores nothing', async () => {
    const before = (await s.A('GET', '/plugins')).body.data.length;
    const unknown = await s.A('POST', '/plugins', { name: 'nope' });
    assert.deepEqual([unknown.status, unknown.body.fields], [400, { name: "plugin 'nope' not enabled; add it to the 'plugins' configuration property" }]);
    const bad = await s.A('POST', '/routes/open/plugins', { name: 'jwt', config: { maximum_expiration: -1, colour: 1 } });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields, { config: { colour: 'unknown field', maximum_expiration: 'value should be between 0 and 31536000' } });
    const scoped = await s.A('POST', '/consumers/luka/plugins', { name: 'key-auth' });
    assert.deepEqual([scoped.status, scoped.body.message], [400, 'schema violation (consumer: value must be null)']);
    const aclBoth = await s.A('POST', '/routes/open/plugins', { name: 'acl', config: { allow: ['a'], deny: ['b'] } });
    assert.equal(aclBoth.status, 400);
    const noName = await s.A('POST', '/plugins', {});
    assert.equal(noName.body.message, 'schema violation (name: required field missing)');
    assert.equal((await s.A('GET', '/plugins')).body.data.length, before);
  });

  it('lists enabled plugins and serves their schemas', async () => {
    const enabled = await s.A('GET', '/plugins/enabled');
    assert.deepEqual(enabled.body.enabled_plugins, ['acl', 'aggregator', 'basic-auth', 'canary', 'correlation-id', 'cors', 'file-log', 'http-log', 'ip-restriction', 'json-transform', 'jwt', 'key-auth', 'mtls-auth', 'opentelemetry', 'prometheus', 'proxy-cache', 'rate-limiting', 'request-size-limiting', 'request-termination', 'request-transformer', 'request-transformer-advanced', 'request-validator', 'response-transformer', 'response-transformer-advanced']);
    const schema = await s.A('GET', '/schemas/plugins/key-auth');
    const config = schema.body.fields.find((f: any) => f.config).config;
    const keyNames = config.fields.find((f: any) => f.key_names).key_names;
    assert.deepEqual(keyNames.default, ['apikey']);
    assert.deepEqual((await s.A('GET', '/schemas/plugins/nope')).body, { message: "No plugin named 'nope'" });
  });

  it('PATCH merges config key by key', async () => {
    const p = (await s.A('GET', '/routes/open/plugins')).body.data[0];
    const r = await s.A('PATCH', `/plugins/${p.id}`, form('config.hide_credentials=true'));
    assert.equal(r.status, 200);
    assert.deepEqual([r.body.config.hide_credentials, r.body.config.anonymous], [true, 'anon']);
  });

  it('finds consumers by custom_id and refuses a consumer with neither name', async () => {
    await s.A('POST', '/consumers', { custom_id: 'ext-42' });
    const r = await s.A('GET', '/consumers?custom_id=ext-42');
    assert.equal(r.body.data.length, 1);
    assert.equal((await s.A('GET', '/consumers?custom_id=none')).body.data.length, 0);
    const bad = await s.A('POST', '/consumers', { tags: ['x'] });
    assert.deepEqual(bad.body.fields, { '@entity': ["at least one of these fields must be non-empty: 'custom_id', 'username'"] });
    const dup = await s.A('POST', '/consumers', { username: 'luka' });
    assert.equal(dup.status, 409);
  });
});

describe('jwt', () => {
  const now = () => Math.floor(Date.now() / 1000);
  let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
  before(async () => {
    await s.write('POST', '/consumers', { username: 'jane' });
    await s.write('POST', '/services/example_service/routes', { name: 'jwt-route', paths: ['/jwt'] });
    await s.write('POST', '/routes/jwt-route/plugins', { name: 'jwt', config: { claims_to_verify: ['exp', 'nbf'] } });
    // The global key-auth also runs here; with `anonymous` the two auth plugins are OR-ed.
    await s.write('POST', '/routes/jwt-route/plugins', { name: 'key-auth', config: { anonymous: 'anon' } });
    await s.write('POST', '/consumers/jane/jwt', { key: 'hs-issuer', secret: 'a-very-secret-hmac-key-of-enough-length' });
    rsa = await generateKeyPair('RS256', { extractable: true });
    await s.write('POST', '/consumers/jane/jwt', { key: 'rs-issuer', algorithm: 'RS256', rsa_public_key: await exportSPKI(rsa.publicKey) });
    for (const alg of ['ES256', 'PS256', 'EdDSA'] as const) {
      const kp = await generateKeyPair(alg, { extractable: true });
      keys[alg] = kp.privateKey;
      await s.write('POST', '/consumers/jane/jwt', { key: `${alg}-issuer`, algorithm: alg, rsa_public_key: await exportSPKI(kp.publicKey) });
    }
  });
  const keys: Record<string, CryptoKey> = {};
  const hs = (claims: Record<string, unknown>, secret = 'a-very-secret-hmac-key-of-enough-length', alg = 'HS256') =>
    new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(new TextEncoder().encode(secret));
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('accepts HS256, RS256, ES256, PS256 and EdDSA tokens and identifies the consumer', async () => {
    const tokens = [
      await hs({ iss: 'hs-issuer', exp: now() + 60 }),
      await new SignJWT({ iss: 'rs-issuer', exp: now() + 60 }).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey),
      ...await Promise.all((['ES256', 'PS256', 'EdDSA'] as const).map((alg) => new SignJWT({ iss: `${alg}-issuer`, exp: now() + 60 }).setProtectedHeader({ alg }).sign(keys[alg]))),
    ];
    for (const t of tokens) {
      const r = await get('/jwt/x', bearer(t));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal((r.body as Echo).headers['x-consumer-username'], 'jane');
    }
    const viaQuery = await get(`/jwt/x?jwt=${tokens[0]}`);
    assert.equal(viaQuery.status, 200);
  });

  it('rejects hostile and broken tokens without reaching the upstream', async () => {
    const hits = s.upstream.hits;
    const header = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const valid = await hs({ iss: 'hs-issuer', exp: now() + 60 });
    const [h, p, sig] = valid.split('.');
    const rsPem = (await s.A('GET', '/jwts/rs-issuer')).body.rsa_public_key as string;
    const confused = await hs({ iss: 'rs-issuer', exp: now() + 60 }, rsPem);
    // Raw JSON text signed by hand: what a library would refuse to write (probe 3.3).
    const raw = (headerJson: string, payloadJson: string) => {
      const input = `${Buffer.from(headerJson).toString('base64url')}.${Buffer.from(payloadJson).toString('base64url')}`;
      return `${input}.${createHmac('sha256', 'a-very-secret-hmac-key-of-enough-length').update(input).digest('base64url')}`;
    };
    const cases: [string, Record<string, string>, number, unknown][] = [
      ['no token', {}, 401, { message: 'Unauthorized' }],
      ['alg none', bearer(`${header({ alg: 'none' })}.${header({ iss: 'hs-issuer' })}.`), 401, { message: 'Bad token; invalid alg' }],
      ['HS256 signed with the RS public key', bearer(confused), 401, { message: 'Invalid algorithm' }],
      ['expired', bearer(await hs({ iss: 'hs-issuer', exp: now() - 10 })), 401, { exp: 'token expired' }],
      ['not yet valid', bearer(await hs({ iss: 'hs-issuer', exp: now() + 60, nbf: now() + 600 })), 401, { nbf: 'token not valid yet' }],
      ['tampered payload', bearer(`${h}.${header({ iss: 'hs-issuer', exp: now() + 60, admin: true })}.${sig}`), 401, { message: 'Invalid signature' }],
      ['wrong secret', bearer(await hs({ iss: 'hs-issuer', exp: now() + 60 }, 'another-secret-of-enough-length-1234')), 401, { message: 'Invalid signature' }],
      ['garbage', bearer('garbage'), 401, { message: 'Bad token; invalid JSON' }],
      ['8 KB token', bearer(`${h}.${'A'.repeat(8192)}.${sig}`), 401, { message: 'Bad token; invalid JSON' }],
      ['unknown issuer', bearer(await hs({ iss: 'who', exp: now() + 60 })), 401, { message: "No credentials found for given 'iss'" }],
      ['no iss', bearer(await hs({ exp: now() + 60 })), 401, { message: "No mandatory 'iss' in claims" }],
      ['exp not a number', bearer(await hs({ iss: 'hs-issuer', exp: 'soon' })), 401, { exp: 'must be a number' }],
      ['exp 1e309 (Infinity)', bearer(raw('{"alg":"HS256"}', '{"iss":"hs-issuer","exp":1e309}')), 401, { exp: 'must be a number' }],
      ['crit names an extension', bearer(raw('{"alg":"HS256","crit":["exp"]}', `{"iss":"hs-issuer","exp":${now() + 60}}`)), 401, { message: 'Bad token; unsupported critical header' }],
      ['two different tokens', { ...bearer(valid), cookie: 'x=1' }, 200, null],
    ];
    for (const [name, headers, status, body] of cases) {
      const r = await get('/jwt/x', headers);
      assert.equal(r.status, status, name);
      if (body) assert.deepEqual(r.body, body, name);
      if (status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/, name);
    }
    const multi = await get(`/jwt/x?jwt=${await hs({ iss: 'hs-issuer', exp: now() + 61 })}`, bearer(valid));
    assert.deepEqual([multi.status, multi.body], [401, { message: 'Multiple tokens provided' }]);
    assert.equal(s.upstream.hits, hits + 1, 'only the valid request reached the upstream');
  });
});

describe('jwt options', () => {
  const now = () => Math.floor(Date.now() / 1000);
  before(async () => {
    await s.write('POST', '/consumers', { username: 'carl', custom_id: 'crm-42' });
    const secret = Buffer.from('base64-encoded-secret-of-enough-len').toString('base64');
    await s.write('POST', '/consumers/carl/jwt', { key: 'b64-issuer', secret });
    await s.write('POST', '/services/example_service/routes', { name: 'jwt-opts', paths: ['/jwtopts'] });
    await s.write('POST', '/routes/jwt-opts/plugins', { name: 'key-auth', config: { anonymous: 'anon' } });
    await s.write('POST', '/routes/jwt-opts/plugins', {
      name: 'jwt', config: { secret_is_base64: true, cookie_names: ['session'], claims_to_verify: ['exp'], maximum_expiration: 600, required_claims: { tier: ['gold', 'platinum'] } },
    });
  });
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.from('base64-encoded-secret-of-enough-len'));

  it('verifies with a base64 secret, reads the token from a cookie, and sets X-Consumer-Custom-ID', async () => {
    const t = await sign({ iss: 'b64-issuer', exp: now() + 60, tier: 'gold' });
    const r = await get('/jwtopts/x', { cookie: `other=1; session=${t}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as Echo).headers['x-consumer-custom-id'], 'crm-42');
    assert.equal((r.body as Echo).headers['x-credential-identifier'], 'b64-issuer');
  });

  it('answers 401, not 500, to a cookie with a malformed %-escape (probe 3.10)', async () => {
    const r = await get('/jwtopts/x', { cookie: 'session=%E0%A4%A' });
    assert.equal(r.status, 401);
  });

  it('refuses tokens living longer than maximum_expiration, and claims outside required_claims with 403', async () => {
    const long = await get('/jwtopts/x', { authorization: `Bearer ${await sign({ iss: 'b64-issuer', exp: now() + 3600, tier: 'gold' })}` });
    assert.deepEqual([long.status, long.body], [401, { exp: 'exceeds maximum allowed expiration' }]);
    const silver = await get('/jwtopts/x', { authorization: `Bearer ${await sign({ iss: 'b64-issuer', exp: now() + 60, tier: 'silver' })}` });
    assert.deepEqual([silver.status, silver.body], [403, { message: "claim 'tier' does not allow access" }]);
  });

  it('refuses maximum_expiration without exp in claims_to_verify', async () => {
    const r = await s.A('POST', '/routes/jwt-opts/plugins', { name: 'jwt', config: { maximum_expiration: 60 } });
    assert.equal(r.status, 400);
  });
});

describe('jwt with an identity provider (JWKS / OIDC)', () => {
  let k1: { publicKey: CryptoKey; privateKey: CryptoKey };
  let k2: { publicKey: CryptoKey; privateKey: CryptoKey };
  const now = () => Math.floor(Date.now() / 1000);
  const token = (key: CryptoKey, kid: string, claims: Record<string, unknown>) =>
    new SignJWT({ iss: idpUrl, aud: 'orders-api', exp: now() + 60, ...claims }).setProtectedHeader({ alg: 'RS256', kid }).sign(key);
  before(async () => {
    k1 = await generateKeyPair('RS256', { extractable: true });
    k2 = await generateKeyPair('RS256', { extractable: true });
    jwks = { keys: [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
    await s.write('POST', '/services/example_service/routes', { name: 'idp', paths: ['/idp'] });
    await s.write('POST', '/routes/idp/plugins', { name: 'key-auth', config: { anonymous: 'anon' } });
    await s.write('POST', '/routes/idp/plugins', {
      name: 'jwt', config: {
        issuer: idpUrl, audience: ['orders-api'], claims_to_verify: ['exp'], required_scopes: ['orders:read'],
        claims_to_headers: { sub: 'X-User-Id', role: 'X-User-Role' }, hide_credentials: true, jwks_refresh_cooldown: 1,
      },
    });
  });

  it('verifies IdP tokens, maps claims to headers and drops the token', async () => {
    const r = await get('/idp/orders', { authorization: `Bearer ${await token(k1.privateKey, 'k1', { sub: 'user-7', role: 'admin', scope: 'orders:read profile' })}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const e = r.body as Echo;
    assert.equal(e.headers['x-user-id'], 'user-7');
    assert.equal(e.headers['x-user-role'], 'admin');
    assert.equal(e.headers.authorization, undefined, 'the upstream sees identity, never the token');
  });

  it('answers missing scopes with 403 and wrong audience or issuer with 401', async () => {
    const noScope = await get('/idp/x', { authorization: `Bearer ${await token(k1.privateKey, 'k1', { sub: 'u', scope: 'profile' })}` });
    assert.deepEqual([noScope.status, noScope.body], [403, { message: "missing required scope 'orders:read'" }]);
    const aud = await get('/idp/x', { authorization: `Bearer ${await token(k1.privateKey, 'k1', { aud: 'other', scope: 'orders:read' })}` });
    assert.equal(aud.status, 401);
    const iss = await get('/idp/x', { authorization: `Bearer ${await token(k1.privateKey, 'k1', { iss: 'https://evil.test', scope: 'orders:read' })}` });
    assert.equal(iss.status, 401);
    const forged = await get('/idp/x', { authorization: `Bearer ${await token(k2.privateKey, 'k1', { scope: 'orders:read' })}` });
    assert.deepEqual([forged.status, forged.body], [401, { message: 'Invalid signature' }]);
  });

  it('picks up a rotated key on a kid miss, rate-limited, and keeps working while the IdP is down', async () => {
    jwks = { keys: [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256' }, { ...(await exportJWK(k2.publicKey)), kid: 'k2', alg: 'RS256' }] };
    await new Promise((r) => setTimeout(r, 1_100));
    const t2 = await token(k2.privateKey, 'k2', { scope: 'orders:read' });
    assert.equal((await get('/idp/x', { authorization: `Bearer ${t2}` })).status, 200, 'new kid fetched');
    const hitsBefore = idpHits;
    const unknownKid = await token(k2.privateKey, 'k9', { scope: 'orders:read' });
    for (let i = 0; i < 5; i++) assert.equal((await get('/idp/x', { authorization: `Bearer ${unknownKid}` })).status, 401);
    assert.ok(idpHits - hitsBefore <= 1, `unknown kids refetch at most once per cooldown (${idpHits - hitsBefore} fetches)`);
    idp.close();
    idp.closeAllConnections();
    assert.equal((await get('/idp/x', { authorization: `Bearer ${await token(k1.privateKey, 'k1', { scope: 'orders:read' })}` })).status, 200, 'cached keys while the IdP is down');
  });
});

describe('basic-auth and acl', () => {
  before(async () => {
    await s.write('POST', '/consumers', { username: 'bob' });
    await s.write('POST', '/consumers/bob/basic-auth', { username: 'bob', password: 's3cret pass' });
    await s.write('POST', '/consumers/bob/acls', { group: 'gold' });
    await s.write('POST', '/consumers/luka/acls', { group: 'silver' });
    await s.write('POST', '/services/example_service/routes', { name: 'basic', paths: ['/basic'] });
    await s.write('POST', '/routes/basic/plugins', { name: 'basic-auth' });
    await s.write('POST', '/routes/basic/plugins', { name: 'key-auth', config: { anonymous: 'anon' } });
    await s.write('POST', '/routes/basic/plugins', { name: 'acl', config: { allow: ['gold'] } });
    await s.write('POST', '/services/example_service/routes', { name: 'gold', paths: ['/gold'] });
    await s.write('POST', '/routes/gold/plugins', { name: 'acl', config: { allow: ['gold'] } });
  });
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });

  it('finds, upserts and deletes ACL groups by name under their consumer only', async () => {
    assert.equal((await s.A('GET', '/consumers/bob/acls/gold')).status, 200);
    assert.equal((await s.A('GET', '/consumers/luka/acls/gold')).status, 404, 'another consumer\'s group is not found');
    assert.equal((await s.A('GET', '/acls/gold')).status, 404, 'top level takes ids: group names repeat across consumers');
    const put = await s.A('PUT', '/consumers/luka/acls/bronze', {});
    assert.deepEqual([put.status, put.body.group], [200, 'bronze']);
    assert.equal((await s.A('DELETE', '/consumers/luka/acls/bronze')).status, 204);
    const dup = await s.A('POST', '/consumers/bob/acls', { group: 'gold' });
    assert.equal(dup.status, 409);
  });

  it('stores the password as a scrypt hash', async () => {
    const r = await s.A('GET', '/basic-auths/bob');
    assert.match(r.body.password, /^\$scrypt\$/);
    assert.ok(!JSON.stringify(r.body).includes('s3cret'));
  });

  it('authenticates, sets consumer and group headers, and refuses bad passwords', async () => {
    const ok = await get('/basic/x', basic('bob', 's3cret pass'));
    assert.equal(ok.status, 200);
    assert.equal((ok.body as Echo).headers['x-consumer-username'], 'bob');
    assert.equal((ok.body as Echo).headers['x-credential-identifier'], 'bob');
    assert.equal((ok.body as Echo).headers['x-consumer-groups'], 'gold');
    assert.equal((await get('/basic/x', basic('bob', 's3cret pass'))).status, 200, 'remembered check');
    const bad = await get('/basic/x', basic('bob', 'wrong'));
    assert.deepEqual([bad.status, bad.body.message, bad.headers.get('www-authenticate')], [401, 'Unauthorized', 'Basic realm="service"']);
    assert.equal((await get('/basic/x')).status, 401);
  });

  it('ACL: 403 for a consumer outside the group, 401 without authentication', async () => {
    const silver = await get('/gold/x', { apikey: 'top-secret-key' });
    assert.deepEqual([silver.status, silver.body.message], [403, 'You cannot consume this service']);
    await s.write('POST', '/consumers/bob/key-auth', { key: 'bob-key' });
    assert.equal((await get('/gold/x', { apikey: 'bob-key' })).status, 200);
    await s.write('POST', '/services/example_service/routes', { name: 'acl-only', paths: ['/aclonly'] });
    await s.write('POST', '/routes/acl-only/plugins', { name: 'key-auth', config: { anonymous: 'anon' } });
    await s.write('POST', '/routes/acl-only/plugins', { name: 'acl', config: { deny: ['silver'] } });
    assert.equal((await get('/aclonly', { apikey: 'top-secret-key' })).status, 403, 'deny list');
    assert.equal((await get('/aclonly', { apikey: 'bob-key' })).status, 200);
  });
});
