// Cluster-wide rate-limit counters in Redis. One EVALSHA leases a block of units of every
// configured period atomically, on Redis's clock (TIME), so any number of nodes share exact counts
// (leased-rate-limit.ts spends the block). A short
// command timeout and a breaker keep a slow or dead Redis from holding requests: while the breaker
// is open, calls fail at once and the plugin applies its configured fallback.
import { Redis, type RedisOptions } from 'ioredis';
import type { Algorithm, Decision, Grant, Limit, RateLimitStore, RedisConnectionConfig } from '@portico/shared/plugins/handlers';
import { LeasedRateLimitStore, StoreUnavailableError } from './leased-rate-limit.ts';

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

type RedisWithScript = Redis & { portico_rl(numKeys: number, ...args: (string | number)[]): Promise<number[]> };

/** Counters in Redis, leased (leased-rate-limit.ts): one script call grants a block for every limit at once. */
export class RedisRateLimitStore extends LeasedRateLimitStore {
  private failures = 0;
  private openUntil = 0;
  /** Script calls made (for the benchmark's calls-per-request figure). */
  calls = 0;
  /** Connection errors seen (portico_redis_errors_total). */
  errors = 0;
  private readonly redis: RedisWithScript;

  private readonly timeoutMs: number;

  constructor(options: RedisOptions, private readonly onStateChange: (open: boolean) => void = () => {}) {
    super();
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

  protected async call(key: string, limits: Limit[], algorithm: Algorithm, want: number): Promise<Grant> {
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
    return { granted: reply[0], remaining, resetMs, nowMs: reply[1 + 2 * limits.length] };
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
