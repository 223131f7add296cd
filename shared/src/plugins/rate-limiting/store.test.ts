import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRateLimitStore } from './store.ts';
import { rateLimitStoreContract } from './store.contract.ts';

// A fake clock: waiting moves time, so the suite runs instantly and exactly.
let now = 1_800_000_000;
rateLimitStoreContract('memory', () => new MemoryRateLimitStore(() => now), {
  atFraction: async (f) => {
    const frac = now - Math.floor(now);
    now = frac <= f ? Math.floor(now) + f : Math.floor(now) + 1 + f;
  },
  sleep: async (ms) => { now += ms / 1000; },
});

describe('take: what a multi-worker node\'s primary grants its workers', () => {
  it('grants as many units as every limit allows, counts them, and decides as hit does', () => {
    const s = new MemoryRateLimitStore(() => now);
    const limits = [{ seconds: 60, limit: 10 }, { seconds: 3600, limit: 25 }];
    const g = s.take('k', limits, 'fixed-window', 8);
    assert.equal(g.granted, 8);
    assert.deepEqual(g.remaining, [2, 17]);
    assert.equal(g.nowMs, now * 1000);
    assert.equal(s.take('k', limits, 'fixed-window', 5).granted, 2, 'no more than the tighter limit has left');
    const refused = s.hit('k', limits, 'fixed-window');
    assert.equal(refused.allowed, false);
    // The same decision in the units each needs: whole seconds for headers, ms for a lease.
    const later = s.take('k', limits, 'fixed-window', 1);
    assert.equal(later.granted, 0);
    assert.deepEqual(refused.reset, later.resetMs.map((ms) => Math.max(1, Math.ceil(ms / 1000))));
  });

  it('token bucket: an allowed request that leaves under a token says when the next one comes', () => {
    const s = new MemoryRateLimitStore(() => now);
    const limits = [{ seconds: 1, limit: 1, capacity: 3 }]; // a token a second, a bucket of three
    assert.deepEqual(s.hit('tb', limits, 'token-bucket').reset, [1], 'two left: a second to full again');
    s.hit('tb', limits, 'token-bucket');
    const last = s.hit('tb', limits, 'token-bucket');
    assert.equal(last.allowed, true);
    assert.deepEqual(last.reset, [1], 'none left: the next token, a second away (as the Redis script says), not 3 s to a full bucket');
  });
});
