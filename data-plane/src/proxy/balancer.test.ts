import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { targetSchema, upstreamSchema, type Upstream } from '@portico/shared';
import { HealthRegistry, UpstreamBalancer, type TargetState } from './balancer.ts';

const UP = '00000000-0000-4000-8000-0000000000a1';

function balancer(extra: Record<string, unknown> = {}, targets = ['10.0.0.1:80']): { b: UpstreamBalancer; registry: HealthRegistry } {
  const registry = new HealthRegistry(async () => ({ kind: 'tcp' }));
  const u: Upstream = upstreamSchema.parse({ id: UP, created_at: 0, updated_at: 0, name: 'up.test', ...extra });
  const ts = targets.map((t, i) => targetSchema.parse({ id: `00000000-0000-4000-8000-00000000000${i}`, created_at: 0, updated_at: 0, upstream: { id: UP }, target: t }));
  const b = registry.plan([u], ts).balancers.get('up.test')!;
  registry.stop();
  return { b, registry };
}

const BREAKER = { circuit_breaker: { failures: 2, failure_codes: [500, 502, 503, 504], open_timeout: 10, half_open_requests: 1 } };
const fail = { kind: 'status', status: 503 } as const;
const ok = { kind: 'status', status: 200 } as const;

/** One request: pick, report (unless abandoned), release; as ProxyExchange does. */
function attempt(b: UpstreamBalancer, outcome: typeof fail | typeof ok | null): TargetState | null {
  const t = b.pick(null, new Set());
  if (!t) return null;
  const epoch = UpstreamBalancer.probeEpoch(t);
  if (outcome) b.report(t, outcome);
  b.release(t, epoch);
  return t;
}

/** Moves an open breaker past open_timeout without waiting. */
const elapse = (t: TargetState) => { t.openedAt -= 11_000; };

describe('circuit breaker state machine', () => {
  it('closed → open after `failures` consecutive failures, and refuses picks while open', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail);
    assert.equal(t.breaker, 'closed');
    attempt(b, fail);
    assert.equal(t.breaker, 'open');
    assert.equal(b.pick(null, new Set()), null);
  });

  it('open → half-open after open_timeout, letting only half_open_requests through', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail); attempt(b, fail);
    elapse(t);
    const probe = b.pick(null, new Set());
    assert.equal(probe, t);
    assert.equal(t.breaker, 'half_open');
    assert.equal(t.probesInFlight, 1);
    assert.equal(b.pick(null, new Set()), null, 'a second request waits for the probe');
  });

  it('half-open → closed on a successful probe', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail); attempt(b, fail);
    elapse(t);
    attempt(b, ok);
    assert.equal(t.breaker, 'closed');
    assert.equal(t.active, 0);
    assert.ok(b.pick(null, new Set()));
  });

  it('half-open → open on a failed probe, and half-open again later with a fresh slot', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail); attempt(b, fail);
    elapse(t);
    attempt(b, fail);
    assert.equal(t.breaker, 'open');
    assert.equal(b.pick(null, new Set()), null);
    elapse(t);
    assert.equal(b.pick(null, new Set()), t);
    assert.equal(t.probesInFlight, 1);
  });

  it('a client abort while closed gives the connection slot back and counts no outcome', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail);
    attempt(b, null);
    assert.equal(t.active, 0);
    assert.equal(t.consecutiveFailures, 1);
    assert.equal(t.breaker, 'closed');
  });

  it('a client abort while open changes nothing (no pick was made)', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail); attempt(b, fail);
    assert.equal(attempt(b, null), null);
    assert.equal(t.breaker, 'open');
    assert.equal(t.active, 0);
  });

  it('a client abort during a half-open probe frees the probe slot (review C1)', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail); attempt(b, fail);
    elapse(t);
    attempt(b, null);
    assert.equal(t.breaker, 'half_open');
    assert.equal(t.probesInFlight, 0);
    assert.equal(t.active, 0);
    assert.equal(attempt(b, ok), t, 'the next request probes');
    assert.equal(t.breaker, 'closed');
  });

  it('a late release from an earlier half-open episode does not free a newer probe slot', () => {
    const { b } = balancer(BREAKER);
    const t = b.targets[0];
    attempt(b, fail); attempt(b, fail);
    elapse(t);
    const first = b.pick(null, new Set())!;
    const firstEpoch = UpstreamBalancer.probeEpoch(first);
    b.report(first, fail);
    elapse(t);
    const second = b.pick(null, new Set())!;
    assert.equal(t.probesInFlight, 1);
    b.release(first, firstEpoch);
    assert.equal(t.probesInFlight, 1, 'the newer probe still holds its slot');
    b.release(second, UpstreamBalancer.probeEpoch(second));
    assert.equal(t.probesInFlight, 0);
  });

  it('counts requests in flight for least-connections until released', () => {
    const { b } = balancer({ algorithm: 'least-connections' }, ['10.0.0.1:80', '10.0.0.2:80']);
    const first = b.pick(null, new Set())!;
    const second = b.pick(null, new Set())!;
    assert.notEqual(first, second, 'the busy target is avoided');
    b.release(first, -1);
    assert.equal(first.active, 0);
    assert.equal(b.pick(null, new Set()), first);
  });
});

describe('health shared between the processes of a node', () => {
  /** Two workers' registries wired as a node's primary relays them; neither probes. */
  function pair(extra: Record<string, unknown>) {
    const u: Upstream = upstreamSchema.parse({ id: UP, created_at: 0, updated_at: 0, name: 'up.test', ...extra });
    const ts = ['10.0.0.1:80', '10.0.0.2:80'].map((t, i) => targetSchema.parse({ id: `00000000-0000-4000-8000-00000000001${i}`, created_at: 0, updated_at: 0, upstream: { id: UP }, target: t }));
    const told: string[] = [];
    const regs: HealthRegistry[] = [];
    for (let i = 0; i < 2; i++) {
      regs.push(new HealthRegistry(null, (upstream, t) => {
        told.push(`${i}:${t.target}:${t.healthy}:${t.breaker}`);
        regs[1 - i].applyShared(upstream, t.target, { healthy: t.healthy, breaker: t.breaker, openedAt: t.openedAt });
      }));
    }
    const bs = regs.map((r) => { const p = r.plan([u], ts); p.commit(); return p.balancers.get('up.test')!; });
    return { bs, told };
  }

  it('tells the other worker when passive checks take a target out, and only on the change', () => {
    const { bs, told } = pair({ healthchecks: { passive: { unhealthy: { http_failures: 2 } } } });
    const [a, b] = bs;
    a.report(a.targets[0], { kind: 'status', status: 500 });
    assert.deepEqual(told, [], 'one failure of two changes nothing');
    a.report(a.targets[0], { kind: 'status', status: 500 });
    a.report(a.targets[0], { kind: 'status', status: 500 });
    assert.deepEqual(told, ['0:10.0.0.1:80:false:closed']);
    assert.equal(b.targets[0].healthy, false);
    for (let i = 0; i < 4; i++) assert.equal(b.pick(null, new Set())?.target, '10.0.0.2:80');
  });

  it('shares an opened breaker with the time it opened, and its closing', () => {
    const { bs, told } = pair(BREAKER);
    const [a, b] = bs;
    a.report(a.targets[0], fail); a.report(a.targets[0], fail);
    assert.equal(b.targets[0].breaker, 'open');
    assert.equal(b.targets[0].openedAt, a.targets[0].openedAt);
    elapse(a.targets[0]); elapse(b.targets[0]);
    const t = b.pick(null, new Set(['10.0.0.2:80']))!; // b's half-open probe
    assert.equal(t.target, '10.0.0.1:80');
    b.report(t, ok);
    b.release(t, -1);
    assert.equal(a.targets[0].breaker, 'closed');
    assert.deepEqual(told, ['0:10.0.0.1:80:true:open', '1:10.0.0.1:80:true:closed']);
  });
});
