// Every map keyed by what clients send stays bounded (issue 9, item 8): 1,000,000 distinct keys go
// through each, in process, and the retained entries stay at the cap. The heap each one keeps
// after a full GC is printed (the closing note's figures) and held under a stated bound.
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MAX_LOCAL_COUNTERS, MemoryRateLimitStore } from '../../shared/src/plugins/rate-limiting/store.ts';
import { RedisRateLimitStore } from '../../data-plane/src/adapters/redis-rate-limit.ts';
import { MAX_LEASES } from '../../data-plane/src/adapters/leased-rate-limit.ts';
import { MAX_VERIFIED, MAX_VERIFIED_BYTES, verifiedCache } from '../../shared/src/plugins/jwt/handler.ts';
import { basicAuthHandler, MAX_FAILED } from '../../shared/src/plugins/basic-auth/handler.ts';
import { basicAuthConfig } from '../../shared/src/plugins/basic-auth/schema.ts';
import { jwksCacheSizes, jwksKey, MAX_JWKS_SOURCES, resolveJwksUri } from '../../shared/src/plugins/jwt/jwks.ts';
import { testEnv } from '../../shared/src/plugins/test-ports.ts';

const KEYS = 1_000_000;
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
const MB = 1024 * 1024;

/** Runs `fill`, then reports and bounds the heap it left behind (the structure is still referenced by the caller). */
async function retained(t: TestContext, what: string, boundMb: number, fill: () => Promise<unknown> | unknown): Promise<void> {
  const before = heap();
  const keep = await fill();
  const grown = (heap() - before) / MB;
  const line = `${what}: ${KEYS.toLocaleString('en')} keys → heap +${grown.toFixed(1)} MB retained (bound ${boundMb} MB)`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(grown < boundMb, line);
  assert.ok(keep !== undefined);
}

describe('client-keyed state stays bounded under 1,000,000 distinct keys', () => {
  it('local rate-limit counters (per IP / per header value)', async (t) => {
    const store = new MemoryRateLimitStore();
    await retained(t, 'MemoryRateLimitStore', 48, () => {
      const limits = [{ seconds: 60, limit: 10 }, { seconds: 86_400, limit: 1000 }];
      for (let i = 0; i < KEYS; i++) store.hit(`plugin-1:203.0.113.${i}`, limits, i % 2 ? 'sliding-window' : 'fixed-window');
      return store;
    });
    assert.equal(store.size, MAX_LOCAL_COUNTERS);
  });

  it('Redis leases (one per counter key)', async (t) => {
    // Redis's answer is stood in for (one unit granted per call): this measures the lease map, not Redis.
    class Granting extends RedisRateLimitStore {
      protected override async call() { return { granted: 1, remaining: [9], resetMs: [60_000], nowMs: Date.now() }; }
    }
    const store = new Granting({ host: '127.0.0.1', port: 1 });
    await retained(t, 'RedisRateLimitStore.leases', 24, async () => {
      const limits = [{ seconds: 60, limit: 10 }];
      for (let i = 0; i < KEYS; i++) await store.hit(`plugin-1:${i}`, limits, 'fixed-window');
      return store;
    });
    assert.equal(store.leaseCount, MAX_LEASES);
    store.close();
  });

  it('the jwt verified-token cache, in entries and bytes', async (t) => {
    const cache = verifiedCache();
    await retained(t, 'jwt verified tokens', 48, () => {
      const payload = { iss: 'k' };
      const pad = 'x'.repeat(300);
      for (let i = 0; i < KEYS; i++) cache.set(`${pad}.${i}`, { payload, consumerId: null, credential: null, until: Infinity });
      return cache;
    });
    assert.ok(cache.size <= MAX_VERIFIED, `${cache.size} entries`);
    assert.ok(cache.calculatedSize <= MAX_VERIFIED_BYTES, `${cache.calculatedSize} bytes`);
  });

  it('the basic-auth negative cache (one entry per failed attempt)', async (t) => {
    // The handler's path to this cache is covered in basic-auth/handler.test.ts; here only its bound.
    const state = basicAuthHandler.init!(basicAuthConfig.parse({}), testEnv(), 'ba-1');
    await retained(t, 'basic-auth failed attempts', 16, () => {
      for (let i = 0; i < KEYS; i++) state.failed.set(createHash('sha256').update(String(i)).digest('base64'), true);
      return state;
    });
    assert.equal(state.failed.size, MAX_FAILED);
  });

  it('JWKS sources and OIDC discovery results', async (t) => {
    const e = testEnv({ getJson: async (url) => (url.endsWith('openid-configuration') ? { jwks_uri: `${url}/jwks` } : { keys: [] }) });
    await retained(t, 'JWKS caches', 32, async () => {
      for (let i = 0; i < KEYS; i++) {
        await jwksKey(`https://idp-${i}.test/jwks`, `kid-${i}`, 300_000, 0, e);
        if (i % 10 === 0) await resolveJwksUri(`https://issuer-${i}.test`, e);
      }
      return e;
    });
    const sizes = jwksCacheSizes();
    assert.ok(sizes.jwks <= MAX_JWKS_SOURCES && sizes.discovered <= MAX_JWKS_SOURCES, JSON.stringify(sizes));
  });
});
