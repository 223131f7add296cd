// Hybrid mode through real processes: one CP, two DPs, NATS and Postgres that tests kill and
// restart (ARCHITECTURE.md invariants 2–6).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { getPriority } from 'node:os';
import path from 'node:path';
import { configHash, emptyConfig, encodeSnapshot, parseSigningKey, routeSchema, signSnapshot } from '@portico/shared';
import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import pg from 'pg';
import { startStack, dpVersion, waitCached, type Stack } from '../harness/stack.ts';
import { ROOT, startGateway, statusOf, TEST_SIGNING, type GatewayProcess } from '../harness/gateway.ts';
import { freePort, startNats, tmpRoot, waitFor } from '../harness/procs.ts';

let s: Stack;
const hashes = async (dps: GatewayProcess[]) => Promise.all(dps.map(async (d) => (await statusOf(d)).hash));
const cpLatest = async () => (await s.A('GET', '/status')).body.configuration as { version: number; hash: string; size_bytes: number };
const proxied = async (dp: GatewayProcess, path: string) => (await fetch(dp.proxy + path)).status;

before(async () => {
  // A 64 KB max_payload makes any real snapshot span several NATS messages.
  s = await startStack({ dps: 2, natsConfig: 'max_payload: 65536' });
  await s.write('POST', '/services', { name: 'svc', url: s.upstream.url });
  await s.write('POST', '/services/svc/routes', { name: 'r0', paths: ['/r0'] });
});
after(async () => { await s?.stop(); });

/** Each thread's nice value (/proc/…/task/…/stat, field 19); a thread that ends meanwhile is left out. */
const niceOf = (pid: number) => readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
  try {
    const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return [Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16])];
  } catch { return []; }
});
/** What the tests were started at (`nice npm test`): the processes they start inherit it. */
const started = getPriority();

describe('scheduling', () => {
  it('runs the CP below the proxy\'s priority: every CP thread at nice 10 (PORTICO_CP_NICE), the DPs\' main threads as started', async () => {
    const cp = niceOf(s.cp.proc.pid!);
    assert.ok(cp.length > 3, `${cp.length} CP threads`);
    assert.deepEqual([...new Set(cp)], [Math.max(10, started)]);
    for (const dp of s.dps) assert.equal(niceOf(dp.proc.pid!)[0], started);
  });

  it('PORTICO_CP_NICE=0 leaves the CP as started; an invalid value stops it with a clear error', async () => {
    const dbUrl = s.pg.url;
    const plain = await startGateway('control-plane', { env: { DATABASE_URL: dbUrl, NATS_URL: s.nats.url, PORTICO_CP_NICE: '0' } });
    try {
      assert.deepEqual([...new Set(niceOf(plain.proc.pid!))], [started]);
    } finally {
      await plain.kill(); plain.cleanup();
    }
    const bad = spawnSync(process.execPath, [path.join(ROOT, 'control-plane/dist/main.mjs')], { env: { ...process.env, DATABASE_URL: dbUrl, NATS_URL: s.nats.url, PORTICO_CP_NICE: '25' }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /PORTICO_CP_NICE/);
  });
});

describe('config distribution', () => {
  it('brings both DPs to the CP\'s hash after writes', async () => {
    await s.write('POST', '/services/svc/routes', { name: 'r1', paths: ['/r1'] });
    const latest = await cpLatest();
    await s.converge(latest.version);
    assert.deepEqual(await hashes(s.dps), [latest.hash, latest.hash]);
    for (const dp of s.dps) assert.equal(await proxied(dp, '/r1/x'), 200);
  });

  it('ends 100 parallel writes with every DP on the CP\'s latest hash, coalesced into fewer snapshots', async () => {
    const before = await cpLatest();
    const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => s.A('POST', '/services/svc/routes', { name: `p${i}`, paths: [`/p${i}`] })));
    assert.ok(rs.every((r) => r.status === 201));
    const top = Math.max(...rs.map((r) => Number(r.headers.get('x-portico-config-version'))));
    assert.equal(top, before.version + 100, 'each write took its own version');
    await s.converge(top);
    const latest = await cpLatest();
    assert.equal(latest.version, top);
    assert.deepEqual(await hashes(s.dps), [latest.hash, latest.hash]);
    const applied = s.dps[0].logs().split('\n').filter((l) => l.includes('"config applied"')).length;
    assert.ok(applied < 100, `writes coalesced: DP applied ${applied} snapshots for 100+ writes`);
    for (const dp of s.dps) assert.equal(await proxied(dp, '/p99'), 200);
  });

  it('lists every DP in /clustering/data-planes with Kong\'s fields and its config version', async () => {
    const latest = await cpLatest();
    const r = await waitFor('both DPs reported in sync', async () => {
      const list = await s.A('GET', '/clustering/data-planes');
      return list.body.data.filter((d: any) => d.config_hash === latest.hash).length === 2 ? list : undefined;
    });
    assert.equal(r.body.next, null);
    for (const dp of r.body.data) {
      for (const f of ['id', 'ip', 'hostname', 'version', 'config_hash', 'last_seen', 'sync_status', 'ttl']) assert.ok(f in dp, f);
      assert.equal(dp.config_version, latest.version);
      assert.equal(dp.config_status, 'in_sync');
      assert.equal(dp.last_error, null);
    }
  });

  it('rejects a corrupt snapshot on the bus, reports it, and keeps serving the old config', async () => {
    const nc = await connect({ servers: s.nats.url });
    const os = await new Objm(nc).create('portico_config');
    const before = await dpVersion(s.dps[0]);
    // Signed with the CP's key, so what is refused is the content itself.
    const bogus = signSnapshot(gzipSync(JSON.stringify({ version: before + 1000, hash: 'f'.repeat(64), built_at: 0, config: emptyConfig() })), parseSigningKey(TEST_SIGNING.privateKey));
    await os.putBlob({ name: 'snapshot', metadata: { version: String(before + 1000), hash: 'f'.repeat(64) } }, bogus);
    await nc.close();
    const st = await waitFor('DP reports the rejection', async () => {
      const c = await statusOf(s.dps[0]);
      return c.last_error ? c : undefined;
    });
    assert.match(st.last_error!, /hash mismatch/);
    assert.equal(st.version, before);
    assert.equal(await proxied(s.dps[0], '/r1'), 200);
    const reported = await waitFor('CP shows the error', async () => {
      const list = await s.A('GET', '/clustering/data-planes');
      return list.body.data.find((d: any) => d.last_error);
    });
    assert.match(reported.last_error, /hash mismatch/);
    // The next real write heals it.
    await s.write('POST', '/services/svc/routes', { name: 'heal', paths: ['/heal'] });
    assert.equal((await statusOf(s.dps[0])).last_error, null);
  });
});

describe('rejected snapshots', () => {
  it('fetches a rejected snapshot once, reports its long error truncated, and keeps serving', async () => {
    const dp = s.dps[0];
    const rejections = () => dp.logs().split('\n').filter((l) => l.includes('config snapshot rejected')).length;
    const before = { version: await dpVersion(dp), rejections: rejections() };
    const nc = await connect({ servers: s.nats.url });
    const os = await new Objm(nc).create('portico_config');
    // Signed, but holding a route the admin API would refuse: the error quotes the 3,000-character pattern.
    const route = { ...routeSchema.parse({ id: '00000000-0000-4000-8000-0000000000f1', created_at: 0, updated_at: 0, paths: ['/x'] }), paths: ['~/(a)\\1' + 'k'.repeat(3_000)] };
    const config = { ...emptyConfig(), routes: [route] };
    const version = before.version + 1000;
    const bogus = signSnapshot(encodeSnapshot({ version, hash: configHash(config), built_at: 0, config }), parseSigningKey(TEST_SIGNING.privateKey));
    await os.putBlob({ name: 'snapshot', metadata: { version: String(version), hash: configHash(config) } }, bogus);
    await nc.close();
    const reported = await waitFor('the CP lists the DP with its error', async () => {
      const list = await s.A('GET', '/clustering/data-planes');
      return list.body.data.find((d: any) => d.last_error?.includes('kkkk'));
    });
    assert.ok(reported.last_error.length <= 1_000, `last_error is ${reported.last_error.length} characters`);
    // Three periodic rechecks (every 3 s) later, it was still fetched and rejected only once.
    await new Promise((r) => setTimeout(r, 10_000));
    assert.equal(rejections(), before.rejections + 1);
    assert.equal(await dpVersion(dp), before.version);
    assert.equal(await proxied(dp, '/r1'), 200);
    await s.write('POST', '/services/svc/routes', { name: 'heal2', paths: ['/heal2'] });
    assert.equal((await statusOf(dp)).last_error, null);
  });
});

describe('bad messages on the bus', () => {
  it('records a heartbeat whose last_error or hostname is over-long, clipped rather than dropped', async () => {
    const id = '00000000-0000-4000-8000-0000000000aa';
    const nc = await connect({ servers: s.nats.url });
    nc.publish('portico.dp.heartbeat', JSON.stringify({ id, hostname: 'h'.repeat(1_000), ip: '1.2.3.4', version: '0.1.0', config_version: 1, config_hash: 'a'.repeat(64), last_error: 'e'.repeat(50_000), status: 'ready', started_at: 0 }));
    await nc.flush();
    await nc.close();
    const dp = await waitFor('the CP lists the node', async () => (await s.A('GET', '/clustering/data-planes')).body.data.find((d: any) => d.id === id));
    assert.equal(dp.last_error.length, 1_000);
    assert.equal(dp.hostname.length, 255);
  });

  it('answers 404, not 500, to an upstream health read whose name holds an escaped %', async () => {
    const r = await fetch(`${s.dps[0].status}/upstreams/%25/health`);
    assert.equal(r.status, 404);
  });

  it('ignores malformed heartbeats, logging why, and lists nothing new', async () => {
    const before = (await s.A('GET', '/clustering/data-planes')).body.data.length;
    const nc = await connect({ servers: s.nats.url });
    nc.publish('portico.dp.heartbeat', 'not json');
    nc.publish('portico.dp.heartbeat', JSON.stringify({ id: 'not-a-uuid', hostname: 'x' }));
    nc.publish('portico.dp.heartbeat', JSON.stringify({ id: '00000000-0000-4000-8000-000000000099', hostname: 'h', ip: '1.2.3.4', version: '1', config_version: -5, config_hash: 'x', last_error: null, status: 'ready', started_at: 0 }));
    await nc.flush();
    await nc.close();
    await waitFor('the CP logs the rejected heartbeats', async () => s.cp.logs().includes('invalid data-plane heartbeat ignored') && s.cp.logs().includes('heartbeat is not JSON'));
    assert.equal((await s.A('GET', '/clustering/data-planes')).body.data.length, before);
  });
});

describe('failures', () => {
  it('keeps serving with NATS down, and delivers writes made meanwhile once NATS is back', async () => {
    await s.nats.service.kill();
    for (const dp of s.dps) assert.equal(await proxied(dp, '/r1'), 200);
    const w = await s.A('POST', '/services/svc/routes', { name: 'during-outage', paths: ['/outage'] });
    assert.equal(w.status, 201, 'the admin API keeps taking writes');
    await s.nats.service.start();
    await s.converge(Number(w.headers.get('x-portico-config-version')));
    for (const dp of s.dps) assert.equal(await proxied(dp, '/outage'), 200);
    await s.write('POST', '/services/svc/routes', { name: 'after-outage', paths: ['/after'] });
    for (const dp of s.dps) assert.equal(await proxied(dp, '/after'), 200);
  });

  it('cold-starts a DP from its disk cache while the CP and NATS are both down', async () => {
    const dp = s.dps[1];
    const version = await dpVersion(dp);
    await waitCached(dp, version);
    await s.cp.kill();
    await s.nats.service.kill();
    await dp.kill();
    const restarted = await startGateway('data-plane', { env: { NATS_URL: s.nats.url }, dataDir: dp.dataDir });
    s.dps[1] = restarted;
    assert.equal(await dpVersion(restarted), version);
    assert.equal(await proxied(restarted, '/after'), 200);
    const ready = await fetch(`${restarted.status}/status/ready`);
    assert.equal(ready.status, 200);
    await s.nats.service.start();
    await s.cp.start();
    await s.write('POST', '/services/svc/routes', { name: 'back', paths: ['/back'] });
    for (const d of s.dps) assert.equal(await proxied(d, '/back'), 200);
  });
});

describe('starting while NATS is down', () => {
  it('cold-starts a DP from a disk cache, drains and exits 0 on SIGTERM, and reports once NATS is back', async () => {
    const version = await dpVersion(s.dps[0]);
    await waitCached(s.dps[0], version);
    const dataDir = tmpRoot();
    copyFileSync(path.join(s.dps[0].dataDir, 'snapshot.signed'), path.join(dataDir, 'snapshot.signed'));
    await s.nats.service.kill();
    try {
      const first = await startGateway('data-plane', { env: { NATS_URL: s.nats.url }, dataDir });
      assert.equal(await dpVersion(first), version);
      assert.equal(await proxied(first, '/r1'), 200);
      assert.equal(await first.stop(), 0, 'SIGTERM drains and exits 0 without NATS');
      const second = await startGateway('data-plane', { env: { NATS_URL: s.nats.url }, dataDir });
      try {
        await s.nats.service.start();
        const nodeId = readFileSync(path.join(dataDir, 'node_id'), 'utf8').trim();
        const listed = await waitFor('the CP lists the cold-started DP', async () => {
          const list = await s.A('GET', '/clustering/data-planes');
          return list.body.data.find((d: any) => d.id === nodeId && d.status === 'ready');
        }, 20_000, 200);
        assert.equal(listed.config_version >= version, true);
      } finally {
        await second.kill();
        second.cleanup();
      }
    } finally {
      if (!s.nats.service.proc) await s.nats.service.start();
    }
  });
});

describe('control planes', () => {
  it('serves the admin API while NATS is unreachable, and exits 0 on SIGTERM', async () => {
    const cp = await startGateway('control-plane', { env: { DATABASE_URL: s.pg.url, NATS_URL: `nats://127.0.0.1:${await freePort()}` } });
    try {
      assert.equal((await fetch(`${cp.admin}/services/svc`)).status, 200);
      assert.equal(await cp.stop(), 0);
    } finally {
      await cp.kill();
      cp.cleanup();
    }
  });


  it('lets several CPs start at once on an empty database (migrations under an advisory lock)', async () => {
    const client = new pg.Client({ connectionString: s.pg.url });
    await client.connect();
    await client.query('CREATE DATABASE fresh');
    await client.end();
    const url = s.pg.url.replace(/\/postgres$/, '/fresh');
    const nats = await startNats();
    const cps = await Promise.all([0, 1, 2].map(() => startGateway('control-plane', { env: { DATABASE_URL: url, NATS_URL: nats.url } })));
    try {
      const r = await s.A('GET', '/status');
      assert.equal(r.status, 200);
      for (const cp of cps) assert.equal((await fetch(`${cp.admin}/services`)).status, 200);
      const w = await fetch(`${cps[0].admin}/services`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', host: 'x.test' }) });
      assert.equal(w.status, 201);
      assert.equal((await fetch(`${cps[1].admin}/services/x`)).status, 200, 'CPs share one database');
    } finally {
      await Promise.all(cps.map(async (cp) => { await cp.kill(); cp.cleanup(); }));
      await nats.stop();
    }
  });
});

describe('scale', () => {
  it('distributes 10,000 routes (a snapshot far over max_payload) and routes to the last one', async () => {
    const client = new pg.Client({ connectionString: s.pg.url });
    await client.connect();
    const svc = (await s.A('GET', '/services/svc')).body;
    await client.query(`
      INSERT INTO routes (id, created_at, updated_at, name, protocols, paths, https_redirect_status_code, regex_priority,
        strip_path, path_handling, preserve_host, request_buffering, response_buffering, service_id)
      SELECT gen_random_uuid(), 0, 0, 'bulk-' || i, ARRAY['http','https'], ARRAY['/bulk/' || i || '/items'], 426, 0,
        true, 'v0', false, true, true, $1
      FROM generate_series(1, 10000) AS i`, [svc.id]);
    await client.end();
    await s.write('POST', '/services/svc/routes', { name: 'trigger', paths: ['/trigger'] });
    const latest = await cpLatest();
    assert.ok(latest.size_bytes > 65536 * 4, `compressed snapshot is ${latest.size_bytes} bytes`);
    for (const dp of s.dps) {
      assert.equal(await proxied(dp, '/bulk/10000/items'), 200);
      assert.equal(await proxied(dp, '/bulk/5000/items/x'), 200);
    }
  });
});
