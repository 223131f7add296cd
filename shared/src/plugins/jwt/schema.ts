import { z } from 'zod';
import { bool, httpToken, int, oneOf, opt, str, text } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

export const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

export const jwtConfig = z.strictObject({
  uri_param_names: z.array(str()).default(['jwt']).describe('Query arguments a token is read from'),
  cookie_names: z.array(httpToken('bad cookie name')).default([]).describe('Cookies a token is read from'),
  header_names: z.array(httpToken()).default(['authorization']).describe('Headers a `Bearer` token is read from'),
  key_claim_name: str().default('iss').describe('Claim that names the jwt credential (its `key`)'),
  secret_is_base64: bool().default(false).describe('HMAC secrets are base64-encoded'),
  claims_to_verify: opt(z.array(oneOf(['exp', 'nbf']))).describe('Registered claims to check'),
  maximum_expiration: int(0, 31_536_000).default(0).describe('Longest allowed token lifetime, seconds (0: no limit; needs exp)'),
  anonymous: opt(text()).describe('Consumer (id or username) to use when authentication fails'),
  run_on_preflight: bool().default(true).describe('Authenticate CORS preflight (OPTIONS) requests too'),
  realm: opt(text()).describe('Realm in WWW-Authenticate'),
  // Beyond Kong OSS: identity-provider tokens without per-consumer secrets.
  jwks_uri: opt(z.url({ error: 'expected a URL' })).describe('JWKS to verify tokens with (kid-selected keys)'),
  issuer: opt(z.url({ error: 'expected a URL' })).describe('OIDC issuer: its discovery document gives jwks_uri, and `iss` must equal it'),
  audience: opt(z.array(text()).min(1)).describe('Accepted `aud` values (any one must be present)'),
  algorithms: z.array(oneOf(JWKS_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'PS256', 'EdDSA']).describe('Algorithms accepted with JWKS keys'),
  jwks_cache_ttl: int(1, 86_400).default(300).describe('Seconds a fetched JWKS is fresh; stale keys keep working while the IdP is down'),
  jwks_refresh_cooldown: int(0, 3_600).default(30).describe('At most one refetch per this many seconds when a token names an unknown kid'),
  required_scopes: z.array(text()).default([]).describe('Scopes (`scope`/`scp`) a token must carry, else 403'),
  required_claims: z.record(str(), z.array(text()).min(1)).default({}).describe('Claims that must hold one of the listed values, else 403'),
  claims_to_headers: z.record(str(), text(256).regex(/^[A-Za-z0-9-]+$/, 'bad header name')).default({}).describe('Copy claims to upstream headers, e.g. {"sub": "X-User-Id"}'),
  hide_credentials: bool().default(false).describe('Remove the token before proxying, so upstreams see identity, not the token'),
}).superRefine((c, ctx) => {
  if (c.maximum_expiration > 0 && !c.claims_to_verify?.includes('exp')) {
    ctx.addIssue({ code: 'custom', path: ['maximum_expiration'], message: "expiration needs 'exp' in claims_to_verify" });
  }
  if (c.jwks_uri && c.issuer) ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: "set either 'jwks_uri' or 'issuer', not both" });
});
export type JwtConfig = z.infer<typeof jwtConfig>;

export const jwt: PluginDefinition = { name: 'jwt', priority: 1450, configSchema: jwtConfig, noConsumerScope: true };
