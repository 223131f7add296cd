// The rate-limiting handler with in-memory ports: who is counted, headers, and store failures.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { testCtx } from '../test-ports.ts';
import { rateLimitingConfig } from './schema.ts';
import { rateLimitingHandler } from './handler.ts';
import { MemoryRateLimitStore, type RateLimitStore } from './store.ts';
import type { PluginEnv, ProxyContext } from '../types.ts';

let now = 1_800_000_000;
const failures: string[] = [];
function env(redis: RateLimitStore = new MemoryRateLimitStore(() => now)): PluginEnv {
  const local = new MemoryRateLimitStore(() => now);
  return {
    now: () => now * 1000, log: { warn: (o) => failures.push(JSON.stringify(o)), error() {} }, getJson: async () => ({}),
    index: { consumersById: new Map(), consumersByUsername: new Map(), keyAuthByHash: new Map(), jwtByKey: new Map(), basicAuthByUsername: new Map(), aclGroupsByConsumer: new Map() },
    localRateLimitStore: local, rateLimitStore: () => redis, counters: { increment: (n) => failures.push(n) },
  };
}
const ctx = (over: Partial<ProxyContext> = {}): ProxyContext => testCtx(over);
async function run(config: Record<string, unknown>, contexts: ProxyContext[], e = env()) {
  const c = rateLimitingConfig.parse(config);
  const state = rateLimitingHandler.init!(c, e, 'plugin-1');
  const out = [];
  for (const x of contexts) out.push({ exit: await rateLimitingHandler.access!(x, c, state, e), headers: x.responseHeaders });
  return out;
}

describe('rate-limiting handler', () => {
  it('counts per consumer, falling back to the credential, then the client IP', async () => {
    const alice = { id: 'alice' } as ProxyContext['consumer'];
    const r = await run({ minute: 1 }, [ctx({ consumer: alice }), ctx({ consumer: alice }), ctx({ credential: { id: 'cred-1', identifier: 'x' } }), ctx(), ctx(), ctx({ clientIp: '10.0.0.2' })]);
    assert.deepEqual(r.map((x) => x.exit?.status ?? 200), [200, 429, 200, 200, 429, 200]);
  });

  it('counts per service, path (else IP), route and consumer-route', async () => {
    const svc = await run({ minute: 1, limit_by: 'service' }, [ctx(), ctx({ clientIp: '10.9.9.9' })]);
    assert.deepEqual(svc.map((x) => x.exit?.status ?? 200), [200, 429]);
    const path = await run({ minute: 1, limit_by: 'path', path: '/p' }, [ctx(), ctx({ clientIp: '10.9.9.9' }), ctx({ path: '/other' })]);
    assert.deepEqual(path.map((x) => x.exit?.status ?? 200), [200, 429, 200]);
    const cr = await run({ minute: 1, limit_by: 'consumer-route' }, [
      ctx({ consumer: { id: 'a' } as ProxyContext['consumer'] }), ctx({ consumer: { id: 'a' } as ProxyContext['consumer'], route: { id: 'route-2' } as ProxyContext['route'] }),
      ctx({ consumer: { id: 'a' } as ProxyContext['consumer'] }),
    ]);
    assert.deepEqual(cr.map((x) => x.exit?.status ?? 200), [200, 200, 429]);
  });

  it("sets Kong's headers for every period and the most constraining one", async () => {
    const [first] = await run({ second: 5, minute: 100 }, [ctx()]);
    assert.deepEqual(first.headers, {
      'x-ratelimit-limit-second': '5', 'x-ratelimit-limit-minute': '100', 'x-ratelimit-remaining-second': '4', 'x-ratelimit-remaining-minute': '99',
      'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': '1',
    });
  });

  it('uses error_code and error_message, with Retry-After', async () => {
    const r = await run({ minute: 1, error_code: 418, error_message: 'slow down' }, [ctx(), ctx()]);
    assert.deepEqual(r[1].exit, { status: 418, message: 'slow down', headers: { 'retry-after': String(Number(r[1].headers['ratelimit-reset'])), ...r[1].headers } });
  });

  it('on store failure: passes (fault_tolerant), counts locally (on_store_failure=local), or answers 503', async () => {
    const broken: RateLimitStore = { hit: () => Promise.reject(new Error('redis down')) };
    const pass = await run({ minute: 1, policy: 'redis' }, [ctx(), ctx()], env(broken));
    assert.deepEqual(pass.map((x) => x.exit), [undefined, undefined]);
    assert.ok(failures.includes('rate_limiting_store_failures'));
    const local = await run({ minute: 1, policy: 'redis', on_store_failure: 'local' }, [ctx(), ctx()], env(broken));
    assert.deepEqual(local.map((x) => x.exit?.status ?? 200), [200, 429]);
    const strict = await run({ minute: 1, policy: 'redis', fault_tolerant: false }, [ctx()], env(broken));
    assert.equal(strict[0].exit?.status, 503);
  });
});
