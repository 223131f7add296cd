// One DP node as a primary and two worker processes (PORTICO_WORKERS=2, node:cluster), through
// real processes: one port served by both workers, config applied by each and reported per
// worker, node-wide local rate limits, health shared between workers, a killed worker replaced,
// a drain on SIGTERM, a cold start from the disk cache with NATS down, and bad values refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { startStack, type Stack } from '../harness/stack.ts';
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { freePort, waitFor } from '../harness/procs.ts';

interface WorkerStatus { id: number; pid: number; config_version: number; status: string; total_requests: number }
interface NodeStatus { configuration: { version: number; hash: string }; workers: WorkerStatus[] }

let s: Stack;
let dp: GatewayProcess;
const ups: Upstream[] = [];

const nodeStatus = async (g = dp): Promise<NodeStatus> => (await fetch(`${g.status}/status`)).json() as Promise<NodeStatus>;
const cpLatest = async () => (await s.A('GET', '/status')).body.configuration as { version: number; hash: string };

/** One request on a connection of its own, so node:cluster hands each to the next worker. */
function fresh(path: string, g = dp): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http.get(`${g.proxy}${path}`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => { body += d; }).on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    }).on('error', reject);
  });
}
async function sequential(n: number, path: string, g = dp) {
  const out: { status: number; body: string }[] = [];
  for (let i = 0; i < n; i++) out.push(await fresh(path, g));
  return out;
}
/** Requests each worker served since `before`, by pid. */
async function servedSince(before: NodeStatus): Promise<number[]> {
  const now = await nodeStatus();
  return now.workers.map((w) => w.total_requests - (before.workers.find((b) => b.pid === w.pid)?.total_requests ?? 0));
}
/** Both workers ready at `version` (a restarted one included). */
const bothAt = (version: number, g = dp) => waitFor(`both workers at version ${version}`, async () => {
  const st = await nodeStatus(g);
  return st.workers.length === 2 && st.workers.every((w) => w.status === 'ready' && w.config_version >= version) ? st : undefined;
}, 20_000, 50);

before(async () => {
  s = await startStack({ dps: 1, dpEnv: { PORTICO_WORKERS: '2' } });
  dp = s.dps[0];
  await s.write('POST', '/services', { name: 'svc', url: s.upstream.url });
  await s.write('POST', '/services/svc/routes', { name: 'r0', paths: ['/r0'] });
});
after(async () => { await s?.stop(); await Promise.all(ups.map((u) => u.close().catch(() => {}))); });

describe('a DP node with PORTICO_WORKERS=2', () => {
  it('serves one port from two worker processes, each listed in /status', async () => {
    const st = await bothAt((await cpLatest()).version);
    const pids = st.workers.map((w) => w.pid);
    assert.equal(new Set(pids).size, 2);
    assert.ok(!pids.includes(dp.proc.pid!), 'the workers are not the primary');
    const results = await sequential(20, '/r0');
    assert.ok(results.every((r) => r.status === 200));
    const served = await servedSince(st);
    assert.ok(served.every((n) => n > 0), `every worker served requests: ${served}`);
    // The TLS listener is shared the same way.
    const tls = await Promise.all([0, 1].map(() => new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: dp.proxyTlsPort, path: '/r0', agent: false, rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode!); }).on('error', reject);
    })));
    assert.deepEqual(tls, [200, 200]);
    // /metrics: every worker's series, labelled by worker.
    const metrics = await (await fetch(`${dp.status}/metrics`)).text();
    const labelled = new Set([...metrics.matchAll(/^kong_nginx_requests_total\{worker="(\d+)"/gm)].map((m) => m[1]));
    assert.equal(labelled.size, 2, metrics.slice(0, 2000));
  });

  it('applies a config write in every worker, and reports the node in sync only once all have', async () => {
    const st = await bothAt((await cpLatest()).version);
    const [held, other] = st.workers;
    // A stopped worker cannot apply: the node must report its older version meanwhile.
    process.kill(held.pid, 'SIGSTOP');
    try {
      const r = await s.A('POST', '/services/svc/routes', { name: 'r1', paths: ['/r1'] });
      const v = Number(r.headers.get('x-portico-config-version'));
      await waitFor('the running worker applied it', async () => {
        const hb = (await s.A('GET', '/clustering/data-planes')).body.data[0];
        return hb?.workers?.find((w: { pid: number }) => w.pid === other.pid)?.config_version === v ? hb : undefined;
      });
      const listed = (await s.A('GET', '/clustering/data-planes')).body.data[0];
      assert.equal(listed.config_version, st.configuration.version, 'the node reports its least advanced worker');
      assert.equal(listed.config_status, 'behind');
      assert.deepEqual(listed.workers.map((w: { pid: number; config_version: number }) => [w.pid, w.config_version]).sort(),
        [[held.pid, st.configuration.version], [other.pid, v]].sort());
      assert.equal((await fetch(`${dp.status}/status`).then((x) => x.json()) as NodeStatus).configuration.version, st.configuration.version);
      process.kill(held.pid, 'SIGCONT');
      await bothAt(v);
      const synced = await waitFor('the node in sync', async () => {
        const hb = (await s.A('GET', '/clustering/data-planes')).body.data[0];
        return hb.config_status === 'in_sync' ? hb : undefined;
      });
      assert.equal(synced.config_version, v);
      assert.ok(synced.workers.every((w: { config_version: number }) => w.config_version === v));
    } finally {
      process.kill(held.pid, 'SIGCONT');
    }
  });

  it('holds a local rate limit of N to N for the node, across both workers', async () => {
    await s.A('POST', '/services/svc/routes', { name: 'limited', paths: ['/limited'] });
    await s.write('POST', '/routes/limited/plugins', { name: 'rate-limiting', config: { day: 5, policy: 'local', limit_by: 'ip' } });
    const before = await nodeStatus();
    const results = await sequential(12, '/limited');
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
    assert.ok((await servedSince(before)).every((n) => n >= 5), 'both workers took requests');
  });

  it('shares a passive health trip learned by one worker with the other', async () => {
    const [bad, good] = [await startUpstream(), await startUpstream()];
    ups.push(bad, good);
    bad.mode.status = 500;
    await s.A('POST', '/upstreams', { name: 'shared.internal', healthchecks: { passive: { unhealthy: { http_failures: 1 } } } });
    for (const u of [bad, good]) await s.A('POST', '/upstreams/shared.internal/targets', { target: `127.0.0.1:${u.port}` });
    await s.A('POST', '/services', { name: 'shared', host: 'shared.internal', port: 80 });
    const r = await s.write('POST', '/services/shared/routes', { name: 'shared', paths: ['/shared'] });
    await bothAt(Number(r.headers.get('x-portico-config-version')));
    // Every worker would send its first request to the first target: only one worker learns here.
    await waitFor('one worker saw the failing target', async () => (await fresh('/shared')).status === 500);
    assert.equal(bad.hits, 1);
    await waitFor('the node marked it unhealthy', async () => {
      const h = await (await fetch(`${dp.status}/upstreams/shared.internal/health`)).json() as { data: { target: string; health: string }[] };
      return h.data.find((t) => t.target === `127.0.0.1:${bad.port}`)?.health === 'UNHEALTHY';
    });
    const before = await nodeStatus();
    const results = await sequential(20, '/shared');
    assert.deepEqual(results.filter((x) => x.status !== 200), [], 'no worker sent a request to the unhealthy target');
    assert.equal(bad.hits, 1);
    assert.ok((await servedSince(before)).every((n) => n > 0), 'both workers took requests');
  });

  it('replaces a killed worker, which gets the current config before it takes connections', async () => {
    const st = await bothAt((await cpLatest()).version);
    const victim = st.workers[0].pid;
    process.kill(victim, 'SIGKILL');
    const back = await waitFor('a new worker', async () => {
      const now = await nodeStatus();
      return now.workers.length === 2 && !now.workers.some((w) => w.pid === victim) && now.workers.every((w) => w.status === 'ready') ? now : undefined;
    }, 20_000, 50);
    assert.ok(back.workers.every((w) => w.config_version === st.configuration.version), 'the new worker runs the current config');
    const results = await sequential(10, '/r0');
    assert.ok(results.every((x) => x.status === 200));
    const r = await s.write('POST', '/services/svc/routes', { name: 'after-restart', paths: ['/after-restart'] });
    await bothAt(Number(r.headers.get('x-portico-config-version')));
    const before = await nodeStatus();
    assert.ok((await sequential(10, '/after-restart')).every((x) => x.status === 200));
    assert.ok((await servedSince(before)).every((n) => n > 0), 'both workers, the new one included, served the new route');
  });

  it('runs a proxy-cache purge in every worker, and the node answers once with the entries of both', async () => {
    await s.write('POST', '/services/svc/routes', { name: 'cached', paths: ['/cached'] });
    await s.write('POST', '/routes/cached/plugins', { name: 'proxy-cache', config: { strategy: 'memory', content_type: ['application/json'] } });
    const st = await bothAt((await cpLatest()).version);
    // Fresh connections alternate between the workers: each caches the entry in its own memory tier.
    const hitBy = new Set<number>();
    for (let i = 0; i < 12 && hitBy.size < 2; i++) {
      const before = await nodeStatus();
      const r = await fresh('/cached/x');
      assert.equal(r.status, 200);
      const served = await servedSince(before);
      if (r.headers['x-cache-status'] === 'Hit') hitBy.add(served.findIndex((n) => n > 0));
    }
    assert.equal(hitBy.size, 2, 'both workers hold the entry');
    const r = await s.A('DELETE', '/proxy-cache?route=cached');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.not_answered, []);
    assert.equal(r.body.purged.length, 1, 'one answer for the node');
    assert.equal(r.body.purged[0].entries, 2, JSON.stringify(r.body));
    assert.equal(st.workers.length, 2);
  });

  it('drains every worker on SIGTERM: requests in flight finish', async () => {
    const hits = s.upstream.hits;
    const inFlight = Array.from({ length: 6 }, () => fresh('/r0?delay_ms=1500'));
    await waitFor('requests reached the upstream', async () => s.upstream.hits - hits === 6);
    const code = await dp.stop();
    const results = await Promise.all(inFlight);
    assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(code, 0);
  });

  it('cold-starts both workers from the disk cache with NATS down', async () => {
    const version = (await cpLatest()).version;
    const cold = await startGateway('data-plane', { dataDir: dp.dataDir, env: { NATS_URL: `nats://127.0.0.1:${await freePort()}`, PORTICO_WORKERS: '2' } });
    try {
      await bothAt(version, cold);
      const before = await nodeStatus(cold);
      assert.ok((await sequential(10, '/after-restart', cold)).every((x) => x.status === 200));
      const after = await nodeStatus(cold);
      assert.ok(after.workers.every((w) => w.total_requests > (before.workers.find((b) => b.pid === w.pid)?.total_requests ?? 0)));
    } finally {
      await cold.kill();
    }
  });
});

describe('PORTICO_WORKERS', () => {
  for (const bad of ['0', 'two', '2.5', '-1', '1025', '1e3']) {
    it(`refuses '${bad}' at start with a message naming the variable`, async () => {
      const g = await startGateway('data-plane', { env: { NATS_URL: 'nats://127.0.0.1:1', PORTICO_WORKERS: bad }, waitReady: false });
      const code = g.proc.exitCode ?? await new Promise<number | null>((r) => g.proc.once('exit', (c) => r(c)));
      g.cleanup();
      assert.equal(code, 2);
      assert.match(g.logs(), /PORTICO_WORKERS: expected a whole number of worker processes from 1 to 1024/);
    });
  }
});
