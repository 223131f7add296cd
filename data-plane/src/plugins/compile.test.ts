import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyConfig, pluginSchema, routeSchema, type PluginEntity } from '@portico/shared';
import { MemoryRateLimitStore, type PluginEnv } from '@portico/shared/plugins/handlers';
import { PLUGIN_DEFINITIONS } from '@portico/shared/plugins/schemas';
import { buildIndex, PluginChains } from './compile.ts';

const SVC = '00000000-0000-4000-8000-00000000000a';
const ROUTE = '00000000-0000-4000-8000-00000000000b';
const OTHER_ROUTE = '00000000-0000-4000-8000-00000000000c';
const ALICE = '00000000-0000-4000-8000-00000000000d';
let n = 0;
function plugin(name: string, scope: { route?: string; service?: string; consumer?: string }, config: Record<string, unknown> = {}): PluginEntity {
  n++;
  return pluginSchema.parse({
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, created_at: 0, updated_at: 0, name, config: PLUGIN_DEFINITIONS.get(name)!.configSchema.parse(config),
    route: scope.route ? { id: scope.route } : null, service: scope.service ? { id: scope.service } : null, consumer: scope.consumer ? { id: scope.consumer } : null,
  });
}
const route = routeSchema.parse({ id: ROUTE, created_at: 0, updated_at: 0, paths: ['/x'], service: { id: SVC } });
const local = new MemoryRateLimitStore();
const env: PluginEnv = {
  now: Date.now, log: { warn() {}, error() {} }, getJson: async () => ({}), index: buildIndex(emptyConfig()),
  localRateLimitStore: local, rateLimitStore: () => local, counters: { increment() {} },
};
const realm = (chains: PluginChains, consumer: string | null) => {
  const slot = chains.chainFor(route).find((s) => s.name === 'key-auth')!;
  return PluginChains.pick(slot, route, consumer)?.config.realm;
};

describe('plugin chains', () => {
  it('picks the most specific non-consumer config: route+service > route > service > global', () => {
    const all = [
      plugin('key-auth', {}, { realm: 'global' }),
      plugin('key-auth', { service: SVC }, { realm: 'service' }),
      plugin('key-auth', { route: ROUTE }, { realm: 'route' }),
      plugin('key-auth', { route: ROUTE, service: SVC }, { realm: 'route+service' }),
      plugin('key-auth', { route: OTHER_ROUTE }, { realm: 'other route' }),
    ];
    for (let k = all.length - 1; k >= 1; k--) {
      const chains = new PluginChains(all.slice(0, k).concat(all[4]), env);
      assert.equal(realm(chains, null), ['global', 'service', 'route', 'route+service'][k - 1]);
    }
  });

  it('resolves consumer-scoped configs with Kong precedence once the consumer is known', () => {
    // key-auth cannot be consumer-scoped through the admin API; the chain logic is plugin-agnostic.
    const chains = new PluginChains([
      plugin('key-auth', { route: ROUTE }, { realm: 'route' }),
      plugin('key-auth', { consumer: ALICE }, { realm: 'consumer' }),
    ], env);
    assert.equal(realm(chains, null), 'route');
    assert.equal(realm(chains, ALICE), 'consumer', 'consumer (5) beats route (6)');
    const withRouteService = new PluginChains([
      plugin('key-auth', { route: ROUTE, service: SVC }, { realm: 'route+service' }),
      plugin('key-auth', { consumer: ALICE }, { realm: 'consumer' }),
      plugin('key-auth', { service: SVC, consumer: ALICE }, { realm: 'service+consumer' }),
    ], env);
    assert.equal(realm(withRouteService, ALICE), 'service+consumer', 'service+consumer (3) beats route+service (4)');
    const consumerOnly = new PluginChains([plugin('key-auth', { route: ROUTE, service: SVC }, { realm: 'route+service' }), plugin('key-auth', { consumer: ALICE }, { realm: 'consumer' })], env);
    assert.equal(realm(consumerOnly, ALICE), 'route+service', 'route+service (4) beats consumer (5)');
  });

  it('orders the chain by priority: jwt, key-auth, basic-auth, acl', () => {
    const chains = new PluginChains([
      plugin('acl', {}, { allow: ['a'] }), plugin('basic-auth', {}), plugin('key-auth', {}), plugin('jwt', {}),
    ], env);
    assert.deepEqual(chains.chainFor(route).map((s) => s.name), ['jwt', 'key-auth', 'basic-auth', 'acl']);
  });

  it('leaves disabled plugins out', () => {
    const p = { ...plugin('key-auth', {}), enabled: false };
    assert.equal(new PluginChains([p], env).chainFor(route).length, 0);
  });
});
