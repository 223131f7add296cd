// The Redis store against a real redis-server: the same contract as the in-memory store, plus
// what only Redis has: exact counts under concurrency from many clients, and failure handling.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitStoreContract } from '../../shared/src/plugins/rate-limiting/store.contract.ts';
import { RedisRateLimitStore, StoreUnavailableError } from '../../data-plane/src/adapters/redis-rate-limit.ts';
import { startRedis, type RedisHandle } from '../harness/procs.ts';

let redis: RedisHandle;
const stores: RedisRateLimitStore[] = [];
const make = () => {
  const u = new URL(redis.url);
  const s = new RedisRateLimitStore({ host: u.hostname, port: Number(u.port), commandTimeout: 500 });
  stores.push(s);
  return s;
};

before(async () => { redis = await startRedis(); });
after(async () => { for (const s of stores) s.close(); await redis?.stop(); });

rateLimitStoreContract('redis', make, {
  atFraction: async (f) => {
    const frac = (Date.now() % 1000) / 1000;
    const wait = frac <= f ? (f - frac) * 1000 : (1 - frac + f) * 1000;
    await new Promise((r) => setTimeout(r, wait));
  },
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
});

describe('redis store beyond the contract', () => {
  it('is exact under concurrency from several clients (separate connections, like separate nodes)', async () => {
    const clients = [make(), make(), make()];
    const key = `exact-${Date.now()}`;
    const results = await Promise.all(Array.from({ length: 600 }, (_, i) => clients[i % 3].hit(key, [{ seconds: 60, limit: 100 }], 'fixed-window')));
    assert.equal(results.filter((r) => r.allowed).length, 100);
  });

  it('fails fast while Redis is down and recovers by itself when it is back', async () => {
    const s = make();
    const key = `outage-${Date.now()}`;
    assert.equal((await s.hit(key, [{ seconds: 60, limit: 10 }], 'fixed-window')).allowed, true);
    await redis.service.kill();
    for (let i = 0; i < 4; i++) await assert.rejects(async () => s.hit(key, [{ seconds: 60, limit: 10 }], 'fixed-window'), StoreUnavailableError);
    assert.equal(s.breakerOpen, true);
    await redis.service.start();
    const back = await (async () => {
      for (let i = 0; i < 60; i++) {
        try { return await s.hit(key, [{ seconds: 60, limit: 10 }], 'fixed-window'); } catch { await new Promise((r) => setTimeout(r, 100)); }
      }
      throw new Error('never recovered');
    })();
    assert.equal(back.allowed, true);
  });
});
