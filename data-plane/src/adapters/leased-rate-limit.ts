// Rate-limit counters held elsewhere (Redis for policy `redis`; a multi-worker node's primary for
// policy `local`), spent here from leases: a call to the store grants a block of units, taken out
// of the shared counter at once, and this process decides requests from the block until it runs
// low. The counter never admits more than its limit, whichever process spends a unit; what a lease
// can strand (units one process holds while another is refused) is bounded by leaseSize. Requests
// on a key served fast cost a call every ~50 ms of its pace rather than one each.
import { LRUCache } from 'lru-cache';
import type { Algorithm, Decision, Grant, Limit, RateLimitStore } from '@portico/shared/plugins/handlers';

/** The store could not decide (down, breaker open, no answer): the plugin's fault_tolerant decides. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) { super(message, options); this.name = 'StoreUnavailableError'; }
}

/** Units leased from the counter store and not yet used, or a remembered refusal. */
interface Lease {
  units: number;
  expiresAt: number;
  refused: boolean;
  /** Per limit, as the store reported at lease time, counting this lease as unused. */
  remaining: number[];
  reset: number[];
  /** `reset` in whole seconds, as headers show it. */
  resetS: number[];
  /** The decision for a remembered refusal (the same object every time). */
  refusal: Decision;
  /** The decision the fast path hands out, updated in place. */
  shared: Decision;
  inflight: Promise<void> | null;
  /** Units this lease was granted: its next block is asked for when a quarter of them are left. */
  size: number;
  /** The next block, asked for while this lease still serves (see `refill`). */
  refill: Promise<void> | null;
  /** When its shortest window ends, on the counter store's clock (ms): tells a refill of the same window from a later one. */
  windowEnd: number;
  /** When its last block landed (performance.now(): a clock step does not read as a pace), and the units it held then (`leaseSize`). */
  landedAt: number;
  heldAtLanding: number;
}

/**
 * Units one lease takes: at most a tenth of what is left, so ten nodes (or workers) can share the
 * rest; within that, 100, or more for a key this node serves fast: what it used in LEASE_SPAN_MS at its pace
 * since the last block landed, at most twice the last block (a burst is not a pace: it grows the
 * lease one doubling per block) and MAX_PACED_LEASE. A key at 25,000 req/s on one node then asks
 * the store ~25 times a second instead of ~330 (a Redis call is a socket write and read here and a
 * script run in Redis: ~1 µs a request at 100-unit leases). What a lease can strand when its key goes quiet
 * stays bounded by a tenth of what was left and by twice its last block.
 */
const BASE_LEASE = 100;
const MAX_PACED_LEASE = 5_000;
const LEASE_SPAN_MS = 50;
const LEASE_SHARE = 10;
/**
 * Leases one store keeps (keys come from clients). An LRU: O(1) per insert, and past the cap the
 * least recently used lease goes; its unused units are lost, which only errs towards refusing, and
 * that key's next request asks the store. A lease carries its own expiry (`expiresAt`), checked on
 * every read. Measured ~600 bytes of heap per lease, so the cap bounds a store at ~12 MB.
 */
export const MAX_LEASES = 20_000;
/** Leases smaller than this are not refilled ahead: a lease of a few units is a limit nearly spent. */
const REFILL_MIN = 8;
/** A refill whose window ends (the store's clock) within this of the lease's is in the same window (reset times are rounded up to the ms). */
const SAME_WINDOW_MS = 500;
/** Waits for other requests' leases before asking for a single unit directly. */
const MAX_ROUNDS = 20;

export function leaseSize(previous: Pick<Lease, 'remaining' | 'units' | 'size' | 'landedAt' | 'heldAtLanding'>, now: number): number {
  const left = Math.min(...previous.remaining) - previous.units;
  const used = previous.heldAtLanding - previous.units;
  const paced = used > 0 ? Math.ceil(used * LEASE_SPAN_MS / Math.max(1, now - previous.landedAt)) : 0;
  const wanted = Math.min(MAX_PACED_LEASE, Math.max(BASE_LEASE, Math.min(paced, 2 * previous.size)));
  return Math.max(1, Math.min(wanted, Math.floor(left / LEASE_SHARE)));
}

const leaseSuffixes = new WeakMap<Limit[], { algorithm: Algorithm; suffix: string }>();
/**
 * Leases belong to a counter and the limits they were granted under: a changed limit starts
 * afresh. A plugin instance passes the same limits array on every request, so its suffix is built once.
 */
function leaseKey(key: string, limits: Limit[], algorithm: Algorithm): string {
  let s = leaseSuffixes.get(limits);
  if (s === undefined || s.algorithm !== algorithm) {
    let suffix = '|' + algorithm;
    for (const l of limits) suffix += `|${l.limit}/${l.seconds}/${l.capacity ?? ''}`;
    s = { algorithm, suffix };
    leaseSuffixes.set(limits, s);
  }
  return key + s.suffix;
}

function spend(lease: Lease): void {
  lease.units--;
  for (let i = 0; i < lease.remaining.length; i++) if (lease.remaining[i] > 0) lease.remaining[i]--;
}

/** A unit for a caller that may read the decision later (after an await): its own copy. */
function take(lease: Lease): Decision {
  spend(lease);
  return { allowed: true, remaining: [...lease.remaining], reset: lease.resetS };
}

/** A unit for a synchronous caller: no allocation. */
function takeShared(lease: Lease): Decision {
  spend(lease);
  return lease.shared;
}

function refusal(lease: Lease): Decision {
  return lease.refusal;
}

/** A store whose counters live elsewhere, decided from leases; subclasses make the call. */
export abstract class LeasedRateLimitStore implements RateLimitStore {
  private readonly leases = new LRUCache<string, Lease>({ max: MAX_LEASES });
  /** The lease key `hit` was asked last, and its lease then (see `hit`). */
  private lastKey: string | null = null;
  private lastLease: Lease | undefined = undefined;

  /** `clock`: ms, as Date.now (tests drive it with the store's). */
  constructor(protected readonly clock: () => number = Date.now) {}

  /**
   * Grants up to `want` units of every limit of `key` at once (fewer, or none, as the limits
   * allow). Throws StoreUnavailableError when the store cannot answer.
   */
  protected abstract call(key: string, limits: Limit[], algorithm: Algorithm, want: number): Promise<Grant>;

  /** Refills asked of the store and not answered yet (tests wait on them rather than on time). */
  refilling = 0;

  /** Leases held now (for the bounded-state test). */
  get leaseCount(): number { return this.leases.size; }

  /**
   * Decide one request. Served from this process's lease while it holds units (no call);
   * otherwise one call leases the next block, shared by every request waiting here.
   * A refusal is remembered until it could change (window reset, next token, or 100 ms for a
   * sliding window), so a 429 storm does not become a storm of calls.
   */
  hit(key: string, limits: Limit[], algorithm: Algorithm): Decision | Promise<Decision> {
    const lk = leaseKey(key, limits, algorithm);
    // The key asked last, remembered beside the LRU (whose bookkeeping costs ~0.5 µs a call): one
    // consumer's burst reads its lease here. An evicted lease stays usable: its units are this node's.
    let lease: Lease | undefined;
    if (lk === this.lastKey) lease = this.lastLease;
    else {
      lease = this.leases.get(lk);
      this.lastKey = lk;
      this.lastLease = lease;
    }
    const now = this.clock();
    if (lease && now < lease.expiresAt && !lease.inflight) {
      // The caller reads the decision before anything else runs: share the lease's arrays.
      if (lease.units > 0) {
        const d = takeShared(lease);
        // Only a lease the LRU still holds (the memo may serve one it dropped): acquire finds its units.
        if (lease.units === lease.size >> 2 && lease.size >= REFILL_MIN && !lease.refill && this.leases.peek(lk) === lease) this.refill(key, limits, algorithm, lease);
        return d;
      }
      if (lease.refused) return lease.refusal;
    }
    return this.acquire(key, limits, algorithm);
  }

  /**
   * Asks the store for the next block while the lease still has a quarter of its units, so requests
   * keep being decided here instead of all waiting on a round trip when it runs dry. Units from
   * the same window join the lease; a block from a later window replaces what is left (those
   * lapse with theirs). A refusal or a failure changes nothing: the lease runs out and the next
   * request asks as usual.
   */
  private refill(key: string, limits: Limit[], algorithm: Algorithm, lease: Lease): void {
    this.refilling++;
    // Expiry counts from when the block was asked for: the window it was granted in may end before
    // the answer is handled here, and its units must not be spent in the next one.
    const sentAt = this.clock();
    lease.refill = this.call(key, limits, algorithm, leaseSize(lease, performance.now())).then((r) => {
      if (r.granted === 0) return;
      const now = this.clock();
      const soonest = Math.min(...r.resetMs);
      const expiresAt = sentAt + (algorithm === 'token-bucket' ? Math.min(soonest, 1_000) : soonest);
      // Both ends on the store's clock: how late either reply was handled here does not matter.
      const windowEnd = r.nowMs + soonest;
      const laterWindow = algorithm !== 'token-bucket' && windowEnd > lease.windowEnd + SAME_WINDOW_MS;
      lease.units = laterWindow || now >= lease.expiresAt ? r.granted : lease.units + r.granted;
      lease.size = r.granted;
      lease.landedAt = performance.now();
      lease.heldAtLanding = lease.units;
      lease.expiresAt = expiresAt;
      lease.windowEnd = windowEnd;
      // In place: `shared` hands these arrays out.
      for (let i = 0; i < r.remaining.length; i++) {
        lease.remaining[i] = r.remaining[i] + lease.units;
        lease.reset[i] = r.resetMs[i];
        lease.resetS[i] = Math.max(1, Math.ceil(r.resetMs[i] / 1000));
      }
    }, () => { /* the lease runs out and the next request asks again (and meets the failure) */ }).finally(() => { lease.refill = null; this.refilling--; });
  }

  /**
   * Take a unit from a fresh lease. Only one lease per key is in flight at a time; waiters take
   * from the lease they waited for (never a later one), so no leased unit is stranded.
   */
  private async acquire(key: string, limits: Limit[], algorithm: Algorithm): Promise<Decision> {
    const lk = leaseKey(key, limits, algorithm);
    for (let round = 0; ; round++) {
      const lease = this.leases.get(lk);
      if (lease?.refill) {
        // Its next block is on the way: wait for it rather than ask for another.
        await lease.refill;
        if (this.clock() < lease.expiresAt && lease.units > 0) return take(lease);
        // Taken by those ahead: look again, so waiters share one next lease instead of each asking.
        if (round < MAX_ROUNDS) continue;
      }
      if (lease?.inflight) {
        await lease.inflight;
        if (this.clock() < lease.expiresAt) {
          if (lease.units > 0) return take(lease);
          if (lease.refused) return refusal(lease);
        }
        if (round < MAX_ROUNDS) continue;
      } else if (lease && this.clock() < lease.expiresAt) {
        if (lease.units > 0) return take(lease);
        if (lease.refused) return refusal(lease);
      }
      const want = lease && round < MAX_ROUNDS ? leaseSize(lease, performance.now()) : 1;
      const none: Decision = { allowed: false, remaining: [], reset: [] };
      const next: Lease = { units: 0, expiresAt: 0, refused: false, remaining: [], reset: [], resetS: [], refusal: none, shared: none, inflight: null, size: 0, refill: null, windowEnd: 0, landedAt: 0, heldAtLanding: 0 };
      const sentAt = this.clock(); // as in refill: the block lapses with the window it was granted in
      next.inflight = this.call(key, limits, algorithm, want).then((r) => {
        next.units = r.granted;
        next.size = r.granted;
        next.landedAt = performance.now();
        next.heldAtLanding = r.granted;
        next.windowEnd = r.nowMs + Math.min(...r.resetMs);
        next.remaining = r.remaining.map((x) => x + r.granted);
        next.reset = r.resetMs;
        next.resetS = r.resetMs.map((ms) => Math.max(1, Math.ceil(ms / 1000)));
        next.refusal = { allowed: false, remaining: [...r.remaining], reset: next.resetS };
        next.shared = { allowed: true, remaining: next.remaining, reset: next.resetS };
        next.refused = r.granted === 0;
        // Units are good until the shortest window turns; a refusal in a sliding window is
        // re-estimated after 100 ms; bucket units are used within a second.
        const soonest = Math.min(...r.resetMs);
        next.expiresAt = sentAt + (next.refused && algorithm === 'sliding-window' ? Math.min(soonest, 100)
          : !next.refused && algorithm === 'token-bucket' ? Math.min(soonest, 1_000) : soonest);
      }).finally(() => { next.inflight = null; });
      this.leases.set(lk, next);
      if (this.lastKey === lk) this.lastLease = next;
      await next.inflight;
      if (next.units > 0) return take(next);
      if (next.refused) return refusal(next);
    }
  }
}
