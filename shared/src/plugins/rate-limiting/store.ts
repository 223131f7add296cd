// Counter stores for rate limiting. One call decides a request against every configured period at
// once: allowed only if all allow, and then all are incremented (blocked requests are not
// counted). The in-memory store here and the Redis store in data-plane/ pass one contract suite.
import { LRUCache } from 'lru-cache';

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

/**
 * Up to the units asked for, granted against every limit at once (as many as all allow), with each
 * limit's state after them: what Redis's script and a multi-worker node's primary answer a lease with.
 */
export interface Grant {
  granted: number;
  remaining: number[];
  /** Per limit: ms until the counter resets (fixed) or frees capacity. */
  resetMs: number[];
  /** The store's clock when it granted them (ms). */
  nowMs: number;
}

export interface RateLimitStore {
  hit(key: string, limits: Limit[], algorithm: Algorithm): Decision | Promise<Decision>;
}

interface WindowState { start: number; curr: number; prev: number }
interface BucketState { tokens: number; ts: number }

/** What each algorithm needs, as pure functions of state and time (seconds). Shared with the Lua script's logic. */
export function windowEstimate(s: WindowState, size: number, now: number, sliding: boolean): { state: WindowState; count: number; untilS: number } {
  const w = Math.floor(now / size) * size;
  let st = s;
  if (w !== s.start) st = { start: w, curr: 0, prev: w - s.start === size ? s.curr : 0 };
  const elapsed = now - w;
  const count = sliding ? st.prev * (1 - elapsed / size) + st.curr : st.curr;
  return { state: st, count, untilS: size - elapsed };
}

export function bucketRefill(s: BucketState | undefined, capacity: number, ratePerS: number, now: number): BucketState {
  if (!s) return { tokens: capacity, ts: now };
  return { tokens: Math.min(capacity, s.tokens + (now - s.ts) * ratePerS), ts: now };
}

/** Reset as headers show it (whole seconds, at least 1), and as a lease needs it (ms). */
const inSeconds = (s: number) => Math.max(1, Math.ceil(s));
const inMs = (s: number) => Math.ceil(s * 1000);

/**
 * Most counters one node keeps. Keys come from clients (an IP, a header value), so the map is an
 * LRU: past the cap the least recently seen counter is dropped, as Kong's fixed-size
 * `kong_rate_limiting_counters` shared dict does. Measured ~330 bytes of heap per counter (two
 * periods), so the cap bounds the store at ~33 MB (test/integration/bounded-state.test.ts).
 */
export const MAX_LOCAL_COUNTERS = 100_000;

type Counter = { kind: 'w'; s: WindowState[] } | { kind: 'b'; s: BucketState[] };

/** Node-local counters. `now` is injected (seconds) so tests control time. */
export class MemoryRateLimitStore implements RateLimitStore {
  /**
   * One entry per key, a state per limit. An entry expires when it can no longer differ from a
   * fresh one (two windows, or a full bucket), so expiry never changes a decision.
   */
  private readonly counters: LRUCache<string, Counter>;

  constructor(private now: () => number = () => Date.now() / 1000, max = MAX_LOCAL_COUNTERS) {
    // ttlResolution 0: read the (injectable) clock on every check rather than caching it with a timer.
    this.counters = new LRUCache<string, Counter>({ max, ttlResolution: 0, perf: { now: () => this.now() * 1000 } });
  }

  /** Counters held now (expired ones included until they fall out). */
  get size(): number { return this.counters.size; }

  hit(key: string, limits: Limit[], algorithm: Algorithm): Decision {
    return this.decide(key, limits, algorithm, 1, inSeconds);
  }

  /**
   * Up to `want` units of every limit at once, as many as all allow (none is counted for the
   * others), decided as Redis's script decides them: a multi-worker node's primary answers its
   * workers' leases with this (data-plane/src/cluster/rate-limit.ts); `hit` is one unit of it.
   */
  take(key: string, limits: Limit[], algorithm: Algorithm, want: number): Grant {
    const now = this.now();
    const d = this.decide(key, limits, algorithm, want, inMs, now);
    return { granted: d.granted, remaining: d.remaining, resetMs: d.reset, nowMs: now * 1000 };
  }

  /** The one decision behind hit and take; `reset` as `unit` makes it of the seconds left. */
  private decide(key: string, limits: Limit[], algorithm: Algorithm, want: number, unit: (seconds: number) => number, now = this.now()): Decision & { granted: number } {
    const held = this.counters.get(key);
    let grant = want;
    if (algorithm === 'token-bucket') {
      const prev = held?.kind === 'b' && held.s.length === limits.length ? held.s : undefined;
      let ttlS = 0;
      const states = limits.map((l, i) => {
        ttlS = Math.max(ttlS, (l.capacity ?? l.limit) / (l.limit / l.seconds));
        const s = bucketRefill(prev?.[i], l.capacity ?? l.limit, l.limit / l.seconds, now);
        grant = Math.min(grant, Math.floor(s.tokens));
        return s;
      });
      grant = Math.max(0, grant);
      for (const s of states) s.tokens -= grant;
      this.counters.set(key, { kind: 'b', s: states }, { ttl: Math.ceil(ttlS * 1000) });
      return {
        allowed: grant === want && grant > 0,
        granted: grant,
        remaining: states.map((s) => Math.floor(s.tokens)),
        // Until the bucket is full again, or (empty) until its next token.
        reset: states.map((s, i) => unit((s.tokens >= 1 ? (limits[i].capacity ?? limits[i].limit) - s.tokens : 1 - s.tokens) / (limits[i].limit / limits[i].seconds))),
      };
    }
    const sliding = algorithm === 'sliding-window';
    const prev = held?.kind === 'w' && held.s.length === limits.length ? held.s : undefined;
    const est = limits.map((l, i) => {
      const e = windowEstimate(prev?.[i] ?? { start: 0, curr: 0, prev: 0 }, l.seconds, now, sliding);
      grant = Math.min(grant, Math.floor(l.limit - e.count));
      return e;
    });
    grant = Math.max(0, grant);
    let ttlS = 0;
    const states = est.map((e, i) => {
      ttlS = Math.max(ttlS, 2 * limits[i].seconds);
      return { start: e.state.start, curr: e.state.curr + grant, prev: e.state.prev };
    });
    this.counters.set(key, { kind: 'w', s: states }, { ttl: ttlS * 1000 });
    return {
      allowed: grant === want && grant > 0,
      granted: grant,
      remaining: est.map((e, i) => Math.max(0, Math.floor(limits[i].limit - e.count - grant))),
      reset: est.map((e) => unit(e.untilS)),
    };
  }

  /** Drop expired counters now (they also fall out as new keys arrive): memory back after a burst. */
  sweep(): void {
    this.counters.purgeStale();
  }
}
