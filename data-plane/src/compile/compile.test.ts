// compile() is pure (invariant 4): nothing that runs changes until commit(), so a snapshot rejected
// after compiling (or never swapped in) leaves health state, weights and probe timers alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configHash, emptyConfig, pluginSchema, routeSchema, serviceSchema, targetSchema, upstreamSchema, type Config, type Snapshot } from '@portico/shared';
import { MemoryRateLimitStore } from '@portico/shared/plugins/handlers';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
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

  it('a snapshot that changes only routes reuses the running chains, balancers and targets, and routes as one compiled from scratch', () => {
    const registry = new HealthRegistry(async () => ({ kind: 'tcp' }));
    const base = snapshot(1, 100, 0);
    const svc = base.config.services[0];
    const m0 = (router: ReturnType<typeof compile>['runtime']['router'], p: string) => router.match({ method: 'GET', path: p, host: 'x', port: 80, headers: {} });
    const route = (n: number, created = n) => routeSchema.parse({ id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, created_at: created, updated_at: 0, paths: [`/r${n}`], service: { id: svc.id } });
    const plugin = pluginSchema.parse({ id: '00000000-0000-4000-8000-0000000000a6', created_at: 0, updated_at: 0, name: 'cors', config: PLUGIN_DEFINITIONS.get('cors')!.configSchema.parse({}) });
    const routes = Array.from({ length: 200 }, (_, i) => route(i + 1));
    const v1: Snapshot = { ...base, config: { ...base.config, routes, plugins: [plugin] } };
    const first = compile(v1, ports, registry);
    first.commit();

    // One route changed (a new object with another path), one removed, one added; everything else the same objects.
    const changed = { ...routes[10], paths: ['/moved'] };
    const v2routes = [...routes.slice(0, 10), changed, ...routes.slice(12), route(500, 5)];
    const v2: Snapshot = { ...v1, version: 2, config: { ...v1.config, routes: v2routes } };
    // Told what came and went (the decoder does), the update looks up only those routes; told against
    // another list than the one running, it compares every route instead (the same router either way: router.fuzz.test.ts).
    const entries = first.runtime.router.prepared.entries;
    let lookups = 0;
    const get = entries.get.bind(entries);
    entries.get = (r) => { lookups++; return get(r); };
    const told = { routes: { base: routes, added: [changed, v2routes[v2routes.length - 1]], removed: [routes[10], routes[11]] } };
    const misdirected = { routes: { ...told.routes, base: [...routes] } };
    for (const [changes, most] of [[told, 4], [misdirected, Infinity], [{}, Infinity]] as const) {
      lookups = 0;
      const again = compile(v2, ports, registry, process.env, first.runtime, changes);
      assert.ok(lookups <= most && (most !== Infinity || lookups >= routes.length - 2), `${lookups} lookups`);
      assert.equal(again.runtime.router.pending, true);
    }
    delete (entries as Partial<typeof entries>).get;

    const second = compile(v2, ports, registry, process.env, first.runtime);
    assert.equal(second.runtime.router.pending, true, 'the router waits for commit (it shares maps with the running one)');
    assert.equal(m0(first.runtime.router, '/r11')?.route, routes[10], 'the running router is untouched until then');
    second.commit();
    assert.equal(second.runtime.plugins, first.runtime.plugins, 'plugin chains reused');
    assert.equal(second.runtime.upstreams, first.runtime.upstreams, 'balancers reused');
    assert.equal(second.runtime.targets, first.runtime.targets, 'targets reused');
    const scratch = compile(v2, ports, registry).runtime.router;
    const m = (router: typeof scratch, p: string) => router.match({ method: 'GET', path: p, host: 'x', port: 80, headers: {} });
    for (const p of ['/r1', '/r11', '/moved', '/r12', '/r13', '/r500', '/r200', '/nope']) {
      assert.equal(m(second.runtime.router, p)?.route.id ?? null, m(scratch, p)?.route.id ?? null, p);
    }
    assert.equal(m(second.runtime.router, '/moved')?.route, changed);
    assert.equal(m(second.runtime.router, '/r12')?.route.id, routes[0].id, 'the removed route is gone: /r1 takes its path');
    assert.equal(m(second.runtime.router, '/r1')?.compiled, m(first.runtime.router, '/r1')?.compiled, 'an unchanged route keeps its compiled form');
    assert.equal(m(second.runtime.router, '/r1')?.compiled.plugins[0].name, 'cors');
    assert.deepEqual([...second.runtime.routeIds!].sort(), v2routes.map((r) => r.id).sort());

    // A plugin change (a new object) compiles everything anew: chains are made of plugins.
    const v3: Snapshot = { ...v2, version: 3, config: { ...v2.config, plugins: [{ ...plugin, config: { ...plugin.config } }] } };
    const third = compile(v3, ports, registry, process.env, second.runtime);
    assert.notEqual(third.runtime.plugins, second.runtime.plugins);
    assert.notEqual(m(third.runtime.router, '/r1')?.compiled, m(second.runtime.router, '/r1')?.compiled);
    // So does a new consumer: chains read the credential index.
    const v4: Snapshot = { ...v3, version: 4, config: { ...v3.config, consumers: [{ id: '00000000-0000-4000-8000-0000000000a7', created_at: 0, updated_at: 0, username: 'u', custom_id: null, tags: null } as never] } };
    const fourth = compile(v4, ports, registry, process.env, third.runtime);
    assert.notEqual(fourth.runtime.plugins, third.runtime.plugins);
    assert.ok(fourth.runtime.plugins.env.index.consumersByUsername.has('u'));
    registry.stop();
  });
});
