// The CRL checker's cache with an injectable clock and an in-memory HTTP port (certificates and
// CRLs made with openssl by the test harness).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { makeCa, makeCert, makeCrl } from '../../../../test/harness/certs.ts';
import { testEnv } from '../test-ports.ts';
import { CrlChecker } from './crl.ts';

const URL_ = 'http://crl.test/ca.crl';
const ca = makeCa('Unit CA');
const issuer = new X509Certificate(ca.cert);
const good = new X509Certificate(makeCert({ cn: 'good', ca, usage: 'client', keyType: 'ec', crlUrls: [URL_] }).cert);
const revokedPem = makeCert({ cn: 'revoked', ca, usage: 'client', keyType: 'ec', crlUrls: [URL_] });
const revoked = new X509Certificate(revokedPem.cert);
const crl = Buffer.from(makeCrl(ca, [revokedPem]));

function setup(ttlMs: number, answer: () => Buffer = () => crl) {
  const fetched: string[] = [];
  const env = { ...testEnv({ nowMs: Date.now() }), getBytes: async (url: string) => { fetched.push(url); return answer(); } };
  return { env, fetched, checker: new CrlChecker(ttlMs, 1000) };
}

describe('CrlChecker', () => {
  it('finds a revoked serial and answers from the cache without a promise once fetched', async () => {
    const { env, fetched, checker } = setup(60_000);
    assert.deepEqual(await checker.check(revoked, issuer, env), { status: 'revoked' });
    assert.deepEqual(checker.check(good, issuer, env), { status: 'good' });
    assert.deepEqual(fetched, [URL_]);
  });

  it('shares one fetch between checks made while it is in flight', async () => {
    const { env, fetched, checker } = setup(60_000);
    const all = await Promise.all([checker.check(good, issuer, env), checker.check(revoked, issuer, env), checker.check(good, issuer, env)]);
    assert.deepEqual(all.map((r) => r.status), ['good', 'revoked', 'good']);
    assert.equal(fetched.length, 1);
  });

  it('fetches again once cert_cache_ttl has passed', async () => {
    const { env, fetched, checker } = setup(1000);
    await checker.check(good, issuer, env);
    env.clock.s += 0.5;
    await checker.check(good, issuer, env);
    assert.equal(fetched.length, 1);
    env.clock.s += 0.6;
    await checker.check(good, issuer, env);
    assert.equal(fetched.length, 2);
  });

  it('keeps a CRL no longer than its nextUpdate, and refuses one past it', async () => {
    const { env, fetched, checker } = setup(30 * 86_400_000);
    await checker.check(good, issuer, env);
    env.clock.s += 2 * 86_400;
    const r = await checker.check(good, issuer, env);
    assert.equal(fetched.length, 2);
    assert.equal(r.status, 'unknown');
  });

  it('remembers a failure for a few seconds instead of retrying per request', async () => {
    const { env, fetched, checker } = setup(60_000, () => { throw new Error('connect ECONNREFUSED'); });
    const first = await checker.check(good, issuer, env);
    assert.equal(first.status, 'unknown');
    assert.match((first as { reason: string }).reason, /ECONNREFUSED/);
    assert.equal((await checker.check(good, issuer, env)).status, 'unknown');
    assert.equal(fetched.length, 1);
    env.clock.s += 6;
    await checker.check(good, issuer, env);
    assert.equal(fetched.length, 2);
  });
});
