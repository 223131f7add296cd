// Cluster-wide rate-limit counters in Redis. One EVALSHA per request decides every configured
// period atomically, on Redis's clock (TIME), so any number of nodes share exact counts. A short
// command timeout and a breaker keep a slow or dead Redis from holding requests: while the breaker
// is open, calls fail at once and the plugin applies its configured fallback.
import { Redis, type RedisOptions } from 'ioredis';
import type { Algorithm, Decision, Limit, RateLimitStore, RedisConnectionConfig } from '@portico/shared/plugins/handlers';

/** KEYS: one hash per limit. ARGV: algorithm (f|s|t), then seconds, limit, capacity per limit. Returns {allowed, remaining1, reset1, …}. */
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local alg = ARGV[1]
local n = #KEYS
local allowed = 1
local out = {}
if alg == 't' then
  local tokens = {}
  for i = 1, n do
    local size, limit, cap = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
    local s = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
    local tk, ts = tonumber(s[1]), tonumber(s[2])
    if tk == nil then tk = cap else tk = math.min(cap, tk + (now - ts) * limit / size) end
    tokens[i] = tk
    if tk < 1 then allowed = 0 end
  end
  for i = 1, n do
    local size, limit, cap = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
    local rate = limit / size
    if allowed == 1 then tokens[i] = tokens[i] - 1 end
    redis.call('HSET', KEYS[i], 'tokens', tostring(tokens[i]), 'ts', tostring(now))
    redis.call('PEXPIRE', KEYS[i], math.ceil(cap / rate * 1000) + 1000)
    local reset
    if allowed == 1 then reset = math.ceil((cap - tokens[i]) / rate) else reset = math.ceil((1 - tokens[i]) / rate) end
    if reset < 1 then reset = 1 end
    out[#out + 1] = math.floor(tokens[i])
    out[#out + 1] = reset
  end
else
  local st = {}
  for i = 1, n do
    local size, limit = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
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
    if count + 1 > limit then allowed = 0 end
    local reset = math.ceil(size - elapsed)
    if reset < 1 then reset = 1 end
    st[i] = { start, curr, prev, count, reset }
  end
  for i = 1, n do
    local size, limit = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
    local s = st[i]
    redis.call('HSET', KEYS[i], 'start', s[1], 'curr', s[2] + allowed, 'prev', s[3])
    redis.call('EXPIRE', KEYS[i], size * 2)
    local rem = limit - s[4] - allowed
    if rem < 0 then rem = 0 end
    out[#out + 1] = math.floor(rem)
    out[#out + 1] = s[5]
  end
end
table.insert(out, 1, allowed)
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

export class RedisRateLimitStore implements RateLimitStore {
  private failures = 0;
  private openUntil = 0;
  private readonly redis: RedisWithScript;

  private readonly timeoutMs: number;

  constructor(options: RedisOptions, private readonly onStateChange: (open: boolean) => void = () => {}) {
    this.timeoutMs = options.commandTimeout ?? 250;
    this.redis = new Redis({
      enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1_000,
      retryStrategy: (times) => Math.min(times * 100, 1_000),
      ...options,
    }) as RedisWithScript;
    this.redis.on('error', () => { /* surfaced per call; reconnects on its own */ });
    this.redis.defineCommand('portico_rl', { lua: SCRIPT });
  }

  get breakerOpen(): boolean { return Date.now() < this.openUntil; }

  async hit(key: string, limits: Limit[], algorithm: Algorithm): Promise<Decision> {
    if (Date.now() < this.openUntil) throw new StoreUnavailableError('Redis breaker open');
    // One hash tag: every key of a request lands in one Redis Cluster slot.
    const keys = limits.map((l) => `portico:rl:{${key}}:${l.seconds}`);
    const args: (string | number)[] = [ALG[algorithm]];
    for (const l of limits) args.push(l.seconds, l.limit, l.capacity ?? l.limit);
    let reply: number[];
    try {
      // No offline queue: a command queued while Redis is away could run after it returns and
      // count a request twice. Wait for the connection within the timeout instead.
      if (this.redis.status !== 'ready') await this.ready();
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
    const remaining: number[] = [];
    const reset: number[] = [];
    for (let i = 0; i < limits.length; i++) { remaining.push(reply[1 + 2 * i]); reset.push(reply[2 + 2 * i]); }
    return { allowed: reply[0] === 1, remaining, reset };
  }

  private ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.redis.off('ready', onReady); reject(new Error(`not connected within ${this.timeoutMs} ms`)); }, this.timeoutMs);
      const onReady = () => { clearTimeout(timer); resolve(); };
      this.redis.once('ready', onReady);
    });
  }

  close(): void { this.redis.disconnect(); }
}

/** One store (and connection) per distinct Redis target, kept across snapshots. */
export class RateLimitStores {
  private stores = new Map<string, RedisRateLimitStore | FailingStore>();
  constructor(private readonly nodeRedisUrl: string | undefined, private readonly log: { warn(o: object, m: string): void; info(o: object, m: string): void }) {}

  get(c: RedisConnectionConfig): RateLimitStore {
    const key = c.host ? JSON.stringify(c) : `env:${c.timeout}`;
    let s = this.stores.get(key);
    if (!s) {
      if (!c.host && !this.nodeRedisUrl) s = new FailingStore('no Redis configured: set config.redis.host, or REDIS_URL on the data plane');
      else {
        const target = c.host ? `${c.host}:${c.port}` : this.nodeRedisUrl!;
        const onStateChange = (open: boolean) => this.log[open ? 'warn' : 'info']({ redis: target.replace(/\/\/[^@]*@/, '//***@') }, open ? 'Redis breaker opened' : 'Redis breaker closed');
        const options: RedisOptions = c.host
          ? {
            host: c.host, port: c.port, username: c.username ?? undefined, password: c.password ?? undefined, db: c.database,
            tls: c.ssl ? { rejectUnauthorized: c.ssl_verify, servername: c.server_name ?? undefined } : undefined, commandTimeout: c.timeout,
          }
          : { ...redisOptionsFromUrl(this.nodeRedisUrl!), commandTimeout: c.timeout };
        s = new RedisRateLimitStore(options, onStateChange);
      }
      this.stores.set(key, s);
    }
    return s;
  }

  close(): void { for (const s of this.stores.values()) if (s instanceof RedisRateLimitStore) s.close(); }
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
