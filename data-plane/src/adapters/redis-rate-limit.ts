// Cluster-wide rate-limit counters in Redis. One EVALSHA per request decides every configured
// period atomically, on Redis's clock (TIME), so any number of nodes share exact counts. A short
// command timeout and a breaker keep a slow or dead Redis from holding requests: while the breaker
// is open, calls fail at once and the plugin applies its configured fallback.
import { Redis, type RedisOptions } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Algorithm, Decision, Limit, RateLimitStore, RedisConnectionConfig } from '@portico/shared/plugins/handlers';

/**
 * KEYS: one hash per limit. ARGV: algorithm (f|s|t), wanted units, then seconds, limit, capacity per
 * limit. Grants as many of the wanted units (0..want) as every limit allows, atomically, on Redis's
 * clock. Returns {granted, remaining1, reset_ms1, …, redis_now_ms}.
 */
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local alg = ARGV[1]
local want = tonumber(ARGV[2])
local n = #KEYS
local grant = want
local out = {}
local function arg(i, j) return tonumber(ARGV[3 * i + j]) end
if alg == 't' then
  local tokens = {}
  for i = 1, n do
    local size, limit, cap = arg(i, 0), arg(i, 1), arg(i, 2)
    local s = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local tk, ts = tonumber(s[1]), tonumber(s[2])
    if tk == nil then tk = cap else tk = math.min(cap, tk + (now - ts) * limit / size) end
    tokens[i] = tk
    grant = math.min(grant, math.floor(tk))
  end
  if grant < 0 then grant = 0 end
  for i = 1, n do
    local size, limit, cap = arg(i, 0), arg(i, 1), arg(i, 2)
    local rate = limit / size
    tokens[i] = tokens[i] - grant
    redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i]), 'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(cap / rate * 1000) + 1000)
    local reset
    if tokens[i] >= 1 then reset = (cap - tokens[i]) / rate else reset = (1 - tokens[i]) / rate end
    out[#out + 1] = math.floor(tokens[i])
    out[#out + 1] = math.ceil(reset * 1000)
  end
else
  local st = {}
  for i = 1, n do
    local size, limit = arg(i, 0), arg(i, 1)
    local w = math.floor(now / size) * size
    local s = redis.call('HMGET', KEYS[i], 'start', 'curr', 'prev')
    local start, curr, prev = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
    if w ~= start then
      if w - start == size then prev = curr else prev = 0 end
      curr = 0
      start = w
    end
    local elapsed = now - w
    local count = curr
    if alg == 's' then count = prev * (1 - elapsed / size) + curr end
    grant = math.min(grant, math.floor(limit - count))
    st[i] = { start, curr, prev, count, (size - elapsed) * 1000 }
  end
  if grant < 0 then grant = 0 end
  for i = 1, n do
    local size, limit = arg(i, 0), arg(i, 1)
    local s = st[i]
    redis.call('HSET', KEYS[i], 'start', s[1], 'curr', s[2] + grant, 'prev', s[3])
    redis.call('EXPIRE', KEYS[i], size * 2)
    local rem = limit - s[4] - grant
    if rem < 0 then rem = 0 end
    out[#out + 1] = math.floor(rem)
    out[#out + 1] = math.ceil(s[5])
  end
end
table.insert(out, 1, grant)
out[#out + 1] = math.floor(now * 1000)
return out
`;

const ALG: Record<Algorithm, string> = { 'fixed-window': 'f', 'sliding-window': 's', 'token-bucket': 't' };
/** Consecutive failures that open the breaker, and how long it stays open. */
const BREAKER_THRESHOLD = 3;
const BREAKER_OPEN_MS = 2_000;

export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) { super(message, options); this.name = 'StoreUnavailableError'; }
}

type RedisWithScript = Redis & { portico_rl(numKeys: number, ...args: (string | number)[]): Promise<number[]> };

/** Units leased from Redis and not yet used, or a remembered refusal. */
interface Lease {
  units: number;
  expiresAt: number;
  refused: boolean;
  /** Per limit, as Redis reported at lease time, counting this lease as unused. */
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
  /** When its shortest window ends, on Redis's clock (ms): tells a refill of the same window from a later one. */
  windowEnd: number;
  /** When its last block landed (performance.now(): a clock step does not read as a pace), and the units it held then (`leaseSize`). */
  landedAt: number;
  heldAtLanding: number;
}

/**
 * Units one lease takes: at most a tenth of what is left, so ten nodes can share the rest; within
 * that, 100, or more for a key this node serves fast: what it used in LEASE_SPAN_MS at its pace
 * since the last block landed, at most twice the last block (a burst is not a pace: it grows the
 * lease one doubling per block) and MAX_PACED_LEASE. A key at 25,000 req/s on one node then asks
 * Redis ~25 times a second instead of ~330 (each call is a socket write and read here and a script
 * run in Redis: ~1 µs a request at 100-unit leases). What a lease can strand when its key goes quiet
 * stays bounded by a tenth of what was left and by twice its last block.
 */
const BASE_LEASE = 100;
const MAX_PACED_LEASE = 5_000;
const LEASE_SPAN_MS = 50;
const LEASE_SHARE = 10;
/**
 * Leases one store keeps (keys come from clients). An LRU: O(1) per insert, and past the cap the
 * least recently used lease goes; its unused units are lost, which only errs towards refusing, and
 * that key's next request asks Redis. A lease carries its own expiry (`expiresAt`), checked on
 * every read. Measured ~600 bytes of heap per lease, so the cap bounds a store at ~12 MB.
 */
export const MAX_LEASES = 20_000;
/** Leases smaller than this are not refilled ahead: a lease of a few units is a limit nearly spent. */
const REFILL_MIN = 8;
/** A refill whose window ends (Redis's clock) within this of the lease's is in the same window (reset times are rounded up to the ms). */
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

export class RedisRateLimitStore implements RateLimitStore {
  private failures = 0;
  private openUntil = 0;
  private readonly leases = new LRUCache<string, Lease>({ max: MAX_LEASES });
  /** The lease key `hit` was asked last, and its lease then (see `hit`). */
  private lastKey: string | null = null;
  private lastLease: Lease | undefined = undefined;
  /** Script calls made (for the benchmark's calls-per-request figure). */
  calls = 0;
  /** Connection errors seen (portico_redis_errors_total). */
  errors = 0;
  private readonly redis: RedisWithScript;

  private readonly timeoutMs: number;

  constructor(options: RedisOptions, private readonly onStateChange: (open: boolean) => void = () => {}) {
    this.timeoutMs = options.commandTimeout ?? 250;
    // lazyConnect: a store built while compiling a snapshot opens no socket until the snapshot is
    // committed (open()) or a request needs it, so a rejected snapshot leaves no connection behind.
    this.redis = new Redis({
      enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1_000, lazyConnect: true,
      retryStrategy: (times) => Math.min(times * 100, 1_000),
      ...options,
    }) as RedisWithScript;
    this.redis.on('error', () => { this.errors++; /* surfaced per call; reconnects on its own */ });
    this.redis.defineCommand('portico_rl', { lua: SCRIPT });
  }

  get breakerOpen(): boolean { return Date.now() < this.openUntil; }

  /** Whether the connection is up (ioredis `ready`). */
  get connected(): boolean { return this.redis.status === 'ready'; }

  /** Refills asked of Redis and not answered yet (tests wait on them rather than on time). */
  refilling = 0;

  /** Leases held now (for the bounded-state test). */
  get leaseCount(): number { return this.leases.size; }

  /**
   * Decide one request. Served from this node's lease while it holds units (no Redis call);
   * otherwise one script call leases the next block, shared by every request waiting here.
   * A refusal is remembered until it could change (window reset, next token, or 100 ms for a
   * sliding window), so a 429 storm does not become a Redis storm.
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
    const now = Date.now();
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
   * Asks Redis for the next block while the lease still has a quarter of its units, so requests
   * keep being decided here instead of all waiting on a round trip when it runs dry. Units from
   * the same window join the lease; a block from a later window replaces what is left (those
   * lapse with theirs). A refusal or a failure changes nothing: the lease runs out and the next
   * request asks as usual.
   */
  private refill(key: string, limits: Limit[], algorithm: Algorithm, lease: Lease): void {
    this.refilling++;
    lease.refill = this.call(key, limits, algorithm, leaseSize(lease, performance.now())).then((r) => {
      if (r.granted === 0) return;
      const now = Date.now();
      const soonest = Math.min(...r.resetMs);
      const expiresAt = now + (algorithm === 'token-bucket' ? Math.min(soonest, 1_000) : soonest);
      // Both ends on Redis's clock: how late either reply was handled here does not matter.
      const windowEnd = r.redisNowMs + soonest;
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
    }, () => { /* counted by call(); the lease runs out and the next request asks again */ }).finally(() => { lease.refill = null; this.refilling--; });
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
        if (Date.now() < lease.expiresAt && lease.units > 0) return take(lease);
        // Taken by those ahead: look again, so waiters share one next lease instead of each asking.
        if (round < MAX_ROUNDS) continue;
      }
      if (lease?.inflight) {
        await lease.inflight;
        if (Date.now() < lease.expiresAt) {
          if (lease.units > 0) return take(lease);
          if (lease.refused) return refusal(lease);
        }
        if (round < MAX_ROUNDS) continue;
      } else if (lease && Date.now() < lease.expiresAt) {
        if (lease.units > 0) return take(lease);
        if (lease.refused) return refusal(lease);
      }
      const want = lease && round < MAX_ROUNDS ? leaseSize(lease, performance.now()) : 1;
      const none: Decision = { allowed: false, remaining: [], reset: [] };
      const next: Lease = { units: 0, expiresAt: 0, refused: false, remaining: [], reset: [], resetS: [], refusal: none, shared: none, inflight: null, size: 0, refill: null, windowEnd: 0, landedAt: 0, heldAtLanding: 0 };
      next.inflight = this.call(key, limits, algorithm, want).then((r) => {
        const now = Date.now();
        next.units = r.granted;
        next.size = r.granted;
        next.landedAt = performance.now();
        next.heldAtLanding = r.granted;
        next.windowEnd = r.redisNowMs + Math.min(...r.resetMs);
        next.remaining = r.remaining.map((x) => x + r.granted);
        next.reset = r.resetMs;
        next.resetS = r.resetMs.map((ms) => Math.max(1, Math.ceil(ms / 1000)));
        next.refusal = { allowed: false, remaining: [...r.remaining], reset: next.resetS };
        next.shared = { allowed: true, remaining: next.remaining, reset: next.resetS };
        next.refused = r.granted === 0;
        // Units are good until the shortest window turns; a refusal in a sliding window is
        // re-estimated after 100 ms; bucket units are used within a second.
        const soonest = Math.min(...r.resetMs);
        next.expiresAt = now + (next.refused && algorithm === 'sliding-window' ? Math.min(soonest, 100)
          : !next.refused && algorithm === 'token-bucket' ? Math.min(soonest, 1_000) : soonest);
      }).finally(() => { next.inflight = null; });
      this.leases.set(lk, next);
      if (this.lastKey === lk) this.lastLease = next;
      await next.inflight;
      if (next.units > 0) return take(next);
      if (next.refused) return refusal(next);
    }
  }

  protected async call(key: string, limits: Limit[], algorithm: Algorithm, want: number): Promise<{ granted: number; remaining: number[]; resetMs: number[]; redisNowMs: number }> {
    if (Date.now() < this.openUntil) throw new StoreUnavailableError('Redis breaker open');
    // One hash tag: every key of a request lands in one Redis Cluster slot.
    const keys = limits.map((l) => `portico:rl:{${key}}:${l.seconds}`);
    const args: (string | number)[] = [ALG[algorithm], want];
    for (const l of limits) args.push(l.seconds, l.limit, l.capacity ?? l.limit);
    let reply: number[];
    try {
      // No offline queue: a command queued while Redis is away could run after it returns and
      // count a request twice. Wait for the connection within the timeout instead.
      if (this.redis.status !== 'ready') {
        this.open();
        await this.ready();
      }
      reply = await this.redis.portico_rl(keys.length, ...keys, ...args);
    } catch (err) {
      this.failures++;
      if (this.failures >= BREAKER_THRESHOLD) {
        if (this.openUntil <= Date.now()) this.onStateChange(true);
        this.openUntil = Date.now() + BREAKER_OPEN_MS;
      }
      throw new StoreUnavailableError(`Redis call failed: ${(err as Error).message}`, { cause: err });
    }
    if (this.failures >= BREAKER_THRESHOLD) this.onStateChange(false);
    this.failures = 0;
    this.openUntil = 0;
    this.calls++;
    const remaining: number[] = [];
    const resetMs: number[] = [];
    for (let i = 0; i < limits.length; i++) { remaining.push(reply[1 + 2 * i]); resetMs.push(reply[2 + 2 * i]); }
    return { granted: reply[0], remaining, resetMs, redisNowMs: reply[1 + 2 * limits.length] };
  }

  private ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.redis.off('ready', onReady); reject(new Error(`not connected within ${this.timeoutMs} ms`)); }, this.timeoutMs);
      const onReady = () => { clearTimeout(timer); resolve(); };
      this.redis.once('ready', onReady);
    });
  }

  /** Start connecting, if not yet asked to. */
  open(): void {
    if (this.redis.status === 'wait') this.redis.connect().catch(() => { /* retried by retryStrategy; reported per call */ });
  }

  /** Close the connection: replies already asked for still arrive (QUIT), nothing new is sent. */
  close(): void {
    if (this.redis.status === 'wait' || this.redis.status === 'end') { this.redis.disconnect(); return; }
    this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/**
 * One store (and connection) per distinct Redis config, shared by every plugin naming it and kept
 * across snapshots while some plugin uses it. Stores are asked for while a snapshot compiles;
 * `commit` after the swap closes those the new config no longer names (a `redis.timeout` edit
 * used to leave the old connection open for good), `rollback` after a rejected snapshot closes
 * those only it named, so the running config's stores are untouched.
 */
export class RateLimitStores {
  private stores = new Map<string, RedisRateLimitStore | FailingStore>();
  /** Keys the running config uses. */
  private live = new Set<string>();
  /** Keys asked for since the last commit or rollback (the config being compiled). */
  private claimed = new Set<string>();
  constructor(private readonly nodeRedisUrl: string | undefined, private readonly log: { warn(o: object, m: string): void; info(o: object, m: string): void }) {}

  /** Stores open now. */
  get size(): number { return this.stores.size; }

  /** Each Redis connection's state, for /metrics. */
  connections(): { connected: boolean; errors: number; breakerOpen: boolean }[] {
    return [...this.stores.values()].filter((s): s is RedisRateLimitStore => s instanceof RedisRateLimitStore)
      .map((s) => ({ connected: s.connected, errors: s.errors, breakerOpen: s.breakerOpen }));
  }

  get(c: RedisConnectionConfig): RateLimitStore {
    const key = c.host ? JSON.stringify(c) : `env:${c.timeout}`;
    this.claimed.add(key);
    let s = this.stores.get(key);
    if (!s) {
      if (!c.host && !this.nodeRedisUrl) s = new FailingStore('no Redis configured: set config.redis.host, or REDIS_URL on the data plane');
      else {
        const target = c.host ? `${c.host}:${c.port}` : this.nodeRedisUrl!;
        const onStateChange = (open: boolean) => this.log[open ? 'warn' : 'info']({ redis: target.replace(/\/\/[^@]*@/, '//***@') }, open ? 'Redis breaker opened' : 'Redis breaker closed');
        s = new RedisRateLimitStore(redisOptions(c, this.nodeRedisUrl!), onStateChange);
      }
      this.stores.set(key, s);
    }
    return s;
  }

  /** The config compiled since the last call is now the running one: close what it does not use. */
  commit(): void {
    for (const [key, s] of this.stores) {
      if (!this.claimed.has(key)) this.drop(key, s);
      else if (s instanceof RedisRateLimitStore) s.open();
    }
    this.live = this.claimed;
    this.claimed = new Set();
  }

  /** The config compiled since the last call was rejected: close what only it asked for. */
  rollback(): void {
    for (const key of this.claimed) {
      const s = this.stores.get(key);
      if (s && !this.live.has(key)) this.drop(key, s);
    }
    this.claimed = new Set();
  }

  private drop(key: string, s: RedisRateLimitStore | FailingStore): void {
    this.stores.delete(key);
    if (s instanceof RedisRateLimitStore) s.close();
  }

  close(): void { for (const s of this.stores.values()) if (s instanceof RedisRateLimitStore) s.close(); }
}

/** ioredis options for a plugin's Redis config: its own host, or the node's REDIS_URL when it names none. */
export function redisOptions(c: RedisConnectionConfig, nodeRedisUrl: string | undefined): RedisOptions {
  return c.host
    ? {
      host: c.host, port: c.port, username: c.username ?? undefined, password: c.password ?? undefined, db: c.database,
      tls: c.ssl ? { rejectUnauthorized: c.ssl_verify, servername: c.server_name ?? undefined } : undefined, commandTimeout: c.timeout,
    }
    : { ...redisOptionsFromUrl(nodeRedisUrl!), commandTimeout: c.timeout };
}

function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname, port: Number(u.port || 6379), username: u.username || undefined, password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0, tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

class FailingStore implements RateLimitStore {
  constructor(private readonly reason: string) {}
  hit(): Decision { throw new StoreUnavailableError(this.reason); }
}
