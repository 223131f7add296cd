// The control channel between the planes (ARCHITECTURE.md invariant 9): NATS refuses anonymous
// clients, both planes authenticate (password in NATS_URL, or an nkey file in PORTICO_NATS_CREDS),
// and a DP applies only snapshots signed by the CP's key, from the bus and from its disk cache.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { connect, nkeys } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { configHash, emptyConfig, parseSigningKey, serviceSchema, signSnapshot } from '@portico/shared';
import { admin, startGateway, statusOf, TEST_SIGNING, type GatewayProcess } from '../harness/gateway.ts';
import { freePort, startNats, startPostgres, tmpRoot, waitFor, type NatsHandle, type PgHandle } from '../harness/procs.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { waitCached } from '../harness/stack.ts';

const USER = 'portico';
const PASS = 's3cret/with:odd@chars';
const nk = nkeys.createUser();
const nkeySeed = new TextDecoder().decode(nk.getSeed());

let pg: PgHandle; let nats: NatsHandle; let upstream: Upstream;
let cp: GatewayProcess; let dpPassword: GatewayProcess; let dpNkey: GatewayProcess;
let authedUrl: string;
const dps = () => [dpPassword, dpNkey];

async function converge(version: number): Promise<void> {
  await Promise.all(dps().map((dp) => waitFor(`DP at ${version}`, async () => (await statusOf(dp)).version >= version, 15_000)));
}

/** Publishes straight onto the bus, as an insider holding NATS credentials but not the signing key. */
async function putSnapshot(bytes: Uint8Array, version: number): Promise<void> {
  const nc = await connect({ servers: nats.url, user: USER, pass: PASS });
  const os = await new Objm(nc).create('portico_config');
  await os.putBlob({ name: 'snapshot', metadata: { version: String(version), hash: 'f'.repeat(64) } }, bytes);
  await nc.close();
}

/** A well-formed snapshot (right hash) that sends every request elsewhere. */
function hostileSnapshot(version: number): Uint8Array {
  const config = emptyConfig();
  config.services.push(serviceSchema.parse({ id: '00000000-0000-4000-8000-00000000aaaa', created_at: 1, updated_at: 1, name: 'evil', host: '127.0.0.1', port: 9 }));
  return gzipSync(JSON.stringify({ version, hash: configHash(config), built_at: 1, config }));
}

before(async () => {
  const dir = tmpRoot();
  const nkeyFile = path.join(dir, 'dp.nk');
  writeFileSync(nkeyFile, nkeySeed + '\n', { mode: 0o600 });
  [pg, upstream] = await Promise.all([startPostgres(), startUpstream()]);
  nats = await startNats(`authorization { users = [ { user: "${USER}", password: "${PASS}" }, { nkey: "${nk.getPublicKey()}" } ] }`);
  const port = new URL(nats.url).port;
  authedUrl = `nats://${encodeURIComponent(USER)}:${encodeURIComponent(PASS)}@127.0.0.1:${port}`;
  cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: authedUrl } });
  dpPassword = await startGateway('data-plane', { env: { NATS_URL: authedUrl } });
  dpNkey = await startGateway('data-plane', { env: { NATS_URL: nats.url, PORTICO_NATS_CREDS: nkeyFile } });
  await admin(cp.admin, 'POST', '/services', { name: 'svc', url: upstream.url });
  const r = await admin(cp.admin, 'POST', '/services/svc/routes', { name: 'r', paths: ['/r'] });
  await converge(Number(r.headers.get('x-portico-config-version')));
});
after(async () => {
  for (const g of [cp, dpPassword, dpNkey]) { await g?.kill(); g?.cleanup(); }
  await Promise.all([pg?.stop(), nats?.stop(), upstream?.close()]);
});

describe('NATS authentication', () => {
  it('refuses anonymous clients and clients with a wrong password', async () => {
    await assert.rejects(connect({ servers: nats.url, reconnect: false }), /Authorization/i);
    await assert.rejects(connect({ servers: nats.url, user: USER, pass: 'wrong', reconnect: false }), /Authorization/i);
  });

  it('carries config to DPs that authenticate with a password in NATS_URL or an nkey file', async () => {
    for (const dp of dps()) assert.equal((await fetch(dp.proxy + '/r/x')).status, 200);
    const list = await admin(cp.admin, 'GET', '/clustering/data-planes');
    assert.equal(list.body.data.length, 2, 'both DPs heartbeat through the authenticated bus');
  });

  it('stops a DP whose PORTICO_NATS_CREDS is unreadable or not a creds/nkey file with exit 2, naming the variable', async () => {
    for (const [value, message] of [['/nonexistent/creds', /PORTICO_NATS_CREDS: cannot read/], [path.join(tmpRoot(), 'x'), /PORTICO_NATS_CREDS/]] as const) {
      if (!value.startsWith('/nonexistent')) writeFileSync(value, 'not a credential\n');
      const g = await startGateway('data-plane', { env: { NATS_URL: nats.url, PORTICO_NATS_CREDS: value }, waitReady: false });
      const code = await new Promise<number | null>((r) => g.proc.exitCode !== null ? r(g.proc.exitCode) : g.proc.once('exit', r));
      assert.equal(code, 2);
      assert.match(g.logs(), message);
      g.cleanup();
    }
  });
});

describe('signed snapshots', () => {
  it('has every DP refuse a snapshot signed with another key, and one not signed at all, while the old config serves', async () => {
    const before = await statusOf(dpPassword);
    const other = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    await putSnapshot(signSnapshot(hostileSnapshot(before.version + 100), parseSigningKey(other)), before.version + 100);
    for (const dp of dps()) {
      const st = await waitFor('the DP reports the forged snapshot', async () => { const c = await statusOf(dp); return c.last_error ? c : undefined; });
      assert.match(st.last_error!, /untrusted key/);
      assert.equal(st.version, before.version);
      assert.equal((await fetch(dp.proxy + '/r/x')).status, 200);
    }
    await putSnapshot(hostileSnapshot(before.version + 200), before.version + 200);
    for (const dp of dps()) {
      const st = await waitFor('the DP reports the unsigned snapshot', async () => { const c = await statusOf(dp); return /not signed/.test(c.last_error ?? '') ? c : undefined; });
      assert.equal(st.version, before.version);
      assert.equal((await fetch(dp.proxy + '/r/x')).status, 200);
    }
    const listed = await waitFor('the CP lists why', async () => {
      const l = await admin(cp.admin, 'GET', '/clustering/data-planes');
      return l.body.data.filter((d: any) => /not signed/.test(d.last_error ?? '')).length === 2 ? l : undefined;
    });
    assert.equal(listed.body.data.length, 2);
    // A real write from the CP (signed) heals every node.
    const r = await admin(cp.admin, 'POST', '/services/svc/routes', { name: 'heal', paths: ['/heal'] });
    await converge(Number(r.headers.get('x-portico-config-version')));
    for (const dp of dps()) {
      assert.equal((await statusOf(dp)).last_error, null);
      assert.equal((await fetch(dp.proxy + '/heal')).status, 200);
    }
  });

  it('refuses an unsigned disk cache at a cold start while NATS is unreachable', async () => {
    const dataDir = tmpRoot();
    const warm = await startGateway('data-plane', { env: { NATS_URL: authedUrl }, dataDir });
    const v = (await statusOf(dpPassword)).version;
    await waitFor('the new DP applied the config', async () => (await statusOf(warm)).version >= v);
    await waitCached(warm, v);
    await warm.kill();
    const cacheFile = path.join(dataDir, 'snapshot.signed');
    const signed = readFileSync(cacheFile);
    // Strip the signature envelope (4 + 8 + 64 bytes): the bytes inside are a valid snapshot.
    writeFileSync(cacheFile, signed.subarray(76));
    const deadBus = `nats://127.0.0.1:${await freePort()}`;
    const cold = await startGateway('data-plane', { env: { NATS_URL: deadBus }, dataDir, waitReady: false });
    const st = await waitFor('the cold DP reports its cache', async () => { const c = await statusOf(cold); return c.last_error ? c : undefined; });
    assert.match(st.last_error!, /not signed/);
    assert.equal(st.version, 0);
    assert.equal((await fetch(cold.status + '/status/ready')).status, 503);
    await cold.kill();
    // The same cache, signed, serves at a cold start with the bus down.
    writeFileSync(cacheFile, signed);
    const again = await startGateway('data-plane', { env: { NATS_URL: deadBus }, dataDir });
    assert.equal((await fetch(again.proxy + '/r/x')).status, 200);
    await again.kill(); again.cleanup();
  });

  it('stops a split CP without PORTICO_SIGNING_KEY and a DP without PORTICO_SIGNING_PUBLIC_KEYS with exit 2', async () => {
    for (const [role, variable] of [['control-plane', 'PORTICO_SIGNING_KEY'], ['data-plane', 'PORTICO_SIGNING_PUBLIC_KEYS']] as const) {
      const g = await startGateway(role, { env: { NATS_URL: authedUrl, DATABASE_URL: pg.url, [variable]: undefined }, waitReady: false });
      const code = await new Promise<number | null>((r) => g.proc.exitCode !== null ? r(g.proc.exitCode) : g.proc.once('exit', r));
      assert.equal(code, 2);
      assert.match(g.logs(), new RegExp(`${variable} is required`));
      g.cleanup();
    }
    const bad = await startGateway('data-plane', { env: { NATS_URL: authedUrl, PORTICO_SIGNING_PUBLIC_KEYS: TEST_SIGNING.privateKey.replace('PRIVATE', 'PUBLIC') }, waitReady: false });
    assert.equal(await new Promise((r) => bad.proc.exitCode !== null ? r(bad.proc.exitCode) : bad.proc.once('exit', r)), 2);
    assert.match(bad.logs(), /PORTICO_SIGNING_PUBLIC_KEYS/);
    bad.cleanup();
  });
});

describe('NATS over TLS', () => {
  it('connects both planes to a TLS-only NATS through tls:// checked against PORTICO_NATS_TLS_CA', async () => {
    const dir = tmpRoot();
    const f = (n: string) => path.join(dir, n);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=portico test CA', '-keyout', f('ca.key'), '-out', f('ca.pem'));
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('nats.key'), '-out', f('nats.csr'));
    writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl('x509', '-req', '-in', f('nats.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext'), '-out', f('nats.pem'));
    const tlsNats = await startNats(`tls { cert_file: "${f('nats.pem')}", key_file: "${f('nats.key')}" }\nauthorization { user: "${USER}", password: "${PASS}" }`);
    const url = `tls://${encodeURIComponent(USER)}:${encodeURIComponent(PASS)}@127.0.0.1:${new URL(tlsNats.url).port}`;
    const pg2 = await startPostgres();
    const gws: GatewayProcess[] = [];
    try {
      // Without TLS the server refuses the client.
      await assert.rejects(connect({ servers: tlsNats.url, user: USER, pass: PASS, reconnect: false, tls: null }));
      const cp2 = await startGateway('control-plane', { env: { DATABASE_URL: pg2.url, NATS_URL: url, PORTICO_NATS_TLS_CA: f('ca.pem') } });
      const dp2 = await startGateway('data-plane', { env: { NATS_URL: url, PORTICO_NATS_TLS_CA: f('ca.pem') } });
      gws.push(cp2, dp2);
      await admin(cp2.admin, 'POST', '/services', { name: 'svc', url: upstream.url });
      const r = await admin(cp2.admin, 'POST', '/services/svc/routes', { name: 'r', paths: ['/tls'] });
      const v = Number(r.headers.get('x-portico-config-version'));
      await waitFor('the DP applied over TLS', async () => (await statusOf(dp2)).version >= v, 15_000);
      assert.equal((await fetch(dp2.proxy + '/tls/x')).status, 200);
    } finally {
      for (const g of gws) { await g.kill(); g.cleanup(); }
      await Promise.all([tlsNats.stop(), pg2.stop()]);
    }
  });
});
