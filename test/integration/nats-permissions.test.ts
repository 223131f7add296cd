// The NATS users of deploy/nats.conf (and the same block in deploy/kubernetes/portico.yaml), on a
// real nats-server: a CP and a DP logged in as their planes' users serve config end to end (a DP
// started cold reads the stored snapshot; a write reaches it as a push; a DP up before any CP gets
// config once one is), while the data-plane user cannot send on the CP's subjects, write or purge
// the snapshot bucket, or make streams.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { jetstreamManager } from '@nats-io/jetstream';
import { CACHE_SUBJECT, HEALTH_SUBJECT, SNAPSHOT_BUCKET, SNAPSHOT_OBJECT, SNAPSHOT_SUBJECT } from '@portico/shared';
import { admin as call, ROOT, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startNats, startPostgres, waitFor, type NatsHandle, type PgHandle } from '../harness/procs.ts';
import { dpVersion } from '../harness/stack.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';

/** The `authorization { … }` block of a NATS config text, braces balanced. */
function authorization(text: string): string {
  const start = text.indexOf('authorization {');
  assert.ok(start >= 0, 'an authorization block');
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(start, i + 1);
  }
  throw new Error('unbalanced authorization block');
}
const normalized = (block: string) => block.replace(/\$[A-Z_]*PASSWORD/g, '$PASSWORD').replace(/\s+/g, ' ');

const deployed = authorization(readFileSync(path.join(ROOT, 'deploy/nats.conf'), 'utf8'));
const PASSWORDS = { cp: 'cp-secret', dp: 'dp-secret' };
const withUser = (url: string, user: string, pass: string) => url.replace('nats://', `nats://${user}:${pass}@`);

let nats: NatsHandle; let pg: PgHandle; let upstream: Upstream; let cp: GatewayProcess;
const procs: GatewayProcess[] = [];
const conns: NatsConnection[] = [];

before(async () => {
  nats = await startNats(deployed.replace('$PORTICO_NATS_CP_PASSWORD', JSON.stringify(PASSWORDS.cp)).replace('$PORTICO_NATS_DP_PASSWORD', JSON.stringify(PASSWORDS.dp)));
  [pg, upstream] = await Promise.all([startPostgres(), startUpstream()]);
  cp = await startGateway('control-plane', { env: { DATABASE_URL: pg.url, NATS_URL: withUser(nats.url, 'portico-cp', PASSWORDS.cp) } });
  procs.push(cp);
});
after(async () => {
  for (const c of conns) await c.close().catch(() => {});
  await Promise.all(procs.map(async (g) => { await g.kill(); g.cleanup(); }));
  await Promise.all([nats?.stop(), pg?.stop(), upstream?.close()]);
});

/** An admin write; the config version it made. */
const admin = async (method: string, p: string, body?: unknown) => {
  const r = await call(cp.admin, method, p, body);
  assert.ok(r.status < 300, `${method} ${p} answered ${r.status}: ${JSON.stringify(r.body)}`);
  return Number(r.headers.get('x-portico-config-version'));
};

async function as(user: 'cp' | 'dp'): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await connect({ servers: nats.url, user: `portico-${user}`, pass: PASSWORDS[user] });
  conns.push(nc);
  const errors: string[] = [];
  void (async () => { for await (const s of nc.status()) if (s.type === 'error') errors.push(String((s as { error?: Error }).error?.message ?? s)); })();
  return { nc, errors };
}

describe('NATS users of deploy/nats.conf', () => {
  it('is the same block in the Kubernetes manifest', () => {
    const k8s = readFileSync(path.join(ROOT, 'deploy/kubernetes/portico.yaml'), 'utf8');
    assert.equal(normalized(authorization(k8s)), normalized(deployed));
  });

  it('lets a CP and a DP on their users serve config: a cold DP reads the stored snapshot, a write reaches it', async () => {
    await admin('POST', '/services', { name: 'svc', url: upstream.url });
    const v1 = await admin('POST', '/services/svc/routes', { name: 'r1', paths: ['/one'] });
    const dp = await startGateway('data-plane', { env: { NATS_URL: withUser(nats.url, 'portico-dp', PASSWORDS.dp) } });
    procs.push(dp);
    await waitFor('the DP at the stored version', async () => (await dpVersion(dp)) >= v1, 20_000, 50);
    assert.equal((await fetch(`${dp.proxy}/one`)).status, 200);
    const v2 = await admin('POST', '/services/svc/routes', { name: 'r2', paths: ['/two'] });
    await waitFor('the DP at the written version', async () => (await dpVersion(dp)) >= v2, 20_000, 20);
    assert.equal((await fetch(`${dp.proxy}/two`)).status, 200);
    // Its heartbeats reach the CP.
    await waitFor('the DP listed by the CP', async () => {
      const r = await (await fetch(`${cp.admin}/clustering/data-planes`)).json() as { data: { config_version: number }[] };
      return r.data.some((d) => d.config_version >= v2);
    }, 20_000, 100);
  });

  it('lets a DP that starts before any CP (so before the snapshot bucket exists) get config once one is up', async () => {
    const own = await startNats(deployed.replace('$PORTICO_NATS_CP_PASSWORD', JSON.stringify(PASSWORDS.cp)).replace('$PORTICO_NATS_DP_PASSWORD', JSON.stringify(PASSWORDS.dp)));
    const ownPg = await startPostgres();
    try {
      // Not ready (no config yet) until a CP is up: the bucket is the CP's to make.
      const dp = await startGateway('data-plane', { env: { NATS_URL: withUser(own.url, 'portico-dp', PASSWORDS.dp) }, waitReady: false });
      procs.push(dp);
      await waitFor('the DP listening', async () => (await fetch(`${dp.status}/status`).catch(() => null))?.ok, 20_000, 50);
      assert.equal((await fetch(`${dp.status}/status/ready`)).status, 503);
      const late = await startGateway('control-plane', { env: { DATABASE_URL: ownPg.url, NATS_URL: withUser(own.url, 'portico-cp', PASSWORDS.cp) } });
      procs.push(late);
      await call(late.admin, 'POST', '/services', { name: 'svc', url: upstream.url });
      const r = await call(late.admin, 'POST', '/services/svc/routes', { name: 'late', paths: ['/late'] });
      await waitFor('the DP at the CP\'s version', async () => (await dpVersion(dp)) >= Number(r.headers.get('x-portico-config-version')), 20_000, 50);
      assert.equal((await fetch(`${dp.proxy}/late`)).status, 200);
    } finally {
      await Promise.all([own.stop(), ownPg.stop()]);
    }
  });

  it('keeps the data-plane user off the CP\'s subjects and the snapshot bucket\'s writes', async () => {
    const watcher = await as('cp');
    const seen: string[] = [];
    for (const subject of [SNAPSHOT_SUBJECT, HEALTH_SUBJECT, CACHE_SUBJECT]) watcher.nc.subscribe(subject, { callback: (err, m) => { if (!err) seen.push(`${m.subject}:${m.string()}`); } });
    await watcher.nc.flush();
    const dp = await as('dp');
    for (const subject of [SNAPSHOT_SUBJECT, HEALTH_SUBJECT, CACHE_SUBJECT]) dp.nc.publish(subject, 'forged');
    await dp.nc.flush();
    await waitFor('a permissions error for each', async () => dp.errors.filter((e) => /permissions violation/i.test(e)).length >= 3, 5_000, 20);
    // The CP's user may send there (a positive control for the watcher).
    const ctl = await as('cp');
    ctl.nc.publish(HEALTH_SUBJECT, 'control');
    await ctl.nc.flush();
    await waitFor('the control message', async () => seen.includes(`${HEALTH_SUBJECT}:control`), 5_000, 20);
    assert.deepEqual(seen.filter((s) => s.endsWith(':forged')), [], 'nothing the data-plane user sent reached a subscriber');

    // The bucket: readable, not writable, not purgeable; no stream can be made or changed.
    const store = await new Objm(dp.nc).open(SNAPSHOT_BUCKET);
    const before = Buffer.from((await store.getBlob(SNAPSHOT_OBJECT))!);
    assert.ok(before.length > 0, 'the stored snapshot is readable');
    await assert.rejects(store.put({ name: SNAPSHOT_OBJECT }, new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1, 2, 3])); c.close(); } })));
    const jsm = await jetstreamManager(dp.nc, { timeout: 2_000 });
    await assert.rejects(jsm.streams.purge(`OBJ_${SNAPSHOT_BUCKET}`));
    await assert.rejects(jsm.streams.add({ name: 'EVIL', subjects: ['evil.>'] }));
    await assert.rejects(jsm.streams.delete(`OBJ_${SNAPSHOT_BUCKET}`));
    const after = Buffer.from((await (await new Objm((await as('cp')).nc).open(SNAPSHOT_BUCKET)).getBlob(SNAPSHOT_OBJECT))!);
    assert.ok(after.equals(before), 'the stored snapshot is unchanged');
  });
});
