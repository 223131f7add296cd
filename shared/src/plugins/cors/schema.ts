import { z } from 'zod';
import { bool, httpToken, oneOf, opt, text } from '../../entities/fields.ts';
import { regexError } from '../../regex/index.ts';
import type { PluginDefinition } from '../types.ts';

export const CORS_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;

/** Kong's check: `*` or a pattern the regex engine compiles (here RE2, linear-time). */
const origin = () => text().min(1, 'length must be at least 1').superRefine((v, ctx) => {
  if (v === '*') return;
  const err = regexError(v);
  if (err) ctx.addIssue({ code: 'custom', message: `'${v}' is not a valid regex: ${err}` });
});

export const corsConfig = z.strictObject({
  origins: opt(z.array(origin())).describe("Allowed origins: '*', exact origins (scheme://host[:port]) or regexes (anchored); unset or ['*'] allows any"),
  headers: opt(z.array(httpToken())).describe('Access-Control-Allow-Headers for preflights (unset: the requested headers are echoed)'),
  exposed_headers: opt(z.array(httpToken())).describe('Access-Control-Expose-Headers'),
  methods: z.array(oneOf(CORS_METHODS)).default([...CORS_METHODS]).describe('Access-Control-Allow-Methods for preflights'),
  max_age: opt(z.number()).describe('Access-Control-Max-Age, seconds a browser may cache a preflight'),
  credentials: bool().default(false).describe('Send Access-Control-Allow-Credentials: true (the request Origin is then echoed instead of *)'),
  private_network: bool().default(false).describe('Answer Access-Control-Request-Private-Network preflights with Access-Control-Allow-Private-Network: true'),
  preflight_continue: bool().default(false).describe('Proxy preflights to the upstream instead of answering them'),
  allow_origin_absent: bool().default(true).describe('Add CORS headers to responses whose request has no Origin'),
});
export type CorsConfig = z.infer<typeof corsConfig>;

// Runs before authentication, so a consumer-scoped config could never be chosen (Kong: no_consumer).
export const cors: PluginDefinition = { name: 'cors', priority: 2000, configSchema: corsConfig, noConsumerScope: true };
