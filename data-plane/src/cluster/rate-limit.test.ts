// A worker's port to the node's counters keeps the store contract (with the IPC channel replaced
// by an in-process one), decides a batch in order, and fails its hits when the primary is silent.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRateLimitStore } from '@portico/shared/plugins/handlers';
import { rateLimitStoreContract } from '../../../shared/src/plugins/rate-limiting/store.contract.ts';
import { decideBatch, PrimaryRateLimitStore } from './rate-limit.ts';
import type { ToPrimary } from './protocol.ts';

/** Two workers' stores in front of one primary store, as in a node; each message crosses a turn of the event loop. */
function node(primary: MemoryRateLimitStore, onBatch?: (size: number) => void): PrimaryRateLimitStore[] {
  const workers: PrimaryRateLimitStore[] = [];
  for (let i = 0; i < 2; i++) {
    const w: PrimaryRateLimitStore = new PrimaryRateLimitStore((m: ToPrimary) => {
      if (m.t !== 'rl') return;
      onBatch?.(m.hits.length);
      setImmediate(() => { const a = decideBatch(primary, m); if (a.t === 'rl') w.answer(a.id, a.decisions); });
    });
    workers.push(w);
  }
  return workers;
}

let now = 1_800_000_000;
rateLimitStoreContract('worker → primary', () => node(new MemoryRateLimitStore(() => now))[0], {
  atFraction: async (f) => {
    const frac = now - Math.floor(now);
    now = frac <= f ? Math.floor(now) + f : Math.floor(now) + 1 + f;
  },
  sleep: async (ms) => { now += ms / 1000; },
});

describe('node-wide local counters', () => {
  it('allows the limit once for the node, whichever worker takes each request, in one message per batch', async () => {
    const batches: number[] = [];
    const [a, b] = node(new MemoryRateLimitStore(() => now), (n) => batches.push(n));
    const limits = [{ seconds: 3600, limit: 7 }];
    const decisions = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).hit('k', limits, 'fixed-window')));
    assert.equal(decisions.filter((d) => d.allowed).length, 7);
    assert.deepEqual(batches, [10, 10], 'the hits of one turn of the event loop go as one message per worker');
  });

  it('fails the hits of a batch the primary never answers, so the plugin\'s fault_tolerant decides', async () => {
    const silent = new PrimaryRateLimitStore(() => {});
    await assert.rejects(silent.hit('k', [{ seconds: 1, limit: 1 }], 'fixed-window'), /did not answer within 1000 ms/);
  });
});
