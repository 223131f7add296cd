// Kong's TLS entities through a real CP and DP: certificates (with the `snis` shorthand), snis and
// ca_certificates; what is refused on write; `?expiring_in=`; private keys redacted for viewers,
// carried to the DP and cached there owner-only, never logged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { admin, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startNats, startPostgres, waitFor, type NatsHandle, type PgHandle } from '../harness/procs.ts';
import { dpVersion, waitCached } from '../harness/stack.ts';
import { makeCa, makeCert, type Pem } from '../harness/certs.ts';

const ROOT_TOKEN = 'bootstrap-token-tls-0123456789';
let pg: PgHandle; let nats: NatsHandle; let cp: GatewayProcess; let dp: GatewayProcess;
const A = (method: string, p: string, body?: unknown, token = ROOT_TOKEN) => admin(cp.admin, method, p, body, { 'Kong-Admin-Token': token });
const keyBody = (pem: Pem) => pem.key.split('\n').slice(1, 3).join('');

let ca: Pem; let rsa: Pem; let ec: Pem; let soon: Pem;
before(async () => {
  ca = makeCa();
  rsa = makeCert({ cn: 'shop.test', ca, sans: ['shop.test', '*.shop.test'], days: 90 });
  ec = makeCert({ cn: 'shop.test', ca, keyType: 'ec', days: 90 });
  soon = makeCert({ cn: 'soon.test', ca, keyType: 'ec', days: 10 });
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: nats.url, PORTICO_ADMIN_TOKEN: ROOT_TOKEN } });
  dp = await startGateway('data-plane', { env: { NATS_URL: nats.url } });
});
after(async () => { for (const g of [dp, cp]) { await g?.kill(); g?.cleanup(); } await Promise.all([pg?.stop(), nats?.stop()]); });

const count = async (p: string) => (await A('GET', p)).body.data.length as number;

describe('certificates', () => {
  let id: string;
  it('creates a certificate with an RSA and an ECDSA pair and its SNIs from the shorthand, sorted', async () => {
    const r = await A('POST', '/certificates', { ...rsa, cert_alt: ec.cert, key_alt: ec.key, snis: ['shop.test', '*.shop.test'], tags: ['edge'] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    id = r.body.id;
    assert.deepEqual(r.body.snis, ['*.shop.test', 'shop.test']);
    const list = await A('GET', '/certificates');
    assert.deepEqual(Object.keys(list.body).sort(), ['data', 'next']);
    assert.equal(list.body.next, null);
    assert.deepEqual(list.body.data[0].snis, ['*.shop.test', 'shop.test']);
    const snis = await A('GET', `/certificates/${id}/snis`);
    assert.deepEqual(snis.body.data.map((s: { name: string }) => s.name).sort(), ['*.shop.test', 'shop.test']);
    assert.equal((await A('GET', '/snis/shop.test')).body.certificate.id, id);
  });

  it('replaces the SNIs on PATCH with `snis`, keeps them on PATCH without, and refuses a name another certificate has', async () => {
    let r = await A('PATCH', `/certificates/${id}`, { snis: ['shop.test', 'api.shop.test'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.snis, ['api.shop.test', 'shop.test']);
    r = await A('PATCH', `/certificates/${id}`, { tags: ['edge', 'v2'] });
    assert.deepEqual(r.body.snis, ['api.shop.test', 'shop.test']);
    const other = await A('POST', '/certificates', { ...soon, snis: ['shop.test'] });
    assert.equal(other.status, 400);
    assert.equal(other.body.fields.snis, `shop.test already associated with existing certificate '${id}'`);
    assert.equal(await count('/certificates'), 1, 'the refused certificate was not stored');
  });

  it('refuses a key that does not match, an expired certificate, bad PEM and half an alternative pair, changing nothing', async () => {
    const cases: [Record<string, unknown>, (b: any) => void][] = [
      [{ cert: rsa.cert, key: ec.key }, (b) => assert.deepEqual(b.fields['@entity'], ['certificate does not match key'])],
      [makeCert({ cn: 'old.test', days: 0 }) as unknown as Record<string, unknown>, (b) => assert.equal(b.fields.cert, 'certificate expired, "Not After" time is in the past')],
      [{ cert: 'not a pem', key: rsa.key }, (b) => assert.match(b.fields.cert, /^invalid certificate/)],
      [{ cert: rsa.cert, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, (b) => assert.match(b.fields.key, /^invalid key/)],
      [{ ...rsa, cert_alt: ec.cert }, (b) => assert.deepEqual(b.fields['@entity'], ["all or none of these fields must be set: 'cert_alt', 'key_alt'"])],
      [{ ...rsa, cert_alt: rsa.cert, key_alt: rsa.key }, (b) => assert.match(b.fields['@entity'][0], /different type/)],
      [{ ...rsa, snis: ['a.test', 'a.test'] }, (b) => assert.equal(b.fields.snis, 'a.test is duplicated')],
    ];
    for (const [body, check] of cases) {
      const r = await A('POST', '/certificates', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 2);
      check(r.body);
    }
    assert.equal(await count('/certificates'), 1);
    assert.equal(await count('/snis'), 2);
  });

  it('lists the certificates expiring within a window with ?expiring_in=', async () => {
    const r = await A('POST', '/certificates', { ...soon, snis: ['soon.test'] });
    assert.equal(r.status, 201);
    const expiring = await A('GET', '/certificates?expiring_in=30d');
    assert.deepEqual(expiring.body.data.map((c: { id: string }) => c.id), [r.body.id]);
    assert.equal((await A('GET', '/certificates?expiring_in=100d')).body.data.length, 2);
    const bad = await A('GET', '/certificates?expiring_in=soon');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.code, 11);
  });

  it('deletes a certificate\'s SNIs with it', async () => {
    const r = await A('POST', '/certificates', { ...makeCert({ cn: 'gone.test', keyType: 'ec' }), snis: ['gone.test'] });
    assert.equal((await A('DELETE', `/certificates/${r.body.id}`)).status, 204);
    assert.equal((await A('GET', '/snis/gone.test')).status, 404);
  });
});

describe('snis', () => {
  it('takes exact names, *.parent, prefix.* and `*`; refuses malformed wildcards, IPs and ports', async () => {
    const cert = (await A('GET', '/certificates')).body.data[0].id;
    for (const name of ['exact.test', '*.wild.test', 'prefix.*', '*']) {
      const r = await A('POST', '/snis', { name, certificate: { id: cert } });
      assert.equal(r.status, 201, `${name}: ${JSON.stringify(r.body)}`);
    }
    const bad: [string, string][] = [
      ['a.*.test', 'wildcard must be leftmost or rightmost character'],
      ['*.*.test', 'only one wildcard must be specified'],
      ['*wild.test', 'wildcard must be a whole label: *.example.com or example.*'],
      ['10.0.0.1', 'must not be an IP'],
      ['[::1]', 'must not be an IP'],
      ['host.test:8443', 'must not have a port'],
      ['bad_name.test', 'invalid value: bad_name.test'],
    ];
    for (const [name, message] of bad) {
      const r = await A('POST', '/snis', { name, certificate: { id: cert } });
      assert.equal(r.status, 400, name);
      assert.equal(r.body.fields.name, message, name);
    }
    const dup = await A('POST', '/snis', { name: 'exact.test', certificate: { id: cert } });
    assert.equal(dup.status, 409);
    const orphan = await A('POST', '/snis', { name: 'orphan.test' });
    assert.equal(orphan.status, 400);
  });
});

describe('ca_certificates', () => {
  it('stores a CA with its sha256 digest, and refuses a leaf, two certificates, an expired one and a duplicate', async () => {
    const r = await A('POST', '/ca_certificates', { cert: ca.cert });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.cert_digest, /^[0-9a-f]{64}$/);
    assert.equal((await A('POST', '/ca_certificates', { cert: ca.cert })).status, 409);
    const leaf = await A('POST', '/ca_certificates', { cert: rsa.cert });
    assert.equal(leaf.status, 400);
    assert.match(leaf.body.fields['@entity'][0], /missing the "CA" basic constraint/);
    const two = await A('POST', '/ca_certificates', { cert: ca.cert + rsa.cert });
    assert.deepEqual(two.body.fields['@entity'], ['please submit only one certificate at a time']);
    const old = await A('POST', '/ca_certificates', { cert: makeCert({ cn: 'old ca', isCa: true, days: 0 }).cert });
    assert.equal(old.status, 400);
    assert.equal((await A('GET', '/ca_certificates')).body.data.length, 1);
  });
});

describe('private keys', () => {
  it('are redacted for a viewer', async () => {
    const viewer = await A('POST', '/admins', { username: 'tls-viewer', role: 'viewer' });
    assert.equal(viewer.status, 201);
    const list = await A('GET', '/certificates', undefined, viewer.body.token);
    assert.equal(list.status, 200);
    for (const c of list.body.data) {
      assert.equal(c.key, '[REDACTED]');
      assert.ok(c.key_alt === null || c.key_alt === '[REDACTED]');
      assert.match(c.cert, /BEGIN CERTIFICATE/);
    }
    assert.ok(!JSON.stringify(list.body).includes(keyBody(rsa)));
  });

  it('reach the data plane in the signed snapshot, cached owner-only, and appear in no log', async () => {
    const v = Number((await A('PATCH', `/certificates/${(await A('GET', '/snis/shop.test')).body.certificate.id}`, { tags: ['cached'] })).headers.get('x-portico-config-version'));
    await waitFor('DP applied', async () => (await dpVersion(dp)) >= v, 10_000, 20);
    await waitCached(dp, v);
    const cache = path.join(dp.dataDir, 'snapshot.signed');
    assert.equal(statSync(cache).mode & 0o777, 0o600);
    assert.ok(readFileSync(cache).length > 0);
    for (const g of [cp, dp]) assert.ok(!g.logs().includes(keyBody(rsa)) && !g.logs().includes(keyBody(ec)), `${g.role} log holds no key`);
  });
});

describe('references to certificates and CA certificates', () => {
  const missing = '6f1c1a9e-0000-4000-8000-00000000dead';
  it('are refused on write when they name nothing, naming the field and the id, changing nothing', async () => {
    const cases: [string, Record<string, unknown>, (fields: any) => unknown][] = [
      ['/services', { name: 'mtls-up', url: 'https://up.test', client_certificate: { id: missing } }, (f) => f.client_certificate.id],
      ['/services', { name: 'ca-up', url: 'https://up.test', ca_certificates: [missing] }, (f) => f.ca_certificates.id],
      ['/upstreams', { name: 'cert-upstream', client_certificate: { id: missing } }, (f) => f.client_certificate.id],
      ['/plugins', { name: 'mtls-auth', config: { ca_certificates: [missing] } }, (f) => f.config.ca_certificates.id],
    ];
    for (const [p, body, idAt] of cases) {
      const r = await A('POST', p, body);
      assert.equal(r.status, 400, `${p} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.code, 4);
      assert.equal(idAt(r.body.fields), missing);
      assert.match(r.body.message, new RegExp(`the foreign key '\\{id="${missing}"\\}' does not reference an existing '(ca_)?certificates' entity`));
    }
    for (const p of ['/services', '/upstreams', '/plugins']) assert.equal(await count(p), 0, p);
  });

  it('keep what they name from being deleted until they are gone', async () => {
    const cert = (await A('POST', '/certificates', makeCert({ cn: 'client.test', keyType: 'ec' }))).body.id;
    const ca1 = (await A('GET', '/ca_certificates')).body.data[0].id;
    const ca2 = (await A('POST', '/ca_certificates', { cert: makeCa().cert })).body.id;
    const svc = await A('POST', '/services', { name: 'mtls-up', url: 'https://up.test', client_certificate: { id: cert }, ca_certificates: [ca1] });
    assert.equal(svc.status, 201, JSON.stringify(svc.body));
    const plugin = await A('POST', '/plugins', { name: 'mtls-auth', service: { id: svc.body.id }, config: { ca_certificates: [ca2] } });
    assert.equal(plugin.status, 201, JSON.stringify(plugin.body));
    const patch = await A('PATCH', `/services/${svc.body.id}`, { ca_certificates: [ca1, missing] });
    assert.equal(patch.status, 400);
    assert.equal(patch.body.fields.ca_certificates.id, missing);

    let r = await A('DELETE', `/certificates/${cert}`);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.code, 4);
    assert.deepEqual(r.body.fields, { '@referenced_by': 'services' });
    assert.equal(r.body.message, "an existing 'services' entity references this 'certificates' entity");
    r = await A('DELETE', `/ca_certificates/${ca1}`);
    assert.equal(r.status, 400);
    assert.equal(r.body.message, `ca certificate ${ca1} is still referenced by services (id = ${svc.body.id})`);
    r = await A('DELETE', `/ca_certificates/${ca2}`);
    assert.equal(r.status, 400);
    assert.equal(r.body.message, `ca certificate ${ca2} is still referenced by plugins (id = ${plugin.body.id})`);
    for (const p of [`/certificates/${cert}`, `/ca_certificates/${ca1}`, `/ca_certificates/${ca2}`]) assert.equal((await A('GET', p)).status, 200, p);
    assert.deepEqual((await A('GET', `/services/${svc.body.id}`)).body.ca_certificates, [ca1]);

    assert.equal((await A('DELETE', `/plugins/${plugin.body.id}`)).status, 204);
    assert.equal((await A('DELETE', `/ca_certificates/${ca2}`)).status, 204);
    assert.equal((await A('DELETE', `/services/${svc.body.id}`)).status, 204);
    assert.equal((await A('DELETE', `/certificates/${cert}`)).status, 204);
  });
});
