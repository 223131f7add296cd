import { z } from 'zod';
import { bool, httpToken, int, oneOf, opt, referenceable, str, text } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

export const PERIODS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;
export type Period = (typeof PERIODS)[number];
/** Window sizes in seconds; month and year are nominal (30 and 365 days), as Kong's reset headers. */
export const PERIOD_SECONDS: Record<Period, number> = { second: 1, minute: 60, hour: 3600, day: 86_400, month: 2_592_000, year: 31_536_000 };

const limit = () => opt(z.number({ error: 'expected a number' }).positive('value should be greater than 0'));

/** A Redis connection in a plugin's config (rate-limiting, proxy-cache): unset host means the node's REDIS_URL. */
export const redisConnectionConfig = () => z.strictObject({
  host: opt(str()).describe("Redis host; unset: the node's REDIS_URL"),
  port: int(0, 65535).default(6379).describe('Redis port'),
  timeout: int(1, 60_000).default(250).describe('ms before a Redis call counts as failed (short, so no request waits on Redis)'),
  username: opt(referenceable(text())).describe('Redis ACL user, or a vault reference'),
  password: opt(referenceable(text())).describe('Redis password, or a vault reference such as {vault://env/REDIS_PASSWORD}'),
  database: int(0, 1024).default(0).describe('Redis database'),
  ssl: bool().default(false).describe('TLS to Redis'),
  ssl_verify: bool().default(false).describe('Verify the Redis certificate'),
  server_name: opt(text()).describe('SNI for TLS'),
}).default({ host: null, port: 6379, timeout: 250, username: null, password: null, database: 0, ssl: false, ssl_verify: false, server_name: null });

export const rateLimitingConfig = z.strictObject({
  second: limit().describe('Requests per second'),
  minute: limit().describe('Requests per minute'),
  hour: limit().describe('Requests per hour'),
  day: limit().describe('Requests per day'),
  month: limit().describe('Requests per month (30 days)'),
  year: limit().describe('Requests per year (365 days)'),
  limit_by: oneOf(['consumer', 'credential', 'ip', 'service', 'header', 'path', 'route', 'consumer-route']).default('consumer')
    .describe('What a counter is kept per; a missing identity falls back to the client IP'),
  header_name: opt(httpToken()).describe('Header to count by (limit_by=header)'),
  path: opt(text().startsWith('/', 'should start with: /')).describe('Path to count (limit_by=path)'),
  policy: oneOf(['local', 'redis', 'cluster']).default('local')
    .describe("'redis': exact across every node; 'local': per node, so N nodes allow up to N× the limit"),
  algorithm: oneOf(['fixed-window', 'sliding-window', 'token-bucket']).default('fixed-window')
    .describe("'fixed-window' (Kong's), 'sliding-window' (weighted previous window: no burst at the boundary), 'token-bucket' (burst, then a steady rate)"),
  burst: opt(int(1, 2 ** 31 - 1)).describe('token-bucket: bucket size for the shortest period (default: its limit)'),
  fault_tolerant: bool().default(true).describe('When the counter store fails: let traffic through (or count locally) rather than answer 503'),
  on_store_failure: oneOf(['allow', 'local']).default('allow').describe("With fault_tolerant: 'allow' passes requests, 'local' counts on this node until Redis is back"),
  hide_client_headers: bool().default(false).describe('Do not send rate-limit headers to clients'),
  error_code: int(100, 599).default(429).describe('Status when the limit is exceeded'),
  error_message: text().default('API rate limit exceeded').describe('Message when the limit is exceeded'),
  sync_rate: z.number().default(-1).describe('Kong compatibility; Portico counts synchronously'),
  redis: redisConnectionConfig().describe('Redis connection (policy redis)'),
}).superRefine((c, ctx) => {
  const set = PERIODS.filter((p) => c[p] != null);
  if (set.length === 0) ctx.addIssue({ code: 'custom', path: ['@entity'], message: "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'" });
  for (let i = 1; i < set.length; i++) {
    const shorter = set[i - 1], longer = set[i];
    if (c[longer]! < c[shorter]!) {
      ctx.addIssue({ code: 'custom', path: [longer], message: `The limit for ${longer}(${c[longer]}) cannot be lower than the limit for ${shorter}(${c[shorter]})` });
    }
  }
  if (c.policy === 'cluster') ctx.addIssue({ code: 'custom', path: ['policy'], message: "'cluster' is not supported: use 'redis' (exact across nodes) or 'local' (per node)" });
  if (c.limit_by === 'header' && !c.header_name) ctx.addIssue({ code: 'custom', path: ['header_name'], message: 'required field missing' });
  if (c.limit_by === 'path' && !c.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'required field missing' });
  if (c.burst != null && c.algorithm !== 'token-bucket') ctx.addIssue({ code: 'custom', path: ['burst'], message: "only with algorithm 'token-bucket'" });
}).meta({
  entity_checks: [
    { at_least_one_of: ['config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'] },
    { conditional: { if_field: 'config.limit_by', if_match: { eq: 'header' }, then_field: 'config.header_name', then_match: { required: true } } },
    { conditional: { if_field: 'config.limit_by', if_match: { eq: 'path' }, then_field: 'config.path', then_match: { required: true } } },
  ],
});
export type RateLimitingConfig = z.infer<typeof rateLimitingConfig>;

export const rateLimiting: PluginDefinition = { name: 'rate-limiting', priority: 910, configSchema: rateLimitingConfig };
