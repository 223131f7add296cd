// TLS towards https services through real CP and DP processes: the upstream's certificate verified
// against the service's ca_certificates and tls_verify_depth (502 and a clear log line when it
// fails), and a client certificate presented to an upstream that requires one.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../harness/stack.ts';
import { waitFor } from '../harness/procs.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { makeCa, makeCert } from '../harness/certs.ts';

let s: Stack;
let secure: Upstream; let mutual: Upstream;
const ca = makeCa('Upstream CA');
const otherCa = makeCa('Some other CA');
const serverPem = makeCert({ cn: 'localhost', sans: ['localhost', 'IP:127.0.0.1'], ca });
const clientPem = makeCert({ cn: 'portico-gateway', ca, usage: 'client', keyType: 'ec' });
let caId: string; let otherCaId: string; let clientId: string;

async function call(path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(s.dps[0].proxy + path);
  const text = await r.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, body };
}

/** The DP's log gets a line matching `re` (log lines are written asynchronously). */
const logged = (re: RegExp) => waitFor(`log ${re}`, async () => re.test(s.dps[0].logs()), 5_000, 20);

/** A service on `up` with these TLS settings, and a route /<name>. */
async function service(name: string, up: Upstream, tls: Record<string, unknown>): Promise<void> {
  const r = await s.A('POST', '/services', { name, url: up.url, retries: 0, ...tls });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const route = await s.write('POST', `/services/${name}/routes`, { name, paths: [`/${name}`] });
  assert.equal(route.status, 201, JSON.stringify(route.body));
}

before(async () => {
  s = await startStack({ dps: 1 });
  secure = await startUpstream(0, { cert: serverPem.cert, key: serverPem.key });
  mutual = await startUpstream(0, { cert: serverPem.cert, key: serverPem.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true });
  caId = (await s.A('POST', '/ca_certificates', { cert: ca.cert })).body.id;
  otherCaId = (await s.A('POST', '/ca_certificates', { cert: otherCa.cert })).body.id;
  clientId = (await s.A('POST', '/certificates', clientPem)).body.id;
});
after(async () => { await s?.stop(); await Promise.all([secure?.close(), mutual?.close()]); });

describe('upstream certificate verification', () => {
  it('proxies to an upstream whose certificate chains to the service\'s CA', async () => {
    await service('verified', secure, { tls_verify: true, ca_certificates: [caId] });
    const r = await call('/verified/a');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.url, '/a');
  });

  it('answers 502 and logs why when the certificate does not verify (another CA, the system store)', async () => {
    await service('wrong-ca', secure, { tls_verify: true, ca_certificates: [otherCaId] });
    await service('system-store', secure, { tls_verify: true });
    for (const path of ['/wrong-ca/a', '/system-store/a']) {
      const r = await call(path);
      assert.equal(r.status, 502, path);
      assert.match(String(r.body), /^An invalid response was received from the upstream server/);
    }
    await logged(/"service":"wrong-ca".*"code":"UNABLE_TO_VERIFY_LEAF_SIGNATURE".*upstream TLS verification failed/);
  });

  it('does not verify when tls_verify is off', async () => {
    await service('unverified', secure, { tls_verify: false });
    assert.equal((await call('/unverified/a')).status, 200);
  });

  it('refuses a chain deeper than tls_verify_depth', async () => {
    await service('depth-0', secure, { tls_verify: true, ca_certificates: [caId], tls_verify_depth: 0 });
    await service('depth-1', secure, { tls_verify: true, ca_certificates: [caId], tls_verify_depth: 1 });
    assert.equal((await call('/depth-0/a')).status, 502);
    await logged(/"service":"depth-0".*over tls_verify_depth 0/);
    assert.equal((await call('/depth-1/a')).status, 200);
  });
});

describe('client certificate to the upstream (mTLS)', () => {
  it('presents the service\'s client_certificate; without one the upstream refuses the handshake', async () => {
    await service('mtls-with', mutual, { tls_verify: true, ca_certificates: [caId], client_certificate: { id: clientId } });
    await service('mtls-without', mutual, { tls_verify: true, ca_certificates: [caId] });
    const ok = await call('/mtls-with/a');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.client_cn, 'portico-gateway');
    assert.equal((await call('/mtls-without/a')).status, 502);
  });
});
