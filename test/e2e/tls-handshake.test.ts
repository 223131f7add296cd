// The certificate is chosen from the ClientHello before the handshake (issue 15): with mixed key
// types (an RSA default, ECDSA SNI certificates, a certificate with an RSA `cert` and an ECDSA
// `cert_alt`) each client gets the pair its algorithms accept, never the default in its place; and
// bytes that are not a ClientHello close the connection without harming the node.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { admin, startGateway, statusOf, type GatewayProcess } from '../harness/gateway.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { waitFor } from '../harness/procs.ts';
import { makeCa, makeCert, tlsRequest, type Pem } from '../harness/certs.ts';

let g: GatewayProcess;
let upstream: Upstream;
const ca = makeCa('Handshake Test CA');
const defaultRsa = makeCert({ cn: 'default.test', ca, keyType: 'rsa' });
const ecOnly = makeCert({ cn: 'ec.test', ca, keyType: 'ec' });
const dualRsa = makeCert({ cn: 'dual.test', ca, keyType: 'rsa' });
const dualEc = makeCert({ cn: 'dual.test', ca, keyType: 'ec' });

/** Client offers: only RSA signatures (TLS 1.3 sigalgs, TLS 1.2 ciphers), or only ECDSA. */
const RSA_ONLY_13: tls.ConnectionOptions = { minVersion: 'TLSv1.3', sigalgs: 'rsa_pss_rsae_sha256:rsa_pkcs1_sha256' };
const ECDSA_ONLY_13: tls.ConnectionOptions = { minVersion: 'TLSv1.3', sigalgs: 'ecdsa_secp256r1_sha256' };
const RSA_ONLY_12: tls.ConnectionOptions = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' };
const ECDSA_ONLY_12: tls.ConnectionOptions = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' };

const fingerprint = (pem: Pem) => new X509Certificate(pem.cert).fingerprint256;

/** The certificate a handshake naming `servername` with `options` gets (its SHA-256 fingerprint), or the handshake error. */
function served(servername: string, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port: g.proxyTlsPort, servername, ca: ca.cert, ALPNProtocols: ['http/1.1'], ...options }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? 'none';
      socket.end();
      resolve(fp);
    });
    socket.on('error', (err) => resolve(`error: ${err.message}`));
  });
}

before(async () => {
  upstream = await startUpstream();
  g = await startGateway('all-in-one', { env: { PORTICO_SSL_CERT: defaultRsa.cert, PORTICO_SSL_CERT_KEY: defaultRsa.key } });
  const A = (method: string, p: string, body?: unknown) => admin(g.admin, method, p, body);
  assert.equal((await A('POST', '/services', { name: 'echo', url: upstream.url })).status, 201);
  assert.equal((await A('POST', '/services/echo/routes', { name: 'echo-r', paths: ['/echo'] })).status, 201);
  assert.equal((await A('POST', '/certificates', { ...ecOnly, snis: ['ec.test'] })).status, 201);
  const dual = await A('POST', '/certificates', { cert: dualRsa.cert, key: dualRsa.key, cert_alt: dualEc.cert, key_alt: dualEc.key, snis: ['dual.test'] });
  assert.equal(dual.status, 201, JSON.stringify(dual.body));
  await waitFor('the node serves both certificates', async () =>
    await served('ec.test', ECDSA_ONLY_13) === fingerprint(ecOnly) && await served('dual.test', ECDSA_ONLY_13) === fingerprint(dualEc), 10_000, 50);
});
after(async () => { await g?.kill(); g?.cleanup(); await upstream?.close(); });

describe('mixed key types', () => {
  it('serves both pairs of a certificate with cert_alt: RSA to an RSA-only client, ECDSA to an ECDSA-only one', async () => {
    assert.equal(await served('dual.test', RSA_ONLY_13), fingerprint(dualRsa), 'TLS 1.3, RSA signatures only');
    assert.equal(await served('dual.test', ECDSA_ONLY_13), fingerprint(dualEc), 'TLS 1.3, ECDSA signatures only');
    assert.equal(await served('dual.test', RSA_ONLY_12), fingerprint(dualRsa), 'TLS 1.2, RSA ciphers only');
    assert.equal(await served('dual.test', ECDSA_ONLY_12), fingerprint(dualEc), 'TLS 1.2, ECDSA ciphers only');
  });

  it('never gives the RSA default in place of an ECDSA SNI certificate', async () => {
    assert.equal(await served('ec.test', ECDSA_ONLY_13), fingerprint(ecOnly));
    assert.equal(await served('ec.test', {}), fingerprint(ecOnly), 'a client that accepts both gets the SNI certificate');
    for (const rsaOnly of [RSA_ONLY_13, RSA_ONLY_12]) {
      const got = await served('ec.test', rsaOnly);
      assert.notEqual(got, fingerprint(defaultRsa), 'the default certificate is not the SNI\'s');
      assert.match(got, /^error: .*handshake failure/, 'an RSA-only client cannot use the ECDSA certificate: the handshake fails, as with Kong');
    }
  });

  it('serves the RSA default to a name no SNI matches, and proxies over the chosen certificate with HTTP/1.1 and ALPN', async () => {
    assert.equal(await served('default.test', {}), fingerprint(defaultRsa));
    const r = await tlsRequest({ host: '127.0.0.1', port: g.proxyTlsPort, path: '/echo/x', servername: 'dual.test', ca: ca.cert, headers: { host: 'dual.test' }, ALPNProtocols: ['http/1.1'], ...ECDSA_ONLY_13 } as https.RequestOptions);
    assert.equal(r.status, 200);
    assert.equal(r.alpn, 'http/1.1');
    assert.equal(r.body.headers['x-forwarded-proto'], 'https');
  });
});

describe('bytes that are not a ClientHello', () => {
  /** Send `bytes` (then half-close when `end`) and wait for the node to close the connection. */
  function closedAfter(bytes: Buffer, end: boolean): Promise<string> {
    return new Promise((resolve) => {
      const c = net.connect(g.proxyTlsPort, '127.0.0.1', () => { if (bytes.length) c.write(bytes); if (end) c.end(); });
      let answer = '';
      c.on('data', (d) => { answer += d.toString('latin1'); });
      c.on('error', () => { /* a reset is a close */ });
      c.on('close', () => resolve(answer));
    });
  }

  it('closes plain HTTP, oversized records, truncated hellos and silent clients without answering, and keeps serving', async () => {
    const replies = await Promise.all([
      closedAfter(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), false),
      closedAfter(Buffer.from([22, 3, 1, 0xff, 0xff]), false),
      closedAfter(Buffer.from([22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3]), true),
      closedAfter(Buffer.from([22, 3, 1, 0, 4, 1, 0x7f, 0xff, 0xff]), false),
      closedAfter(Buffer.alloc(0), false),
    ]);
    assert.deepEqual(replies, ['', '', '', '', ''], 'nothing is answered to a connection that sent no ClientHello');
    assert.equal(await served('dual.test', ECDSA_ONLY_13), fingerprint(dualEc), 'the node still serves');
    assert.equal((await statusOf(g)).last_error, null);
  });
});

describe('certificate expiry on /metrics', () => {
  it('reports the seconds until each certificate of the applied config expires (the first of its pairs)', async () => {
    const text = await (await fetch(`${g.status}/metrics`)).text();
    const certificates = (await admin(g.admin, 'GET', '/certificates')).body.data as { id: string }[];
    assert.equal(certificates.length, 2);
    for (const { id } of certificates) {
      const m = new RegExp(`portico_certificate_expiry_seconds\\{certificate_id="${id}"\\} (\\d+)`).exec(text);
      assert.ok(m, `no expiry series for ${id}`);
      const days = Number(m[1]) / 86_400;
      assert.ok(days > 29 && days <= 30, `the harness's certificates are valid for 30 days, got ${days}`);
    }
  });
});
