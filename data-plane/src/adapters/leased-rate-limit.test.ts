// How big a lease a leased store (Redis, or a multi-worker node's primary) asks for next: pure
// arithmetic; the stores themselves are tested against a real Redis (test/integration/redis-rate-limit-store.test.ts)
// and against the primary's counters (data-plane/src/cluster/rate-limit.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { leaseSize } from './leased-rate-limit.ts';

const lease = (o: { remaining: number; units: number; landedAt: number; heldAtLanding: number; size?: number }) => ({ size: o.heldAtLanding, ...o, remaining: [o.remaining] });

describe('leaseSize', () => {
  it('asks for 100 units when the key is slow or its pace is unknown', () => {
    assert.equal(leaseSize(lease({ remaining: 1e9, units: 0, landedAt: 0, heldAtLanding: 0 }), 10_000), 100);
    // 75 units used over 2 s: 50 ms of that pace is 2 units, and 100 is the floor.
    assert.equal(leaseSize(lease({ remaining: 1e9, units: 25, landedAt: 0, heldAtLanding: 100 }), 2_000), 100);
  });

  it('grows with the pace the key is served at here: 50 ms of it, at most twice the last block, up to 5,000', () => {
    // 750 units in 30 ms (25,000 a second): 50 ms of that is 1,250.
    assert.equal(leaseSize(lease({ remaining: 1e9, units: 250, landedAt: 1_000, heldAtLanding: 1_000 }), 1_030), 1_250);
    // The same pace after a block of 400: twice that at most.
    assert.equal(leaseSize(lease({ remaining: 1e9, units: 250, landedAt: 1_000, heldAtLanding: 1_000, size: 400 }), 1_030), 800);
    // A burst (75 units within a millisecond) after a 100-unit block: one doubling, not 3,750.
    assert.equal(leaseSize(lease({ remaining: 1e9, units: 25, landedAt: 5, heldAtLanding: 100 }), 5), 200);
    // Within the same millisecond, and capped.
    assert.equal(leaseSize(lease({ remaining: 1e9, units: 0, landedAt: 5, heldAtLanding: 4_000, size: 4_000 }), 5), 5_000);
  });

  it('never takes more than a tenth of what is left, and at least one unit', () => {
    assert.equal(leaseSize(lease({ remaining: 3_000, units: 250, landedAt: 1_000, heldAtLanding: 1_000 }), 1_030), 275);
    assert.equal(leaseSize(lease({ remaining: 500, units: 0, landedAt: 0, heldAtLanding: 0 }), 10), 50);
    assert.equal(leaseSize(lease({ remaining: 5, units: 2, landedAt: 0, heldAtLanding: 3 }), 10), 1);
  });
});
