// The optional cleartext HTTP/2 listener (PORTICO_PROXY_H2C_LISTEN, h2c with prior knowledge, as
// gRPC clients speak it without TLS) through real CP and DP processes: the same proxy as the other
// listeners, with its own port for X-Forwarded-Port, and Kong's answers when nothing matches.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startStack, type Stack } from '../harness/stack.ts';
import { freePort } from '../harness/procs.ts';

let s: Stack;
let port: number;

before(async () => {
  port = await freePort();
  s = await startStack({ dps: 1, dpEnv: { PORTICO_PROXY_H2C_LISTEN: `127.0.0.1:${port}` } });
  await s.A('POST', '/services', { name: 'echo', url: s.upstream.url });
  await s.write('POST', '/services/echo/routes', { name: 'grpcish', paths: ['/pkg.Svc'], protocols: ['http'], strip_path: false });
});
after(async () => { await s?.stop(); });

/** One request on a cleartext HTTP/2 session. */
function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const r = session.request(headers);
    let text = ''; let status = 0;
    r.setEncoding('utf8');
    r.on('response', (h) => { status = Number(h[':status']); });
    r.on('data', (d) => { text += d; });
    r.on('end', () => { let parsed: unknown = text; try { parsed = JSON.parse(text); } catch { /* text */ } resolve({ status, body: parsed }); });
    r.on('error', reject);
    r.end(body);
  });
}

describe('h2c listener', () => {
  it('proxies HTTP/2 requests without TLS to the HTTP/1.1 upstream, several on one session', async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const [a, b] = await Promise.all([
        request(session, { ':method': 'POST', ':path': '/pkg.Svc/Call', ':authority': 'grpc.example', 'content-type': 'application/json', 'x-custom': 'v' }, '{"n":1}'),
        request(session, { ':path': '/pkg.Svc/Other?q=2' }),
      ]);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(a.body.method, 'POST');
      assert.equal(a.body.url, '/pkg.Svc/Call');
      const seen = a.body.headers as Record<string, string>;
      assert.equal(seen['x-custom'], 'v');
      assert.equal(seen['x-forwarded-host'], 'grpc.example', ':authority is the client\'s Host');
      assert.equal(seen['x-forwarded-proto'], 'http');
      assert.equal(seen['x-forwarded-port'], String(port));
      assert.ok(!Object.keys(seen).some((k) => k.startsWith(':')), 'no pseudo-header goes upstream');
      assert.equal(b.status, 200);
      assert.equal(b.body.url, '/pkg.Svc/Other?q=2');
      const miss = await request(session, { ':path': '/nothing' });
      assert.equal(miss.status, 404);
      assert.equal(miss.body.message, 'no Route matched with those values');
    } finally { session.close(); }
  });
});
