// mtls-auth through real CP and DP processes: client certificates are asked for only on the mTLS
// listener (PORTICO_PROXY_MTLS_LISTEN); a certificate that chains to the plugin's CA identifies a
// consumer (or, skipping the lookup, a group for acl); Kong's 401s otherwise; anonymous fallback.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../harness/stack.ts';
import { freePort } from '../harness/procs.ts';
import { makeCa, makeCert, tlsRequest, type Pem } from '../harness/certs.ts';

let s: Stack;
let mtlsPort: number;
const serverCa = makeCa('Server CA');
const clientCa = makeCa('Client CA');
const strangerCa = makeCa('Stranger CA');
const client = (cn: string, ca = clientCa) => makeCert({ cn, sans: [`${cn}.clients.test`], ca, usage: 'client', keyType: 'ec' });
const alice = client('alice');
const mallory = client('mallory');
const forged = client('alice', strangerCa);

const call = (path: string, cert: Pem | null, port = mtlsPort) =>
  tlsRequest({ host: '127.0.0.1', port, path, servername: 'api.test', ca: serverCa.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}) });

before(async () => {
  mtlsPort = await freePort();
  s = await startStack({ dps: 1, dpEnv: { PORTICO_PROXY_MTLS_LISTEN: `127.0.0.1:${mtlsPort}` } });
  const server = makeCert({ cn: 'api.test', ca: serverCa });
  const created = await s.write('POST', '/certificates', { ...server, snis: ['api.test'] });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const caId = (await s.A('POST', '/ca_certificates', { cert: clientCa.cert })).body.id;
  await s.A('POST', '/services', { name: 'echo', url: s.upstream.url });
  await s.A('POST', '/consumers', { username: 'alice' });
  await s.A('POST', '/consumers', { username: 'guest' });
  await s.A('POST', '/services/echo/routes', { name: 'mtls', paths: ['/mtls'] });
  await s.A('POST', '/routes/mtls/plugins', { name: 'mtls-auth', config: { ca_certificates: [caId] } });
  await s.A('POST', '/services/echo/routes', { name: 'mtls-anon', paths: ['/mtls-anon'] });
  await s.A('POST', '/routes/mtls-anon/plugins', { name: 'mtls-auth', config: { ca_certificates: [caId], anonymous: 'guest' } });
  await s.A('POST', '/services/echo/routes', { name: 'mtls-group', paths: ['/mtls-group'] });
  await s.A('POST', '/routes/mtls-group/plugins', { name: 'mtls-auth', config: { ca_certificates: [caId], skip_consumer_lookup: true } });
  await s.write('POST', '/routes/mtls-group/plugins', { name: 'acl', config: { allow: ['alice'] } });
});
after(async () => { await s?.stop(); });

describe('mtls-auth', () => {
  it('identifies the consumer named by a certificate that chains to the plugin\'s CA', async () => {
    const r = await call('/mtls/a', alice);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.headers['x-consumer-username'], 'alice');
    assert.equal(r.body.headers['x-credential-identifier'], 'alice');
  });

  it('answers Kong\'s 401s: no certificate, one from another CA, one naming no consumer', async () => {
    const none = await call('/mtls/a', null);
    assert.equal(none.status, 401);
    assert.equal(none.body.message, 'No required TLS certificate was sent');
    for (const cert of [forged, mallory]) {
      const r = await call('/mtls/a', cert);
      assert.equal(r.status, 401);
      assert.equal(r.body.message, 'TLS certificate failed verification');
    }
  });

  it('falls back to the anonymous consumer', async () => {
    const r = await call('/mtls-anon/a', null);
    assert.equal(r.status, 200);
    assert.equal(r.body.headers['x-consumer-username'], 'guest');
    assert.equal(r.body.headers['x-anonymous-consumer'], 'true');
    const known = await call('/mtls-anon/a', alice);
    assert.equal(known.body.headers['x-consumer-username'], 'alice');
  });

  it('with skip_consumer_lookup, authenticates the CN as a group that acl checks', async () => {
    assert.equal((await call('/mtls-group/a', alice)).status, 200);
    const other = await call('/mtls-group/a', mallory);
    assert.equal(other.status, 403);
  });

  it('is never asked for on the main TLS listener, so a certificate is not even sent there', async () => {
    const r = await call('/mtls/a', alice, s.dps[0].proxyTlsPort);
    assert.equal(r.status, 401);
    assert.equal(r.body.message, 'No required TLS certificate was sent');
  });
});
