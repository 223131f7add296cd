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
