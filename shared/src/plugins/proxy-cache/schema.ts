// proxy-cache (reference/kong-compat.md §4.12, edge-design.md §3c): Kong's fields and defaults,
// plus where entries live (`strategy`), whose they are (`cache_scope`), Set-Cookie and staleness.
import { z } from 'zod';
import { bool, int, oneOf, opt, set, text } from '../../entities/fields.ts';
import { headerValue, kongHeaderName } from '../http-fields.ts';
import { redisConnectionConfig } from '../rate-limiting/schema.ts';
import type { PluginDefinition } from '../types.ts';

/** Kong's `memory.dictionary_name` default; here it names a node-local LRU, never the config cache. */
export const DEFAULT_DICTIONARY = 'kong_db_cache';
export const DEFAULT_MEMORY_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const DEFAULT_LOCK_MS = 5_000;

const METHODS = ['GET', 'HEAD', 'POST', 'PATCH', 'PUT'] as const;

export const proxyCacheConfig = z.strictObject({
  strategy: oneOf(['memory', 'redis', 'tiered']).default('memory')
    .describe("'memory': a byte-capped LRU per node; 'redis': shared by every node; 'tiered': the node's LRU in front of Redis"),
  response_code: set(int(100, 900)).min(1, 'length must be at least 1').default([200, 301, 404]).describe('Upstream statuses that are cached'),
  request_method: set(oneOf(METHODS)).min(1, 'length must be at least 1').default(['GET', 'HEAD']).describe('Request methods that are cached'),
  content_type: set(headerValue().min(1, 'length must be at least 1')).min(1, 'length must be at least 1').default(['text/plain', 'application/json'])
    .describe('Response media types that are cached (parameters such as charset are ignored unless listed)'),
  cache_ttl: int(1, 2 ** 31 - 1).default(300).describe('Seconds an entry is fresh'),
  storage_ttl: opt(int(1, 2 ** 31 - 1)).describe('Seconds an entry is kept in its store (default: cache_ttl plus the stale windows)'),
  cache_control: bool().default(false).describe('Follow RFC 9111 Cache-Control from clients and the upstream'),
  ignore_uri_case: bool().default(false).describe('Treat paths differing only in case as one entry'),
  vary_headers: opt(set(kongHeaderName())).describe('Request headers whose values are part of the key (unset: none)'),
  vary_query_params: opt(set(text().min(1, 'length must be at least 1'))).describe('Query arguments that are part of the key (unset: all)'),
  response_headers: z.strictObject({
    age: bool().default(true).describe('Send Age on cached answers'),
    'X-Cache-Status': bool().default(true).describe('Send X-Cache-Status (Miss, Hit, Refresh, Bypass, Stale, Collapsed)'),
    'X-Cache-Key': bool().default(true).describe('Send X-Cache-Key'),
  }).default({ age: true, 'X-Cache-Status': true, 'X-Cache-Key': true }).describe('Cache headers sent to the client (a Kong-Debug request header sends them all)'),
  memory: z.strictObject({
    dictionary_name: text().min(1, 'length must be at least 1').default(DEFAULT_DICTIONARY).describe('Names the node-local LRU; configs naming the same one share it'),
    max_bytes: int(1024, 2 ** 40).default(DEFAULT_MEMORY_MAX_BYTES).describe('Bytes the LRU holds before it evicts the least recently used entries'),
  }).default({ dictionary_name: DEFAULT_DICTIONARY, max_bytes: DEFAULT_MEMORY_MAX_BYTES }).describe('Node-local store (strategy memory or tiered)'),
  redis: redisConnectionConfig().describe('Redis connection (strategy redis or tiered)'),
  cache_scope: oneOf(['consumer', 'shared']).default('consumer')
    .describe("'consumer': each consumer has its own entries (Kong's); 'shared': one entry per request for every consumer"),
  cache_set_cookie: bool().default(false).describe('Store responses that set cookies (never, by default: a cookie would be handed to every client)'),
  max_body_bytes: int(0, 512 * 1024 * 1024).default(DEFAULT_MAX_BODY_BYTES).describe('Largest response body stored; larger ones stream through uncached'),
  stale_while_revalidate: int(0, 2 ** 31 - 1).default(0).describe('Seconds past freshness an entry is still served while one background request refreshes it'),
  stale_if_error: int(0, 2 ** 31 - 1).default(0).describe('Seconds past freshness an entry is served when the upstream fails (5xx, timeout, connection error, circuit open)'),
  lock_ms: int(10, 600_000).default(DEFAULT_LOCK_MS)
    .describe('Longest one upstream fetch holds a key: other requests for it wait this long for the entry, then fetch themselves'),
  tag_header: opt(kongHeaderName()).describe('Response header whose space- or comma-separated values tag an entry for purges by tag (e.g. Surrogate-Key)'),
}).superRefine((c, ctx) => {
  if (c.storage_ttl !== null && c.storage_ttl < c.cache_ttl) ctx.addIssue({ code: 'custom', path: ['storage_ttl'], message: 'must not be shorter than cache_ttl' });
});
export type ProxyCacheConfig = z.infer<typeof proxyCacheConfig>;

export const proxyCache: PluginDefinition = { name: 'proxy-cache', priority: 100, configSchema: proxyCacheConfig };
