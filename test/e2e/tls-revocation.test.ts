// mtls-auth's revocation_check_mode through real CP and DP processes: client certificates name a CRL
// distribution point on a local HTTP server; the DP fetches the CRL (once per cache period), checks
// its signature against the client CA and the certificate's serial. SKIP checks nothing;
// IGNORE_CA_ERROR refuses a revoked certificate and allows one whose CRL is unavailable; STRICT
// refuses both.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStack, type Stack } from '../harness/stack.ts';
import { freePort } from '../harness/procs.ts';
import { makeCa, makeCert, makeCrl, tlsRequest, type Pem } from '../harness/certs.ts';

let s: Stack;
let mtlsPort: number;
let crlServer: http.Server;
const crlHits = new Map<string, number>();
const crls = new Map<string, string>();

const serverCa = makeCa('Server CA');
const clientCa = makeCa('Client CA');
/** Same name as the client CA, another key: its CRLs must not be believed. */
const impostorCa = makeCa('Client CA');

const certs: Record<string, Pem> = {};

const call = (path: string, cert: Pem) =>
  tlsRequest({ host: '127.0.0.1', port: mtlsPort, path, servername: 'api.test', ca: serverCa.cert, cert: cert.cert, key: cert.key });

async function statuses(cert: Pem): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const mode of ['skip', 'ignore', 'strict']) out[mode] = (await call(`/${mode}/a`, cert)).status;
  return out;
}

before(async () => {
  crlServer = http.createServer((req, res) => {
    crlHits.set(req.url!, (crlHits.get(req.url!) ?? 0) + 1);
    const body = crls.get(req.url!);
    if (body === undefined) { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', 'application/pkix-crl');
    res.end(body);
  });
  await new Promise<void>((resolve) => crlServer.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(crlServer.address() as AddressInfo).port}`;
  const deadPort = await freePort();
  const client = (cn: string, crlUrls?: string[]) => makeCert({ cn, ca: clientCa, usage: 'client', keyType: 'ec', crlUrls });
  certs.good = client('good', [`${base}/ca.crl`]);
  certs.revoked = client('revoked', [`${base}/ca.crl`]);
  certs.down = client('down', [`http://127.0.0.1:${deadPort}/ca.crl`]);
  certs.impostor = client('impostor', [`${base}/impostor.crl`]);
  certs.garbage = client('garbage', [`${base}/garbage.crl`]);
  certs.fallback = client('fallback', [`http://127.0.0.1:${deadPort}/ca.crl`, `${base}/ca.crl`]);
  certs.cached = client('cached', [`${base}/cached.crl`]);
  certs.skipped = client('skipped', [`${base}/skipped.crl`]);
  certs.noCrl = client('no-crl');
  crls.set('/ca.crl', makeCrl(clientCa, [certs.revoked]));
  crls.set('/cached.crl', makeCrl(clientCa, [certs.revoked]));
  crls.set('/impostor.crl', makeCrl(impostorCa, [certs.revoked]));
  crls.set('/garbage.crl', 'not a CRL');
  crls.set('/skipped.crl', makeCrl(clientCa, [certs.skipped]));

  mtlsPort = await freePort();
  s = await startStack({ dps: 1, dpEnv: { PORTICO_PROXY_MTLS_LISTEN: `127.0.0.1:${mtlsPort}` } });
  const server = makeCert({ cn: 'api.test', ca: serverCa });
  assert.equal((await s.A('POST', '/certificates', { ...server, snis: ['api.test'] })).status, 201);
  const caId = (await s.A('POST', '/ca_certificates', { cert: clientCa.cert })).body.id;
  await s.A('POST', '/services', { name: 'echo', url: s.upstream.url });
  for (const [name, mode] of [['skip', 'SKIP'], ['ignore', 'IGNORE_CA_ERROR'], ['strict', 'STRICT']]) {
    await s.A('POST', '/services/echo/routes', { name, paths: [`/${name}`] });
    const r = await s.write('POST', `/routes/${name}/plugins`, { name: 'mtls-auth', config: { ca_certificates: [caId], skip_consumer_lookup: true, revocation_check_mode: mode, http_timeout: 2000 } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
});
after(async () => {
  await s?.stop();
  crlServer?.close();
});

describe('mtls-auth revocation by CRL', () => {
  it('accepts a certificate its CA\'s CRL does not list, in every mode', async () => {
    assert.deepEqual(await statuses(certs.good), { skip: 200, ignore: 200, strict: 200 });
  });

  it('refuses a revoked certificate with Kong\'s 401 in IGNORE_CA_ERROR and STRICT, not in SKIP', async () => {
    assert.deepEqual(await statuses(certs.revoked), { skip: 200, ignore: 401, strict: 401 });
    const r = await call('/strict/a', certs.revoked);
    assert.equal(r.body.message, 'TLS certificate failed verification');
  });

  it('when the CRL server is down: 401 in STRICT, allowed in IGNORE_CA_ERROR', async () => {
    assert.deepEqual(await statuses(certs.down), { skip: 200, ignore: 200, strict: 401 });
  });

  it('treats a CRL signed by another key under the CA\'s name as an error, not as an answer', async () => {
    // The impostor CRL lists `revoked` but not `impostor`: believed, it would let `impostor` through STRICT.
    assert.deepEqual(await statuses(certs.impostor), { skip: 200, ignore: 200, strict: 401 });
  });

  it('treats an unparseable CRL as an error', async () => {
    assert.deepEqual(await statuses(certs.garbage), { skip: 200, ignore: 200, strict: 401 });
  });

  it('uses the next distribution point when the first is unreachable', async () => {
    assert.deepEqual(await statuses(certs.fallback), { skip: 200, ignore: 200, strict: 200 });
  });

  it('in STRICT refuses a certificate that names no CRL; IGNORE_CA_ERROR allows it', async () => {
    assert.deepEqual(await statuses(certs.noCrl), { skip: 200, ignore: 200, strict: 401 });
  });

  it('fetches a CRL once for many requests (cached for cert_cache_ttl)', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await call('/strict/a', certs.cached)).status, 200);
    assert.equal(crlHits.get('/cached.crl'), 1);
  });

  it('in SKIP does not fetch the CRL at all', async () => {
    assert.equal((await call('/skip/a', certs.skipped)).status, 200);
    assert.equal(crlHits.get('/skipped.crl'), undefined);
  });
});
