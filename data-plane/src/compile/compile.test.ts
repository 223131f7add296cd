// compile() is pure (invariant 4): nothing that runs changes until commit(), so a snapshot rejected
// after compiling (or never swapped in) leaves health state, weights and probe timers alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configHash, emptyConfig, pluginSchema, serviceSchema, targetSchema, upstreamSchema, type Config, type Snapshot } from '@portico/shared';
import { MemoryRateLimitStore } from '@portico/shared/plugins/handlers';
import { HealthRegistry } from '../proxy/balancer.ts';
import { compile, type PluginPorts } from './index.ts';

const local = new MemoryRateLimitStore();
const ports: PluginPorts = {
  now: Date.now, log: { warn() {}, error() {} }, getJson: async () => ({}),
  localRateLimitStore: local, rateLimitStore: () => local, counters: { increment() {} },
};
const UP = '00000000-0000-4000-8000-0000000000a1';
function snapshot(version: number, weight: number, interval: number): Snapshot {
  const config: Config = {
    ...emptyConfig(),
    services: [serviceSchema.parse({ id: '00000000-0000-4000-8000-0000000000a0', created_at: 0, updated_at: 0, host: 'pool' })],
    upstreams: [upstreamSchema.parse({ id: UP, created_at: 0, updated_at: 0, name: 'pool', algorithm: 'consistent-hashing', healthchecks: { active: { healthy: { interval }, unhealthy: { interval } } } })],
    targets: [targetSchema.parse({ id: '00000000-0000-4000-8000-0000000000a2', created_at: 0, updated_at: 0, upstream: { id: UP }, target: '10.0.0.1:80', weight })],
  };
  return { version, hash: configHash(config), built_at: 0, config };
}

describe('compile', () => {
  it('changes no running state until commit: weights, health and probe timers', async () => {
    let probes = 0;
    const registry = new HealthRegistry(async () => { probes++; return { kind: 'status', status: 200, latencyMs: 1 }; });
    const first = compile(snapshot(1, 100, 0), ports, registry);
    first.commit();
    const live = first.runtime.upstreams.get('pool')!.targets[0];
    live.healthy = false;

    // A newer config changes the weight and turns active probes on, but is never swapped in.
    const second = compile(snapshot(2, 5, 1), ports, registry);
    assert.equal(second.runtime.upstreams.get('pool')!.targets[0], live, 'the live state object is reused');
    assert.equal(live.weight, 100, 'weight unchanged before commit');
    assert.equal(live.healthy, false, 'health kept');
    await new Promise((r) => setTimeout(r, 1_200));
    assert.equal(probes, 0, 'no probe timer before commit');

    second.commit();
    assert.equal(live.weight, 5);
    await new Promise((r) => setTimeout(r, 1_200));
    assert.ok(probes > 0, 'probes run once committed');
    registry.stop();
  });

  it('fails whole on an unresolvable vault reference, naming the field, before touching anything', () => {
    const registry = new HealthRegistry(async () => ({ kind: 'tcp' }));
    const s = snapshot(1, 100, 0);
    s.config.jwt_secrets.push({ id: '00000000-0000-4000-8000-0000000000a3', created_at: 0, consumer: { id: '00000000-0000-4000-8000-0000000000a4' }, key: 'k', algorithm: 'HS256', secret: '{vault://env/portico-unset-for-test}', rsa_public_key: null, tags: null } as never);
    assert.throws(() => compile(s, ports, registry, {}), /jwt secret 00000000-0000-4000-8000-0000000000a3: secret: \{vault:\/\/env\/portico-unset-for-test\}: environment variable PORTICO_VAULT_PORTICO_UNSET_FOR_TEST is not set/);
    registry.stop();
  });

  it('refuses a snapshot whose aggregator leg names a service it does not hold, and compiles one that does', () => {
    const registry = new HealthRegistry(async () => ({ kind: 'tcp' }));
    const withLeg = (service: string) => {
      const s = snapshot(1, 100, 0);
      s.config.plugins.push(pluginSchema.parse({
        id: '00000000-0000-4000-8000-0000000000a5', created_at: 0, updated_at: 0, name: 'aggregator',
        config: { timeout_ms: 1000, max_concurrency: 8, max_body_bytes: 1024, allow_multiple_writes: false, errors_key: '_errors', completeness_header: 'X-Aggregate-Completed',
          legs: [{ name: 'a', service, method: 'GET', path: '/', query: {}, headers: {}, forward_query: [], forward_headers: [], body: 'none', required: true, timeout_ms: null, into: null, allow: [], deny: [], rename: {}, depends_on: [], for_each: null, max_fan_out: 20 }] },
      }));
      return s;
    };
    const calls = { dispatcherFor: () => { throw new Error('no call at compile time'); } };
    assert.throws(() => compile(withLeg('gone'), { ...ports, serviceCalls: calls }, registry), /plugin 00000000-0000-4000-8000-0000000000a5: config\.legs\.0\.service: no service 'gone' in this config/);
    const ok = compile(withLeg('00000000-0000-4000-8000-0000000000a0'), { ...ports, serviceCalls: calls }, registry);
    assert.ok(ok.runtime.plugins.env.services?.has('00000000-0000-4000-8000-0000000000a0'));
    registry.stop();
  });
});
