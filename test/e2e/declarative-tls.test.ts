// Certificates, SNIs and CA certificates in a declarative file (issues 12 and 15) through the
// all-in-one: imported in one transaction and served by the TLS listener, exported with private keys
// for admins (redacted for viewers), imported back with no changes; and the checks the admin API's
// per-entity writes make (PEM, key match, expiry, wildcard names, references by id) made on import
// too, so a bad file is a 400 naming the entity and changes nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { admin, startGateway, statusOf, type GatewayProcess } from '../harness/gateway.ts';
import { waitFor } from '../harness/procs.ts';
import { makeCa, makeCert, type Pem } from '../harness/certs.ts';

const TOKEN = 'decl-tls-root-token-0123456789';
const CERT_ID = '0b7c6a10-6d5e-4c3b-9a21-7e1f0a2b3c01';
const CA_ID = '0b7c6a10-6d5e-4c3b-9a21-7e1f0a2b3c02';
const MISSING_ID = '0b7c6a10-6d5e-4c3b-9a21-7e1f0a2b3c99';

let g: GatewayProcess;
const ca = makeCa('Declarative Test CA');
const shopRsa = makeCert({ cn: 'shop.decl.test', sans: ['shop.decl.test', 'www.decl.test'], ca, keyType: 'rsa' });
const shopEc = makeCert({ cn: 'shop.decl.test', sans: ['shop.decl.test', 'www.decl.test'], ca, keyType: 'ec' });
const wild = makeCert({ cn: 'wild.decl.test', sans: ['*.api.decl.test'], ca, keyType: 'ec' });
const clientPem = makeCert({ cn: 'portico-client', ca, keyType: 'ec', usage: 'client' });

const A = (method: string, p: string, body?: unknown, token = TOKEN, headers: Record<string, string> = {}) =>
  admin(g.admin, method, p, body, { 'Kong-Admin-Token': token, ...headers });
const block = (pem: string, pad: string) => '|\n' + pem.trim().split('\n').map((l) => pad + l).join('\n');

/** Kong-style file: the snis shorthand on one certificate, nested decK-style SNIs on another. */
function tlsFile(over: { shop?: Partial<Pem & { cert_alt: string; key_alt: string }>; extra?: string; serviceCa?: string; mtlsCa?: string; clientCert?: string } = {}): string {
  const shop = { cert: shopRsa.cert, key: shopRsa.key, cert_alt: shopEc.cert, key_alt: shopEc.key, ...over.shop };
  return `_format_version: "3.0"
certificates:
- id: ${CERT_ID}
  cert: ${block(shop.cert, '    ')}
  key: ${block(shop.key, '    ')}
  cert_alt: ${block(shop.cert_alt, '    ')}
  key_alt: ${block(shop.key_alt, '    ')}
  snis: [shop.decl.test, www.decl.test]
- cert: ${block(wild.cert, '    ')}
  key: ${block(wild.key, '    ')}
  tags: [wild]
  snis:
  - name: "*.api.decl.test"
- cert: ${block(clientPem.cert, '    ')}
  key: ${block(clientPem.key, '    ')}
  tags: [client]
ca_certificates:
- id: ${CA_ID}
  cert: ${block(ca.cert, '    ')}
services:
- name: backend
  url: https://127.0.0.1:9/
  client_certificate: ${over.clientCert ?? CERT_ID}
  ca_certificates: [${over.serviceCa ?? CA_ID}]
  routes:
  - name: backend-r
    paths: [/backend]
    plugins:
    - name: mtls-auth
      config: {ca_certificates: [${over.mtlsCa ?? CA_ID}], skip_consumer_lookup: true}
${over.extra ?? ''}`;
}

async function post(text: string, query = '', token = TOKEN) {
  return A('POST', `/config${query}`, text, token, { 'content-type': 'application/yaml' });
}
const cpVersion = async () => (await A('GET', '/config/versions?size=1')).body.data[0]?.version as number | undefined;

/** The subject CN of the certificate a handshake naming `servername` gets. */
function served(servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: g.proxyTlsPort, servername, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.end();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}

before(async () => {
  g = await startGateway('all-in-one', { env: { PORTICO_ADMIN_TOKEN: TOKEN } });
});
after(async () => { await g?.kill(); g?.cleanup(); });

describe('certificates, SNIs and CA certificates in kong.yml', () => {
  it('imports them in one version with the services and plugins that name them, and the TLS listener serves them', async () => {
    const r = await post(tlsFile());
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.match(r.body.summary, /\+3 certificates, \+3 snis, \+1 ca_certificates, \+1 services, \+1 routes, \+1 plugins/);
    const snis = (await A('GET', '/snis')).body.data.map((s: { name: string }) => s.name).sort();
    assert.deepEqual(snis, ['*.api.decl.test', 'shop.decl.test', 'www.decl.test']);
    const shop = (await A('GET', `/certificates/${CERT_ID}`)).body;
    assert.deepEqual(shop.snis, ['shop.decl.test', 'www.decl.test']);
    assert.equal(shop.cert_alt.trim(), shopEc.cert.trim());
    const svc = (await A('GET', '/services/backend')).body;
    assert.deepEqual(svc.client_certificate, { id: CERT_ID });
    assert.deepEqual(svc.ca_certificates, [CA_ID]);
    await waitFor('the DP runs the imported version', async () => (await statusOf(g)).version === r.body.version, 10_000, 50);
    assert.equal(await served('www.decl.test'), 'shop.decl.test');
    assert.equal(await served('v1.api.decl.test'), 'wild.decl.test');
  });

  it('exports private keys and nested SNIs to an admin, and the export imports back with no changes', async () => {
    const before = await cpVersion();
    const file = (await A('GET', '/config')).body.config as string;
    assert.ok(file.includes(shopRsa.key.trim().split('\n')[1]), 'the private key is in an admin\'s export');
    assert.match(file, /certificates:\n\s+- id: /);
    assert.match(file, /snis:\n\s+- id: [0-9a-f-]+\n\s+name: shop\.decl\.test/, 'SNIs nested under their certificate');
    assert.match(file, new RegExp(`client_certificate: ${CERT_ID}`), 'a reference by id, as decK writes it');
    const again = await post(file);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.summary, 'no changes');
    const original = await post(tlsFile());
    assert.equal(original.body.summary, 'no changes', 'certificates without ids match by content, SNIs by name');
    assert.equal(await cpVersion(), before);
  });

  it('redacts private keys in a viewer\'s export', async () => {
    const viewer = (await A('POST', '/admins', { username: 'decl-viewer', role: 'viewer' })).body.token as string;
    const file = (await A('GET', '/config', undefined, viewer)).body.config as string;
    assert.match(file, /key: "?\[REDACTED\]/);
    assert.match(file, /key_alt: "?\[REDACTED\]/);
    for (const pem of [shopRsa, shopEc, wild, clientPem]) assert.ok(!file.includes(pem.key.trim().split('\n')[1]), 'no private key line');
    assert.ok(file.includes(shopRsa.cert.trim().split('\n')[1]), 'certificates themselves are public');
  });

  it('moves an SNI to another certificate and drops one no longer listed, in one version', async () => {
    const r = await post(tlsFile().replace('snis: [shop.decl.test, www.decl.test]', 'snis: [shop.decl.test]')
      .replace('  - name: "*.api.decl.test"', '  - name: "*.api.decl.test"\n  - name: www.decl.test'));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.summary, '~1 snis');
    await waitFor('the DP runs it', async () => (await statusOf(g)).version === r.body.version, 10_000, 50);
    assert.equal(await served('www.decl.test'), 'wild.decl.test');
    const back = await post(tlsFile());
    assert.equal(back.status, 201);
    await waitFor('the DP runs it', async () => (await statusOf(g)).version === back.body.version, 10_000, 50);
  });
});

describe('a bad TLS entity in a file is refused with its path, changing nothing', () => {
  const expired = makeCert({ cn: 'old.decl.test', days: 0 });
  const other = makeCert({ cn: 'other.decl.test', keyType: 'rsa' });
  const cases: [string, () => string, RegExp][] = [
    ['a key that does not match its certificate', () => tlsFile({ shop: { key: other.key } }), /certificates\[0\]\.@entity: certificate does not match key/],
    ['an alternative pair of the same key type', () => tlsFile({ shop: { cert_alt: other.cert, key_alt: other.key } }), /certificates\[0\]\.@entity: certificate and alternative certificate need to have different type/],
    ['an expired certificate', () => tlsFile().replace('ca_certificates:\n', `- cert: ${block(expired.cert, '    ')}\n  key: ${block(expired.key, '    ')}\nca_certificates:\n`),
    /certificates\[3\]\.cert: certificate expired/],
    ['a certificate that is not PEM', () => tlsFile({ shop: { cert: 'not a certificate' } }), /certificates\[0\]\.cert: invalid certificate: expected a PEM certificate/],
    ['a wildcard in the middle of an SNI', () => tlsFile().replace('"*.api.decl.test"', '"api.*.decl.test"'), /certificates\[1\]\.snis\[0\]\.name: wildcard must be leftmost or rightmost/],
    ['a CA certificate that is not a CA', () => tlsFile().replace(block(ca.cert, '    '), block(other.cert, '    ')), /ca_certificates\[0\]\.@entity: certificate does not appear to be a CA/],
    ['a service naming a client certificate not in the file', () => tlsFile({ clientCert: MISSING_ID }), new RegExp(`services\\[0\\]\\.client_certificate: references a certificate that is neither in the file nor managed elsewhere: ${MISSING_ID}`)],
    ['a service naming a CA certificate not in the file', () => tlsFile({ serviceCa: MISSING_ID }), new RegExp(`services\\[0\\]\\.ca_certificates: references a ca_certificate .*${MISSING_ID}`)],
    ['mtls-auth naming a CA certificate not in the file', () => tlsFile({ mtlsCa: MISSING_ID }), new RegExp(`services\\[0\\]\\.routes\\[0\\]\\.plugins\\[0\\]\\.config\\.ca_certificates: references a ca_certificate .*${MISSING_ID}`)],
    ['a file dropping a CA certificate a service still names', () => tlsFile().replace(/ca_certificates:\n- id: [\s\S]*?\nservices:/, 'services:'), /services\[0\]\.ca_certificates: references a ca_certificate/],
  ];
  for (const [what, file, message] of cases) {
    it(`refuses ${what}`, async () => {
      const before = await cpVersion();
      const configBefore = (await A('GET', '/config')).body.config;
      const r = await post(file());
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.code, 14);
      assert.match(r.body.message, message);
      assert.equal(await cpVersion(), before);
      assert.equal((await A('GET', '/config')).body.config, configBefore);
    });
  }

  it('never writes a private key to the log, even for a refused file', async () => {
    await post(tlsFile({ shop: { key: other.key } }));
    for (const pem of [shopRsa, shopEc, wild, clientPem, other]) {
      assert.ok(!g.logs().includes(pem.key.trim().split('\n')[1]), 'a private key line in the log');
    }
  });
});
