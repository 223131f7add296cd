// The behaviour every rate-limit store must have. Run against the in-memory store (fake clock)
// and the Redis store (real redis-server, Redis's clock), so they cannot drift apart.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RateLimitStore } from './store.ts';

export interface ContractClock {
  /** Wait until `fraction` (0..1) into the current second, or the next one if already past it. */
  atFraction(fraction: number): Promise<void>;
  sleep(ms: number): Promise<void>;
}

let unique = 0;
const k = () => `contract-${process.pid}-${Date.now()}-${unique++}`;

export function rateLimitStoreContract(name: string, make: () => RateLimitStore, clock: ContractClock): void {
  describe(`rate-limit store contract: ${name}`, () => {
    it('fixed window: allows exactly the limit, blocked requests are not counted', async () => {
      const s = make(); const key = k();
      await clock.atFraction(0.05);
      const results = [];
      for (let i = 0; i < 8; i++) results.push(await s.hit(key, [{ seconds: 60, limit: 5 }], 'fixed-window'));
      assert.deepEqual(results.map((r) => r.allowed), [true, true, true, true, true, false, false, false]);
      assert.deepEqual(results.map((r) => r.remaining[0]), [4, 3, 2, 1, 0, 0, 0, 0]);
      assert.ok(results[7].reset[0] >= 1 && results[7].reset[0] <= 60);
    });

    it('decides several periods at once and counts none when one denies', async () => {
      const s = make(); const key = k();
      const limits = [{ seconds: 60, limit: 3 }, { seconds: 3600, limit: 100 }];
      for (let i = 0; i < 3; i++) assert.equal((await s.hit(key, limits, 'fixed-window')).allowed, true);
      const denied = await s.hit(key, limits, 'fixed-window');
      assert.equal(denied.allowed, false);
      assert.deepEqual(denied.remaining, [0, 97], 'the hour counter was not charged for the blocked request');
    });

    it('fixed window resets at the boundary; sliding window does not double the burst', async () => {
      const fixed = make(); const sliding = make(); const kf = k(); const ks = k();
      await clock.atFraction(0.85);
      for (let i = 0; i < 10; i++) {
        assert.equal((await fixed.hit(kf, [{ seconds: 1, limit: 10 }], 'fixed-window')).allowed, true);
        assert.equal((await sliding.hit(ks, [{ seconds: 1, limit: 10 }], 'sliding-window')).allowed, true);
      }
      await clock.atFraction(0.2);
      let fixedOk = 0, slidingOk = 0;
      for (let i = 0; i < 10; i++) {
        if ((await fixed.hit(kf, [{ seconds: 1, limit: 10 }], 'fixed-window')).allowed) fixedOk++;
        if ((await sliding.hit(ks, [{ seconds: 1, limit: 10 }], 'sliding-window')).allowed) slidingOk++;
      }
      assert.equal(fixedOk, 10, 'a fixed window allows a second full burst right after the boundary');
      assert.ok(slidingOk <= 3, `sliding window allowed ${slidingOk} right after the boundary`);
    });

    it('token bucket: a burst up to the capacity, then refills at the rate', async () => {
      const s = make(); const key = k();
      const limits = [{ seconds: 1, limit: 4, capacity: 8 }];
      let ok = 0;
      for (let i = 0; i < 12; i++) if ((await s.hit(key, limits, 'token-bucket')).allowed) ok++;
      assert.equal(ok, 8, 'burst of the capacity');
      await clock.sleep(520);
      let refilled = 0;
      for (let i = 0; i < 6; i++) if ((await s.hit(key, limits, 'token-bucket')).allowed) refilled++;
      assert.ok(refilled >= 2 && refilled <= 3, `~2 tokens refill in half a second at 4/s (got ${refilled})`);
    });

    it('keeps keys apart', async () => {
      const s = make(); const a = k(); const b = k();
      assert.equal((await s.hit(a, [{ seconds: 60, limit: 1 }], 'fixed-window')).allowed, true);
      assert.equal((await s.hit(a, [{ seconds: 60, limit: 1 }], 'fixed-window')).allowed, false);
      assert.equal((await s.hit(b, [{ seconds: 60, limit: 1 }], 'fixed-window')).allowed, true);
    });
  });
}
