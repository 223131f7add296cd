// The DP's TLS listener through real CP and DP processes: certificates chosen per SNI with Kong's
// precedence, a certificate swapped under load without a failed request or a dropped connection,
// HTTP/2 and HTTP/1.1 on one port, https-only and SNI routes, plugins and WebSocket over TLS.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { startStack, type Stack } from '../harness/stack.ts';
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { waitFor } from '../harness/procs.ts';
import { wsRoundTrip } from '../harness/upstream.ts';
import { makeCa, makeCert, tlsRequest, type Pem, type TlsReply } from '../harness/certs.ts';

let s: Stack;
let port: number;
const ca = makeCa();
const leaf = (cn: string, sans = [cn]) => makeCert({ cn, sans, ca, keyType: 'ec' });
const defaultPem = leaf('default.test');

/** The CN of the certificate a handshake with `servername` (none: no SNI) gets. */
function served(servername: string | undefined, p = port): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: p, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.end();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}

type Reply = TlsReply;

/** One HTTP/1.1 request over a new TLS connection. */
const h1 = (path: string, servername = 'exact.test', headers: Record<string, string> = {}): Promise<Reply> =>
  tlsRequest({ host: '127.0.0.1', port, path, servername, ca: ca.cert, headers: { host: servername, ...headers }, ALPNProtocols: ['http/1.1'] } as https.RequestOptions);

/** One request on an HTTP/2 session (opened with `servername`). */
function h2(session: http2.ClientHttp2Session, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = session.request({ ':path': path, ...headers });
    let text = ''; let head: http2.IncomingHttpHeaders = {};
    r.setEncoding('utf8');
    r.on('response', (h) => { head = h; });
    r.on('data', (d) => { text += d; });
    r.on('end', () => {
      let body: unknown = text;
      try { body = JSON.parse(text); } catch { /* text */ }
      resolve({ status: Number(head[':status']), body, alpn: session.alpnProtocol ?? false, headers: head });
    });
    r.on('error', reject);
    r.end();
  });
}
const fingerprint = (pem: Pem) => new X509Certificate(pem.cert).fingerprint256.replace(/:/g, '').toLowerCase();
const h2session = (servername = 'exact.test', p = port) => http2.connect(`https://127.0.0.1:${p}`, { servername, ca: ca.cert });

async function certificate(pem: Pem, snis: string[]): Promise<string> {
  const r = await s.write('POST', '/certificates', { ...pem, snis });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

before(async () => {
  s = await startStack({ dps: 1, dpEnv: { PORTICO_SSL_CERT: defaultPem.cert, PORTICO_SSL_CERT_KEY: defaultPem.key } });
  port = s.dps[0].proxyTlsPort;
  await s.A('POST', '/services', { name: 'echo', url: s.upstream.url });
  await s.A('POST', '/services/echo/routes', { name: 'both', paths: ['/both'] });
  await s.A('POST', '/services/echo/routes', { name: 'secure', paths: ['/secure'], protocols: ['https'] });
  await s.A('POST', '/services/echo/routes', { name: 'moved', paths: ['/moved'], protocols: ['https'], https_redirect_status_code: 301 });
  await s.A('POST', '/services/echo/routes', { name: 'plain', paths: ['/plain'], protocols: ['http'] });
  await s.A('POST', '/services/echo/routes', { name: 'by-sni', paths: ['/by-sni'], protocols: ['https'], snis: ['exact.test'] });
  await s.A('POST', '/services/echo/routes', { name: 'keyed', paths: ['/keyed'] });
  await s.A('POST', '/routes/keyed/plugins', { name: 'key-auth' });
  await s.A('POST', '/consumers', { username: 'tls-user' });
  await s.write('POST', '/consumers/tls-user/key-auth', { key: 'tls-secret-key' });
  await certificate(leaf('exact.test', ['exact.test', 'exact.wild.test']), ['exact.test', 'exact.wild.test']);
  await certificate(leaf('left.wild.test', ['*.wild.test', '*.both.test']), ['*.wild.test', '*.both.test']);
  await certificate(leaf('shop.right', ['shop.example', 'x.both.example']), ['shop.*', 'x.both.*']);
});
after(async () => { await s?.stop(); });

describe('certificate selection by SNI (Kong\'s precedence)', () => {
  it('serves the configured default before an SNI named `*` exists, and to a client without SNI', async () => {
    assert.equal(await served('unknown.test'), 'default.test');
    assert.equal(await served(undefined), 'default.test');
  });

  it('prefers the exact name, then *.parent, then prefix.*, then `*`, then the default', async () => {
    assert.equal(await served('exact.test'), 'exact.test', 'exact');
    assert.equal(await served('exact.wild.test'), 'exact.test', 'exact beats *.wild.test');
    assert.equal(await served('a.wild.test'), 'left.wild.test', '*.parent');
    assert.equal(await served('x.both.test'), 'left.wild.test', '*.both.test beats x.both.*');
    assert.equal(await served('shop.example'), 'shop.right', 'prefix.*');
    assert.equal(await served('a.b.wild.test'), 'default.test', 'a wildcard replaces one label only');
    await certificate(leaf('star.test'), ['*']);
    assert.equal(await served('unknown.test'), 'star.test', 'SNI named *');
    assert.equal(await served(undefined), 'default.test', 'no SNI: the default, not *');
    assert.equal(await served('EXACT.TEST'), 'exact.test', 'names compare case-insensitively');
  });

  it('generates a self-signed default, with a warning, when none is configured', async () => {
    let dp: GatewayProcess | undefined;
    try {
      dp = await startGateway('data-plane', { env: { NATS_URL: s.nats.url } });
      assert.equal(await served(undefined, dp.proxyTlsPort), 'localhost');
      assert.match(dp.logs(), /generated a self-signed default certificate/);
    } finally { await dp?.kill(); dp?.cleanup(); }
  });
});

describe('HTTP/2 and HTTP/1.1 on one port', () => {
  it('negotiates h2 or http/1.1 by ALPN and proxies both to the HTTP/1.1 upstream', async () => {
    const one = await h1('/both/x?q=1');
    assert.equal(one.status, 200);
    assert.equal(one.alpn, 'http/1.1');
    const session = h2session();
    try {
      const two = await h2(session, '/both/y?q=2', { 'x-custom': 'v', ':authority': 'h2.example' });
      assert.equal(two.status, 200);
      assert.equal(two.alpn, 'h2');
      const seen = two.body.headers as Record<string, string>;
      assert.equal(two.body.url, '/y?q=2');
      assert.equal(seen['x-forwarded-host'], 'h2.example', ':authority is the client\'s Host');
      assert.equal(seen.host, new URL(s.upstream.url).host, 'the service\'s Host goes upstream');
      assert.equal(seen['x-custom'], 'v');
      assert.equal(seen['x-forwarded-proto'], 'https');
      assert.equal(seen['x-forwarded-port'], String(port));
      assert.ok(!Object.keys(seen).some((k) => k.startsWith(':')), 'no pseudo-header reaches the upstream');
      assert.match(seen.via, /^2 portico\//);
      assert.equal(two.headers['x-drop-me'], undefined, 'hop-by-hop headers the upstream named are not passed back');
      assert.equal(two.headers.connection, undefined);
    } finally { session.close(); }
    assert.equal(one.body.headers['x-forwarded-proto'], 'https');
  });

  it('runs plugins on both versions (key-auth answers 401, then lets the key through)', async () => {
    assert.equal((await h1('/keyed/a')).status, 401);
    assert.equal((await h1('/keyed/a', 'exact.test', { apikey: 'tls-secret-key' })).status, 200);
    const session = h2session();
    try {
      const denied = await h2(session, '/keyed/b');
      assert.equal(denied.status, 401);
      assert.equal(denied.body.message, 'No API key found in request');
      const ok = await h2(session, '/keyed/b', { apikey: 'tls-secret-key' });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.headers['x-consumer-username'], 'tls-user');
    } finally { session.close(); }
  });

  it('upgrades WebSocket over TLS', async () => {
    const reply = await wsRoundTrip(`wss://127.0.0.1:${port}/both/ws`, 'hi', { host: 'exact.test' }, { ca: ca.cert, servername: 'exact.test' });
    assert.equal(reply, 'echo:/ws:hi');
  });
});

describe('routes see real TLS', () => {
  it('serves https-only routes over TLS, and answers plain HTTP with 426 or the configured redirect', async () => {
    assert.equal((await h1('/secure/a')).status, 200);
    const plain = await fetch(`${s.dps[0].proxy}/secure/a`);
    assert.equal(plain.status, 426);
    const moved = await fetch(`${s.dps[0].proxy}/moved/a?x=1`, { redirect: 'manual' });
    assert.equal(moved.status, 301);
    assert.match(moved.headers.get('location') ?? '', /^https:\/\/127\.0\.0\.1:\d+\/moved\/a\?x=1$/);
  });

  it('does not serve an http-only route over TLS', async () => {
    assert.equal((await h1('/plain/a')).status, 404);
    assert.equal((await fetch(`${s.dps[0].proxy}/plain/a`)).status, 200);
  });

  it('matches a route\'s snis against the SNI the client sent', async () => {
    assert.equal((await h1('/by-sni/a', 'exact.test')).status, 200);
    const other = await new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/by-sni/a', servername: 'shop.example', rejectUnauthorized: false, agent: false }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    });
    assert.equal(other, 404);
  });
});

describe('certificate swap', () => {
  it('serves a new certificate from the next handshake, with no failed request and no dropped connection', async () => {
    const before = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, servername: 'swap.test', rejectUnauthorized: false }, () => { resolve(c.getPeerCertificate().fingerprint256.replace(/:/g, '').toLowerCase()); c.end(); });
      c.on('error', reject);
    });
    const first = leaf('swap.test');
    const id = await certificate(first, ['swap.test']);
    const session = h2session('swap.test');
    let failures = 0; let done = 0; let stop = false;
    const load = async () => {
      while (!stop) {
        const r = await Promise.all([h1('/both/load', 'swap.test').catch(() => null), h2(session, '/both/load').catch(() => null)]);
        for (const x of r) { if (x?.status === 200) done++; else failures++; }
      }
    };
    const loops = [load(), load()];
    await waitFor('some load', async () => done > 20, 10_000, 10);
    const second = leaf('swap.test');
    const r = await s.write('PATCH', `/certificates/${id}`, { cert: second.cert, key: second.key });
    assert.equal(r.status, 200);
    const atSwap = done;
    await waitFor('load after the swap', async () => done > atSwap + 20, 10_000, 10);
    stop = true;
    await Promise.all(loops);
    assert.equal(failures, 0);
    assert.ok(!session.closed && !session.destroyed, 'the HTTP/2 session opened before the swap is still open');
    assert.equal((await h2(session, '/both/after')).status, 200);
    session.close();
    const now = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, servername: 'swap.test', rejectUnauthorized: false }, () => { resolve(c.getPeerCertificate().fingerprint256.replace(/:/g, '').toLowerCase()); c.end(); });
      c.on('error', reject);
    });
    assert.equal(now, fingerprint(second));
    assert.notEqual(now, fingerprint(first));
    assert.notEqual(before, now);
  });
});
