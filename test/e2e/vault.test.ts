// Vault references (issue 10): a secret written as `{vault://env/NAME}` is resolved on each DP from
// its own environment, so it never enters Postgres, snapshots or the disk cache; a reference a node
// cannot resolve is reported as an apply error while the old config keeps serving.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { openSnapshot, parsePublicKeys } from '@portico/shared';
import { startStack, waitCached, type Stack } from '../harness/stack.ts';
import { statusOf, TEST_SIGNING } from '../harness/gateway.ts';
import { waitFor } from '../harness/procs.ts';

const SECRET = 'hmac-secret-only-in-the-dp-environment';
let s: Stack;

function hs256(claims: Record<string, unknown>, secret: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

before(async () => {
  s = await startStack({ dps: 1, dpEnv: { PORTICO_VAULT_TEST_JWT_SECRET: SECRET, PORTICO_ADMIN_TOKEN: 'dp-side-token-never-readable' } });
  await s.A('POST', '/services', { name: 'svc', url: s.upstream.url });
  await s.A('POST', '/services/svc/routes', { name: 'r', paths: ['/jwt'] });
  await s.A('POST', '/routes/r/plugins', { name: 'jwt' });
  await s.A('POST', '/consumers', { username: 'vaulted' });
  await s.write('POST', '/consumers/vaulted/jwt', { key: 'vault-iss', secret: '{vault://env/test-jwt-secret}' });
});
after(async () => { await s?.stop(); });

describe('vault references', () => {
  it('verifies tokens with a secret that only the DP\'s environment holds', async () => {
    assert.equal((await fetch(s.dps[0].proxy + '/jwt', { headers: { Authorization: `Bearer ${hs256({ iss: 'vault-iss' }, SECRET)}` } })).status, 200);
    assert.equal((await fetch(s.dps[0].proxy + '/jwt', { headers: { Authorization: `Bearer ${hs256({ iss: 'vault-iss' }, '{vault://env/test-jwt-secret}')}` } })).status, 401);
    const db = new pg.Client({ connectionString: s.pg.url });
    await db.connect();
    const rows = await db.query('SELECT secret FROM jwt_secrets');
    await db.end();
    assert.deepEqual(rows.rows.map((r) => r.secret), ['{vault://env/test-jwt-secret}']);
    await waitCached(s.dps[0]);
    const cached = gunzipSync(await openSnapshot(readFileSync(path.join(s.dps[0].dataDir, 'snapshot.signed')), parsePublicKeys(TEST_SIGNING.publicKey))).toString();
    assert.ok(!cached.includes(SECRET), 'the disk cache holds the reference, not the secret');
  });

  it('resolves references only in fields marked referenceable, and never the node\'s own settings', async () => {
    // A request-termination body is data: a reference there is sent as written.
    await s.A('POST', '/services/svc/routes', { name: 'lit', paths: ['/lit'] });
    await s.write('POST', '/routes/lit/plugins', { name: 'request-termination', config: { status_code: 200, body: '{vault://env/test-jwt-secret}', content_type: 'text/plain' } });
    const lit = await fetch(s.dps[0].proxy + '/lit');
    assert.equal(await lit.text(), '{vault://env/test-jwt-secret}');
    // A referenceable field reads PORTICO_VAULT_* only: PORTICO_ADMIN_TOKEN is out of reach.
    const before = await statusOf(s.dps[0]);
    await s.A('POST', '/consumers/vaulted/jwt', { key: 'steal-iss', secret: '{vault://env/portico-admin-token}' });
    const st = await waitFor('the DP refuses the reference', async () => { const c = await statusOf(s.dps[0]); return c.last_error ? c : undefined; });
    assert.match(st.last_error!, /PORTICO_VAULT_PORTICO_ADMIN_TOKEN is not set/);
    assert.equal(st.version, before.version);
    const stolen = (await s.A('GET', '/consumers/vaulted/jwt')).body.data.find((j: any) => j.key === 'steal-iss');
    await s.write('DELETE', `/consumers/vaulted/jwt/${stolen.id}`);
  });

  it('refuses a malformed reference at write time', async () => {
    const r = await s.A('POST', '/consumers/vaulted/jwt', { key: 'bad-ref', secret: '{vault://env/}' });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body.fields), /not a vault reference/);
    const other = await s.A('POST', '/consumers/vaulted/jwt', { key: 'aws-ref', secret: '{vault://aws/x}' });
    assert.equal(other.status, 400);
  });

  it('reports a reference the DP cannot resolve as an apply error, and keeps serving the old config', async () => {
    const before = await statusOf(s.dps[0]);
    const r = await s.A('POST', '/consumers/vaulted/jwt', { key: 'missing-iss', secret: '{vault://env/not-set-anywhere}' });
    assert.equal(r.status, 201);
    const st = await waitFor('the DP reports the unresolvable reference', async () => { const c = await statusOf(s.dps[0]); return c.last_error ? c : undefined; });
    assert.match(st.last_error!, /secret: \{vault:\/\/env\/not-set-anywhere\}: environment variable PORTICO_VAULT_NOT_SET_ANYWHERE is not set on this node/);
    assert.equal(st.version, before.version);
    assert.equal((await fetch(s.dps[0].proxy + '/jwt', { headers: { Authorization: `Bearer ${hs256({ iss: 'vault-iss' }, SECRET)}` } })).status, 200);
  });
});
