import { z } from 'zod';
import { bool, oneOf } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

export const SIZE_UNITS = ['megabytes', 'kilobytes', 'bytes'] as const;
/** Kong's units are 1024-based. */
export const UNIT_BYTES: Record<(typeof SIZE_UNITS)[number], number> = { megabytes: 2 ** 20, kilobytes: 2 ** 10, bytes: 1 };

export const requestSizeLimitingConfig = z.strictObject({
  allowed_payload_size: z.int({ error: 'expected an integer' }).min(0, 'value should be at least 0').default(128).describe('Largest request body allowed, in size_unit'),
  size_unit: oneOf(SIZE_UNITS).default('megabytes').describe('Unit of allowed_payload_size (1024-based)'),
  require_content_length: bool().default(false).describe('Refuse (411) requests that send neither a Content-Length nor a chunked body'),
}).superRefine((c, ctx) => {
  if (c.allowed_payload_size * UNIT_BYTES[c.size_unit] > Number.MAX_SAFE_INTEGER) {
    ctx.addIssue({ code: 'custom', path: ['allowed_payload_size'], message: `value should be at most ${Math.floor(Number.MAX_SAFE_INTEGER / UNIT_BYTES[c.size_unit])} ${c.size_unit}` });
  }
});
export type RequestSizeLimitingConfig = z.infer<typeof requestSizeLimitingConfig>;

export const requestSizeLimiting: PluginDefinition = { name: 'request-size-limiting', priority: 951, configSchema: requestSizeLimitingConfig };
