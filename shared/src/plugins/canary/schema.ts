import { z } from 'zod';
import { httpToken, oneOf, opt, str } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

export const canaryConfig = z.strictObject({
  upstream_service: str().describe('Service (id or name) that receives the canary share'),
  percentage: z.number().min(0, 'value should be between 0 and 100').max(100, 'value should be between 0 and 100').describe('Share of requests sent to upstream_service'),
  hash: oneOf(['none', 'consumer', 'ip', 'header']).default('none').describe("'none': each request is drawn at random; otherwise the same consumer/ip/header value always lands on the same side"),
  hash_header: opt(httpToken()).describe('Header whose value decides the cohort (hash=header)'),
}).superRefine((c, ctx) => {
  if (c.hash === 'header' && !c.hash_header) ctx.addIssue({ code: 'custom', path: ['hash_header'], message: 'required field missing' });
});
export type CanaryConfig = z.infer<typeof canaryConfig>;

/** Priority 13, as Kong Enterprise's canary: after auth, so consumer cohorts work. */
export const canary: PluginDefinition = { name: 'canary', priority: 13, configSchema: canaryConfig };
