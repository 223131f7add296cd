// Counter stores for rate limiting. One call decides a request against every configured period at
// once: allowed only if all allow, and then all are incremented (blocked requests are not
// counted). The in-memory store here and the Redis store in data-plane/ pass one contract suite.
export type Algorithm = 'fixed-window' | 'sliding-window' | 'token-bucket';

export interface Limit {
  /** Window (or refill period) in seconds. */
  seconds: number;
  limit: number;
  /** token-bucket: bucket size (default: limit). */
  capacity?: number;
}

export interface Decision {
  allowed: boolean;
  /** Per limit, in order: what is left after this request. */
  remaining: number[];
  /** Per limit: seconds until the counter resets (fixed) or frees capacity. */
  reset: number[];
}

export interface RateLimitStore {
  hit(key: string, limits: Limit[], algorithm: Algorithm): Decision | Promise<Decision>;
}

interface WindowState { start: number; curr: number; prev: number }
interface BucketState { tokens: number; ts: number }

/** What each algorithm needs, as pure functions of state and time (seconds). Shared with the Lua script's logic. */
export function windowEstimate(s: WindowState, size: number, now: number, sliding: boolean): { state: WindowState; count: number; reset: number } {
  const w = Math.floor(now / size) * size;
  let st = s;
  if (w !== s.start) st = { start: w, curr: 0, prev: w - s.start === size ? s.curr : 0 };
  const elapsed = now - w;
  const count = sliding ? st.prev * (1 - elapsed / size) + st.curr : st.curr;
  return { state: st, count, reset: Math.max(1, Math.ceil(size - elapsed)) };
}

export function bucketRefill(s: BucketState | undefined, capacity: number, ratePerS: number, now: number): BucketState {
  if (!s) return { tokens: capacity, ts: now };
  return { tokens: Math.min(capacity, s.tokens + (now - s.ts) * ratePerS), ts: now };
}

/** Node-local counters. `now` is injected (seconds) so tests control time. */
export class MemoryRateLimitStore implements RateLimitStore {
  private windows = new Map<string, WindowState & { size: number }>();
  private buckets = new Map<string, BucketState>();

  constructor(private now: () => number = () => Date.now() / 1000) {}

  hit(key: string, limits: Limit[], algorithm: Algorithm): Decision {
    const now = this.now();
    if (algorithm === 'token-bucket') {
      const states = limits.map((l, i) => bucketRefill(this.buckets.get(`${key}:${i}`), l.capacity ?? l.limit, l.limit / l.seconds, now));
      const allowed = states.every((s) => s.tokens >= 1);
      states.forEach((s, i) => { if (allowed) s.tokens -= 1; this.buckets.set(`${key}:${i}`, s); });
      return {
        allowed,
        remaining: states.map((s) => Math.floor(s.tokens)),
        reset: states.map((s, i) => {
          const rate = limits[i].limit / limits[i].seconds;
          return Math.max(1, Math.ceil((allowed ? (limits[i].capacity ?? limits[i].limit) - s.tokens : 1 - s.tokens) / rate));
        }),
      };
    }
    const sliding = algorithm === 'sliding-window';
    const est = limits.map((l, i) => windowEstimate(this.windows.get(`${key}:${i}`) ?? { start: 0, curr: 0, prev: 0 }, l.seconds, now, sliding));
    const allowed = est.every((e, i) => e.count + 1 <= limits[i].limit);
    est.forEach((e, i) => {
      this.windows.set(`${key}:${i}`, { start: e.state.start, curr: e.state.curr + (allowed ? 1 : 0), prev: e.state.prev, size: limits[i].seconds });
    });
    return {
      allowed,
      remaining: est.map((e, i) => Math.max(0, Math.floor(limits[i].limit - e.count - (allowed ? 1 : 0)))),
      reset: est.map((e) => e.reset),
    };
  }

  /** Drop counters whose windows ended long ago. */
  sweep(): void {
    const now = this.now();
    for (const [k, s] of this.windows) if (now - s.start >= 2 * s.size) this.windows.delete(k);
    for (const [k, s] of this.buckets) if (now - s.ts > 3600) this.buckets.delete(k);
  }
}
