// A worker's port to the node's counters keeps the store contract (with the IPC channel replaced
// by an in-process one that crosses a turn of the event loop), spends leases of the primary's
// counter so a fast key costs a message per block, never lets the node past its limit, and fails
// its calls when the primary is silent.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRateLimitStore, type Limit } from '@portico/shared/plugins/handlers';
import { rateLimitStoreContract } from '../../../shared/src/plugins/rate-limiting/store.contract.ts';
import { grantBatch, PrimaryRateLimitStore } from './rate-limit.ts';
import type { ToPrimary } from './protocol.ts';

let now = 1_800_000_000;
const clock = () => now * 1000;

/** Two workers' stores in front of one primary store, as in a node. */
function node(primary: MemoryRateLimitStore, onBatch?: (size: number) => void): PrimaryRateLimitStore[] {
  const workers: PrimaryRateLimitStore[] = [];
  for (let i = 0; i < 2; i++) {
    const w: PrimaryRateLimitStore = new PrimaryRateLimitStore((m: ToPrimary) => {
      if (m.t !== 'rl') return;
      onBatch?.(m.asks.length);
      setImmediate(() => { const a = grantBatch(primary, m); if (a.t === 'rl') w.answer(a.id, a.grants); });
    }, clock);
    workers.push(w);
  }
  return workers;
}

rateLimitStoreContract('worker → primary', () => node(new MemoryRateLimitStore(() => now))[0], {
  atFraction: async (f) => {
    const frac = now - Math.floor(now);
    now = frac <= f ? Math.floor(now) + f : Math.floor(now) + 1 + f;
  },
  sleep: async (ms) => { now += ms / 1000; },
});

const waitUntil = async (ok: () => boolean) => { while (!ok()) await new Promise((r) => setImmediate(r)); };
const allowed = async (hits: ({ allowed: boolean } | Promise<{ allowed: boolean }>)[]) => (await Promise.all(hits)).filter((d) => d.allowed).length;

describe('node-wide local counters', () => {
  it('allows the limit once for the node, whichever worker takes each request', async () => {
    const [a, b] = node(new MemoryRateLimitStore(() => now));
    const limits = [{ seconds: 3600, limit: 7 }];
    assert.equal(await allowed(Array.from({ length: 20 }, async (_, i) => (i % 2 ? a : b).hit('k', limits, 'fixed-window'))), 7);
  });

  it('sends what a worker asks for in one turn of its event loop as one message', async () => {
    const batches: number[] = [];
    const [a] = node(new MemoryRateLimitStore(() => now), (n) => batches.push(n));
    const limits = [{ seconds: 3600, limit: 100 }];
    assert.equal(await allowed(Array.from({ length: 10 }, (_, i) => a.hit(`turn-${i}`, limits, 'fixed-window'))), 10);
    assert.deepEqual(batches, [10]);
  });

  it('grants a large limit exactly to crowds on both workers: none over, none left in a lease', async () => {
    for (const algorithm of ['fixed-window', 'sliding-window', 'token-bucket'] as const) {
      const [a, b] = node(new MemoryRateLimitStore(() => now));
      const limits: Limit[] = [{ seconds: 3600, limit: 1000 }];
      const key = `crowd-${algorithm}`;
      const crowd = () => Array.from({ length: 1500 }, async (_, i) => (i % 2 ? a : b).hit(key, limits, algorithm));
      assert.equal(await allowed([...crowd(), ...crowd()]), 1000, algorithm);
      assert.equal(await allowed(crowd()), 0, `${algorithm}: spent`);
    }
  });

  it('decides a key served fast from leases: a message per block, not per request', async () => {
    const [a, b] = node(new MemoryRateLimitStore(() => now));
    const limits = [{ seconds: 1, limit: 1e9 }];
    let ok = 0;
    for (let i = 0; i < 2000; i++) if ((await (i % 2 ? a : b).hit('fast', limits, 'sliding-window')).allowed) ok++;
    assert.equal(ok, 2000);
    assert.ok(a.messages + b.messages <= 30, `${a.messages + b.messages} messages for 2,000 requests`);
  });

  it('remembers a refusal: a key over its limit costs no message per request', async () => {
    const [a] = node(new MemoryRateLimitStore(() => now));
    const limits = [{ seconds: 3600, limit: 2 }];
    assert.equal(await allowed(Array.from({ length: 3 }, () => a.hit('over', limits, 'fixed-window'))), 2);
    const before = a.messages;
    for (let i = 0; i < 50; i++) assert.equal((await a.hit('over', limits, 'fixed-window')).allowed, false);
    assert.equal(a.messages, before);
  });

  it('lets a block lapse with the window it was granted in, however late its answer is handled', async () => {
    now = Math.floor(now) + 0.9;
    const primary = new MemoryRateLimitStore(() => now);
    let hold = false;
    let held: (() => void) | null = null;
    const w: PrimaryRateLimitStore = new PrimaryRateLimitStore((m: ToPrimary) => {
      if (m.t !== 'rl') return;
      const a = grantBatch(primary, m); // decided now, on the primary's clock
      const deliver = () => { if (a.t === 'rl') w.answer(a.id, a.grants); };
      if (hold) held = deliver; else setImmediate(deliver);
    }, clock);
    const limits = [{ seconds: 1, limit: 1000 }];
    assert.equal((await w.hit('late', limits, 'fixed-window')).allowed, true); // a first lease of one unit
    hold = true;
    const second = w.hit('late', limits, 'fixed-window'); // asks for a block of 99 in this window
    await waitUntil(() => held !== null);
    now = Math.floor(now) + 1.05; // the answer is handled in the next window
    hold = false;
    held!();
    assert.equal((await second).allowed, true);
    let ok = 0;
    for (let i = 0; i < 1500; i++) if ((await w.hit('late', limits, 'fixed-window')).allowed) ok++;
    assert.equal(ok, 1000, 'the next window allows its limit, not its limit and what was left of the last block');
  });

  it('fails the calls of a batch the primary never answers, so the plugin\'s fault_tolerant decides', async () => {
    const silent = new PrimaryRateLimitStore(() => {});
    await assert.rejects(async () => silent.hit('k', [{ seconds: 1, limit: 1 }], 'fixed-window'), /did not answer within 1000 ms/);
  });
});
