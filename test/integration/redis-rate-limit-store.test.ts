// The Redis store against a real redis-server: the same contract as the in-memory store, plus
// what only Redis has: exact counts under concurrency from many clients, and failure handling.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rateLimitStoreContract } from '../../shared/src/plugins/rate-limiting/store.contract.ts';
import { Redis } from 'ioredis';
import { RateLimitStores, RedisRateLimitStore } from '../../data-plane/src/adapters/redis-rate-limit.ts';
import { StoreUnavailableError } from '../../data-plane/src/adapters/leased-rate-limit.ts';
import { startRedis, waitFor, type RedisHandle } from '../harness/procs.ts';

let redis: RedisHandle;
const stores: RedisRateLimitStore[] = [];
const make = () => {
  const u = new URL(redis.url);
  const s = new RedisRateLimitStore({ host: u.hostname, port: Number(u.port), commandTimeout: 500 });
  stores.push(s);
  return s;
};

/** Until the refills a store asked for have landed (not a fixed time, which a loaded machine could overrun). */
const refilled = (...ss: RedisRateLimitStore[]) => waitFor('refill', async () => ss.every((x) => x.refilling === 0), 5_000, 1);

/**
 * `n` requests one after another on `s`, with `pause` after every `every` of them (traffic that leaves
 * Redis time to answer): how many were allowed, and how many waited on Redis (the store answered
 * with a promise).
 */
async function inTurn(s: RedisRateLimitStore, key: string, limits: { seconds: number; limit: number }[], n: number, every: number, pause: () => Promise<unknown>): Promise<{ allowed: number; waited: number }> {
  let allowed = 0;
  let waited = 0;
  for (let i = 0; i < n; i++) {
    const d = s.hit(key, limits, 'fixed-window');
    if (d instanceof Promise) waited++;
    if ((d instanceof Promise ? await d : d).allowed) allowed++;
    if (i % every === every - 1) await pause();
  }
  return { allowed, waited };
}

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

  it('asks for the next lease before the one serving runs dry, so a steady stream is decided here, and stays exact', async () => {
    const s = make();
    const key = `refill-${Date.now()}`;
    const limits = [{ seconds: 60, limit: 100_000 }];
    const { allowed, waited } = await inTurn(s, key, limits, 2_000, 10, () => refilled(s));
    assert.equal(allowed, 2_000);
    // Without asking ahead, every request that finds its lease spent would wait on Redis.
    assert.ok(waited <= 3, `${waited} of 2,000 requests waited on Redis`);
    // Exact across nodes all the same: a second client sees every unit the first took.
    const other = make();
    const tight = `refill-tight-${Date.now()}`;
    // A day's window: the run cannot cross into the next one (a minute's could, on a slow machine).
    const few = [{ seconds: 86_400, limit: 500 }];
    let granted = 0;
    for (let i = 0; i < 700; i++) {
      const c = i % 2 ? s : other;
      if ((await c.hit(tight, few, 'fixed-window')).allowed) granted++;
      if (i % 10 === 9) await refilled(s, other);
    }
    assert.ok(granted <= 500, `${granted} granted of a limit of 500`);
    // And not far below it: what the two stores hold unused at the end is at most a lease (≤ 50,
    // a tenth of the limit) and one refill (as much again) each; stranded leases would show here.
    assert.ok(granted >= 300, `${granted} granted of a limit of 500`);
  });

  it('leases more at a time for a key served fast, so Redis is asked a few times a second, not per hundred requests', async () => {
    const s = make();
    const key = `paced-${Date.now()}`;
    const limits = [{ seconds: 86_400, limit: 10_000_000 }];
    // Replies land now and then, as on a busy node's event loop.
    const { allowed } = await inTurn(s, key, limits, 20_000, 100, () => new Promise((r) => setImmediate(r)));
    assert.equal(allowed, 20_000);
    // With 100-unit leases: a call per 100 requests, 200 in all.
    assert.ok(s.calls < 100, `${s.calls} Redis calls for 20,000 requests`);
    // Redis counted every unit leased: the 20,000 served and what the last lease and a refill still hold.
    const other = make();
    const d = await other.hit(key, limits, 'fixed-window');
    assert.ok(d.remaining[0] <= 10_000_000 - 20_000, `remaining ${d.remaining[0]}`);
    assert.ok(d.remaining[0] >= 10_000_000 - 20_000 - 2 * 5_000 - 100, `remaining ${d.remaining[0]}`);
  });

  it('a burst on many nodes strands little of a limit: a lease grows one doubling per block, not by a burst\'s apparent pace', async () => {
    const key = `burst-${Date.now()}`;
    const limits = [{ seconds: 86_400, limit: 10_000 }];
    const nodes = Array.from({ length: 10 }, () => make());
    // Each node serves one burst of 150 requests at once, then its key goes quiet there.
    for (const s of nodes) {
      const burst = await Promise.all(Array.from({ length: 150 }, () => s.hit(key, limits, 'fixed-window')));
      assert.equal(burst.filter((r) => r.allowed).length, 150);
      await refilled(s);
    }
    // A new node gets what the bursts did not use, less what their leases hold: ~100-300 units a node.
    const late = make();
    const { allowed: granted } = await inTurn(late, key, limits, 8_500, 100, () => refilled(late));
    assert.ok(granted >= 8_500 - 10 * 300, `${granted} of the 8,500 units left granted to a new node`);
  });

  it('grants a limit exactly to a crowd of concurrent requests on one node: none over, none stranded in leases', async () => {
    const s = make();
    const key = `crowd-${Date.now()}`;
    const limits = [{ seconds: 86_400, limit: 200 }];
    let granted = 0;
    for (let wave = 0; wave < 6; wave++) {
      const results = await Promise.all(Array.from({ length: 60 }, () => s.hit(key, limits, 'fixed-window')));
      granted += results.filter((r) => r.allowed).length;
    }
    // 360 asked of 200: every unit Redis counted reached a request.
    assert.equal(granted, 200);
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

describe('redis stores across snapshots', () => {
  it('opens a connection only for a committed config, keeps the live one on rollback, closes the replaced one on commit', async () => {
    const port = Number(new URL(redis.url).port);
    const conf = (timeout: number) => ({ host: '127.0.0.1', port, timeout, username: null, password: null, database: 3, ssl: false, ssl_verify: false, server_name: null });
    const admin = new Redis(redis.url);
    // Only this test's stores use database 3, so CLIENT LIST counts them alone.
    const ours = async () => String(await admin.call('CLIENT', 'LIST')).split('\n').filter((l) => l.includes(' db=3 ')).length;
    const stores = new RateLimitStores(undefined, { warn() {}, info() {} });
    try {
      const limits = [{ seconds: 60, limit: 100 }];
      const a = stores.get(conf(300));
      stores.commit();
      assert.equal((await a.hit('k', limits, 'fixed-window')).allowed, true);
      // A snapshot naming another config is compiled, then rejected: nothing opened, the live store kept.
      stores.get(conf(301));
      stores.rollback();
      assert.equal(stores.size, 1);
      assert.equal(stores.get(conf(300)), a);
      stores.commit();
      await waitFor('one connection', async () => (await ours()) === 1);
      // A snapshot that replaces the config: the new store connects, the old one closes.
      const b = stores.get(conf(302));
      stores.commit();
      assert.notEqual(b, a);
      assert.equal(stores.size, 1);
      assert.equal((await b.hit('k2', limits, 'fixed-window')).allowed, true);
      await waitFor('the replaced connection closed', async () => (await ours()) === 1);
    } finally {
      stores.close();
      admin.disconnect();
    }
  });
});
