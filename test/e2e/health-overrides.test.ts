// Target health overrides move to the CP (issue 10): `PUT /upstreams/{u}/targets/{t}/unhealthy`
// on the admin API reaches every DP over the bus, signed; a message forged or replayed by anyone
// who can publish on NATS changes nothing, and a DP's status listener is read-only.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { HEALTH_SUBJECT } from '@portico/shared';
import { startStack, type Stack } from '../harness/stack.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';
import { waitFor } from '../harness/procs.ts';
import type { GatewayProcess } from '../harness/gateway.ts';

let s: Stack; let a: Upstream; let b: Upstream;
const TARGET_B = () => `127.0.0.1:${b.port}`;

async function healthOf(dp: GatewayProcess, target: string): Promise<string> {
  const r = await fetch(`${dp.status}/upstreams/pool/health`);
  return ((await r.json()) as { data: { target: string; health: string }[] }).data.find((t) => t.target === target)!.health;
}
const everyDp = (target: string, want: string) =>
  waitFor(`every DP sees ${target} ${want}`, async () => (await Promise.all(s.dps.map((dp) => healthOf(dp, target)))).every((h) => h === want), 10_000);

before(async () => {
  s = await startStack({ dps: 3 });
  [a, b] = await Promise.all([startUpstream(), startUpstream()]);
  await s.A('POST', '/upstreams', { name: 'pool' });
  for (const u of [a, b]) await s.A('POST', '/upstreams/pool/targets', { target: `127.0.0.1:${u.port}` });
  await s.A('POST', '/services', { name: 'pooled', host: 'pool' });
  await s.write('POST', '/services/pooled/routes', { paths: ['/pool'] });
});
after(async () => { await s?.stop(); await Promise.all([a?.close(), b?.close()]); });

describe('health overrides from the admin API', () => {
  it('reach all three DPs, which stop and resume sending traffic to the target', async () => {
    assert.equal((await s.A('PUT', `/upstreams/pool/targets/${TARGET_B()}/unhealthy`)).status, 204);
    await everyDp(TARGET_B(), 'UNHEALTHY');
    for (const dp of s.dps) {
      for (let i = 0; i < 4; i++) assert.equal((await fetch(dp.proxy + '/pool/x')).headers.get('x-upstream-port'), String(a.port));
    }
    assert.equal((await s.A('PUT', `/upstreams/pool/targets/${TARGET_B()}/healthy`)).status, 204);
    await everyDp(TARGET_B(), 'HEALTHCHECKS_OFF');
  });

  it('refuse an unknown upstream or target with 404 and send nothing', async () => {
    assert.equal((await s.A('PUT', '/upstreams/nope/targets/127.0.0.1:1/unhealthy')).status, 404);
    assert.equal((await s.A('PUT', '/upstreams/pool/targets/127.0.0.1:1/unhealthy')).status, 404);
  });

  it('cannot be forged or replayed by a NATS client, nor set on a DP\'s status listener', async () => {
    const nc = await connect({ servers: s.nats.url });
    const captured: Uint8Array[] = [];
    nc.subscribe(HEALTH_SUBJECT, { callback: (_e, m) => { captured.push(m.data); } });
    await nc.flush();
    assert.equal((await s.A('PUT', `/upstreams/pool/targets/${TARGET_B()}/unhealthy`)).status, 204);
    await everyDp(TARGET_B(), 'UNHEALTHY');
    assert.equal((await s.A('PUT', `/upstreams/pool/targets/${TARGET_B()}/healthy`)).status, 204);
    await everyDp(TARGET_B(), 'HEALTHCHECKS_OFF');
    await waitFor('the genuine messages were seen', async () => captured.length >= 2);
    // Replay the genuine "unhealthy", and send a well-formed unsigned one.
    nc.publish(HEALTH_SUBJECT, captured[0]);
    nc.publish(HEALTH_SUBJECT, JSON.stringify({ id: randomUUID(), issued_at: Date.now(), upstream: 'pool', target: TARGET_B(), healthy: false }));
    await nc.flush();
    await nc.close();
    await waitFor('every DP logged both refusals', async () => s.dps.every((dp) => {
      const l = dp.logs();
      return l.includes('health override refused: stale or replayed') && l.includes('health override is not signed');
    }));
    for (const dp of s.dps) assert.equal(await healthOf(dp, TARGET_B()), 'HEALTHCHECKS_OFF');
    const direct = await fetch(`${s.dps[0].status}/upstreams/pool/targets/${TARGET_B()}/unhealthy`, { method: 'PUT' });
    assert.equal(direct.status, 404);
    assert.equal(await healthOf(s.dps[0], TARGET_B()), 'HEALTHCHECKS_OFF');
  });
});
