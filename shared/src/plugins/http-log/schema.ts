import { z } from 'zod';
import { int, oneOf } from '../../entities/fields.ts';
import { headerValue, kongHeaderName } from '../http-fields.ts';
import type { PluginDefinition } from '../types.ts';
import { customFields, queueConfig } from './queue.ts';

/** Headers the plugin sets itself (Kong refuses them in `headers`). */
const OWN_HEADERS = new Set(['host', 'content-length', 'content-type']);

export const httpLogConfig = z.strictObject({
  http_endpoint: z.string().max(4096).refine((v) => { try { return /^https?:$/.test(new URL(v).protocol); } catch { return false; } },
    { error: 'expected an http or https URL' }).meta({ description: 'Where entries are sent; userinfo in the URL becomes Basic auth', example: 'http://127.0.0.1:9999/logs' }),
  method: oneOf(['POST', 'PUT', 'PATCH']).default('POST').describe('HTTP method of the request'),
  content_type: oneOf(['application/json', 'application/json; charset=utf-8']).default('application/json').describe('Content-Type of the request'),
  timeout: int(0, 2 ** 31 - 1).default(10_000).describe('ms before a request to the collector fails'),
  keepalive: int(0, 2 ** 31 - 1).default(60_000).describe('ms an idle connection to the collector stays open'),
  headers: z.record(kongHeaderName(), headerValue()).nullable().default(null)
    .refine((h) => !h || Object.keys(h).every((k) => !OWN_HEADERS.has(k.toLowerCase())), { error: 'cannot contain Host, Content-Length or Content-Type' })
    .describe('Headers added to every request'),
  queue: queueConfig(1).describe("Kong's queue: batching, retries with backoff, a bounded queue"),
  custom_fields_by_lua: customFields().describe('Static fields added to every entry (Lua is not run: values are literals)'),
});
export type HttpLogConfig = z.infer<typeof httpLogConfig>;

export const httpLog: PluginDefinition = { name: 'http-log', priority: 12, configSchema: httpLogConfig };
