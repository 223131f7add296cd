// Hostile routes and requests through a real CP and DP (issue 9 items 13 and 14; probe 4.2, 4.3):
// a header rule named `constructor` neither fails requests nor ends the process on an Upgrade, and
// the probe's catastrophic regexes answer on a 10,000-character path or header value.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startStack, type Stack } from '../harness/stack.ts';
import type { Echo } from '../harness/upstream.ts';

let s: Stack;

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const u = new URL(s.dps[0].proxy);
  return new Promise((resolve, reject) => {
    http.get({ host: u.hostname, port: u.port, path, headers }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    }).on('error', reject);
  });
}
/** The upstream path the echo saw: each route's service has its own base path. */
const upstreamPath = (body: string) => (JSON.parse(body) as Echo).url;

/** A raw Upgrade request; resolves with the status line the DP answers. */
function upgrade(path: string): Promise<string> {
  const u = new URL(s.dps[0].proxy);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    });
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) { sock.destroy(); resolve(got.slice(0, got.indexOf('\r\n'))); }
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
  });
}

let poisonWrite: Awaited<ReturnType<Stack['A']>>;
before(async () => {
  s = await startStack({ dps: 1 });
  for (const name of ['plain', 'poison', 'redos', 'hredos']) {
    await s.A('POST', '/services', { name, url: `${s.upstream.url}/${name}` });
  }
  await s.A('POST', '/services/plain/routes', { paths: ['/p'] });
  // A header-only route outranks path-only ones, so it would be tried on every request (probe 4.2).
  poisonWrite = await s.A('POST', '/services/poison/routes', { headers: { constructor: ['x'] } });
  await s.A('POST', '/services/redos/routes', { paths: ['~/(a+)+$'] });
  await s.write('POST', '/services/hredos/routes', { paths: ['/h'], headers: { 'x-r': ['~*^(a+)+$'] } });
});
after(async () => { await s?.stop(); });

describe('hostile routes and requests', () => {
  // The router's own guarantee for such rules (they can still arrive in a snapshot built from an
  // older database) is in data-plane/src/router/router.test.ts.
  it('refuses a header rule named constructor at write time; requests, with or without such a header, route as usual', async () => {
    assert.equal(poisonWrite.status, 400);
    assert.match(JSON.stringify(poisonWrite.body.fields), /constructor/);
    const plain = await get('/p/x');
    assert.equal(plain.status, 200);
    assert.equal(upstreamPath(plain.body), '/plain/x');
    const withHeader = await get('/p/x', { constructor: 'X' });
    assert.equal(withHeader.status, 200);
    assert.equal(upstreamPath(withHeader.body), '/plain/x');
    assert.equal((await get('/nowhere')).status, 404);
  });

  it('survives Upgrade requests while that rule exists (probe 4.2 ended the process)', async () => {
    assert.match(await upgrade('/nowhere'), /^HTTP\/1\.1 404 /);
    assert.match(await upgrade('/nowhere/again'), /^HTTP\/1\.1 404 /);
    assert.equal(s.dps[0].proc.exitCode, null);
    assert.equal((await get('/p')).status, 200);
  });

  it("answers the probe's ~/(a+)+$ route on a 10,000-character path (RE2: no backtracking)", async () => {
    // On V8's engine 33 characters took 36.7 s and each one more doubled it.
    const [attack, meanwhile] = await Promise.all([get('/' + 'a'.repeat(10_000) + '!'), get('/p')]);
    assert.equal(attack.status, 404);
    assert.equal(meanwhile.status, 200);
    // 5,000 for the hit: the upstream request carries the path twice more (X-Forwarded-Path and
    // -Prefix), and the echo upstream's 16 KB header limit would answer 431.
    const hit = await get('/' + 'a'.repeat(5_000));
    assert.equal(hit.status, 200);
    // strip_path removes what the regex matched: the whole path.
    assert.equal(upstreamPath(hit.body), '/redos');
  });

  it('answers a ~*^(a+)+$ header rule on a 10,000-character value', async () => {
    assert.equal((await get('/h', { 'x-r': 'a'.repeat(10_000) + '!' })).status, 404);
    const hit = await get('/h/x', { 'x-r': 'A'.repeat(10_000) });
    assert.equal(hit.status, 200);
    assert.equal(upstreamPath(hit.body), '/hredos/x');
  });
});
