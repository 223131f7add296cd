// jwt (reference/kong-compat.md §4.2), plus identity-provider tokens verified against a JWKS
// (`jwks_uri`, or OIDC `issuer` discovery), audience/issuer checks, scope and claim requirements
// answered with 403, and claims copied to upstream headers.
import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { alreadyAuthenticated, failOrAnonymous, setConsumer, wwwAuthenticate } from '../auth.ts';
import type { AccessResult, Exit, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { jwksKey, resolveJwksUri } from './jwks.ts';
import { jwt, type JwtConfig } from './schema.ts';
import { decodeJwt, publicKey, secretKey, SUPPORTED_ALGS, verifySignature, type DecodedJwt } from './verify.ts';

/**
 * Signatures remembered per plugin instance and snapshot; exp/nbf and the other claim checks
 * still run every time. Tokens come from clients and may be 15 KB each (probe 3.5: 2,000 of them
 * grew RSS by 100 MB), so the cache is an LRU bounded in bytes as well as entries.
 */
export const MAX_VERIFIED = 10_000;
export const MAX_VERIFIED_BYTES = 8 * 1024 * 1024;
/** An entry holds the token (its key) and the parsed claims, about as large again, plus fixed overhead. */
const verifiedSize = (_v: Verified, token: string): number => 2 * token.length + 256;

/** The verified-token cache of one plugin instance. */
export function verifiedCache(): LRUCache<string, Verified> {
  return new LRUCache<string, Verified>({ max: MAX_VERIFIED, maxSize: MAX_VERIFIED_BYTES, sizeCalculation: verifiedSize });
}

interface Verified {
  /** The claims only: the signing input and signature are not needed once checked. */
  payload: Record<string, unknown>;
  consumerId: string | null;
  credential: { id: string; key: string } | null;
  /** ms; JWKS-verified entries expire with the JWKS cache, so a withdrawn key stops working. */
  until: number;
}

interface State {
  verified: LRUCache<string, Verified>;
  challenge: string;
  invalid: string;
  /** Key objects of consumer jwt credentials, built on first use and kept for the snapshot. */
  keys: Map<string, KeyObject | null>;
  headerNames: string[];
  cookieRes: RegExp[];
  /** claims_to_headers targets, lower-cased: only a verified token's claims may fill them. */
  claimHeaders: string[];
}

const BEARER = /^\s*[Bb]earer\s+(.+)$/;

interface Found { token: string; where: 'header' | 'query' | 'cookie'; name: string }

function collectTokens(ctx: ProxyContext, config: JwtConfig, state: State): Found[] {
  const out: Found[] = [];
  for (const name of config.uri_param_names) for (const t of ctx.query().getAll(name)) out.push({ token: t, where: 'query', name });
  const cookie = ctx.headers.cookie;
  if (cookie) {
    state.cookieRes.forEach((re, i) => {
      const m = re.exec(cookie);
      if (m) out.push({ token: cookieValue(m[1]), where: 'cookie', name: config.cookie_names[i] });
    });
  }
  for (const name of state.headerNames) {
    const h = ctx.headers[name];
    for (const v of h === undefined ? [] : Array.isArray(h) ? h : [h]) {
      const m = BEARER.exec(v);
      if (m) out.push({ token: m[1].trim(), where: 'header', name });
    }
  }
  return out;
}

/** A %-decoded cookie value; a malformed escape leaves it as sent, which is then no JWS (401, never a 500). */
function cookieValue(raw: string): string {
  if (!raw.includes('%')) return raw;
  try { return decodeURIComponent(raw); } catch { return raw; }
}

function claimsError(payload: Record<string, unknown>, config: JwtConfig, nowS: number): Record<string, string> | null {
  const errors: Record<string, string> = {};
  for (const claim of config.claims_to_verify ?? []) {
    const v = payload[claim];
    if (v === undefined) continue; // as Kong: only claims present are checked
    // JSON.parse('1e309') is Infinity: a token that would never expire.
    if (typeof v !== 'number' || !Number.isFinite(v)) { errors[claim] = 'must be a number'; continue; }
    if (claim === 'exp' && v <= nowS) errors.exp = 'token expired';
    if (claim === 'nbf' && v > nowS) errors.nbf = 'token not valid yet';
  }
  if (!errors.exp && config.maximum_expiration > 0 && typeof payload.exp === 'number' && payload.exp - nowS > config.maximum_expiration) {
    errors.exp = 'exceeds maximum allowed expiration';
  }
  return Object.keys(errors).length ? errors : null;
}

function scopesOf(payload: Record<string, unknown>): Set<string> {
  const s = payload.scope ?? payload.scp;
  if (typeof s === 'string') return new Set(s.split(/\s+/).filter(Boolean));
  if (Array.isArray(s)) return new Set(s.filter((x): x is string => typeof x === 'string'));
  return new Set();
}

function forbidden(config: JwtConfig, payload: Record<string, unknown>): Exit | null {
  const scopes = scopesOf(payload);
  for (const need of config.required_scopes) {
    if (!scopes.has(need)) return { status: 403, json: { message: `missing required scope '${need}'` } };
  }
  for (const [claim, allowed] of Object.entries(config.required_claims)) {
    const v = payload[claim];
    const values = Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];
    if (!values.some((x) => allowed.includes(x))) return { status: 403, json: { message: `claim '${claim}' does not allow access` } };
  }
  return null;
}

function copyClaims(ctx: ProxyContext, config: JwtConfig, payload: Record<string, unknown>): void {
  for (const [claim, header] of Object.entries(config.claims_to_headers)) {
    const v = payload[claim];
    const name = header.toLowerCase();
    if (v === undefined || v === null) delete ctx.upstreamHeaders[name];
    else ctx.upstreamHeaders[name] = typeof v === 'string' ? v : Array.isArray(v) ? v.join(' ') : JSON.stringify(v);
  }
}

function hide(ctx: ProxyContext, found: Found[]): void {
  for (const f of found) {
    if (f.where === 'header') delete ctx.upstreamHeaders[f.name];
    else if (f.where === 'query') ctx.query().delete(f.name);
    else dropCookie(ctx, f.name);
  }
}

/** Remove every `name=…` pair from the upstream Cookie header (the header goes when none is left). */
function dropCookie(ctx: ProxyContext, name: string): void {
  const h = ctx.upstreamHeaders.cookie;
  if (h === undefined) return;
  const kept: string[] = [];
  for (const part of (Array.isArray(h) ? h.join('; ') : h).split(';')) {
    const pair = part.trim();
    const eq = pair.indexOf('=');
    if (pair !== '' && (eq < 0 ? pair : pair.slice(0, eq).trim()) !== name) kept.push(pair);
  }
  if (kept.length) ctx.upstreamHeaders.cookie = kept.join('; ');
  else delete ctx.upstreamHeaders.cookie;
}

async function verifyWithJwks(jwtTok: DecodedJwt, config: JwtConfig, env: PluginEnv): Promise<string | null> {
  const alg = jwtTok.header.alg as string;
  if (!(config.algorithms as string[]).includes(alg)) return 'Invalid algorithm';
  const uri = config.jwks_uri ?? (config.issuer ? await resolveJwksUri(config.issuer, env) : null);
  if (!uri) return 'Invalid key/secret';
  const kid = typeof jwtTok.header.kid === 'string' ? jwtTok.header.kid : undefined;
  const candidates = await jwksKey(uri, kid, config.jwks_cache_ttl * 1000, config.jwks_refresh_cooldown * 1000, env);
  if (candidates.length === 0) return 'Invalid key/secret';
  for (const c of candidates) {
    if (c.alg && c.alg !== alg) continue;
    if (verifySignature(jwtTok, alg, c.key)) return null;
  }
  return 'Invalid signature';
}

/** A 401 (kong.response.exit: JSON without request_id) or the anonymous consumer. */
function fail(ctx: ProxyContext, config: JwtConfig, env: PluginEnv, status: number, body: Record<string, unknown>, challenge: string): AccessResult {
  return failOrAnonymous(ctx, config.anonymous, env, { status, json: body, headers: { 'www-authenticate': challenge } });
}

function remember(state: State, token: string, v: Verified): Verified {
  state.verified.set(token, v);
  return v;
}

/** A verified signature: the registered claims, issuer/audience and requirements, then identity. */
function accept(ctx: ProxyContext, config: JwtConfig, env: PluginEnv, state: State, found: Found[], v: Verified, nowMs: number): AccessResult {
  const payload = v.payload;
  const claims = claimsError(payload, config, nowMs / 1000);
  if (claims) return fail(ctx, config, env, 401, claims, state.invalid);
  if (config.issuer && payload.iss !== config.issuer) return fail(ctx, config, env, 401, { iss: 'does not match the configured issuer' }, state.invalid);
  if (config.audience) {
    const aud = payload.aud;
    const auds = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud];
    if (!auds.some((a) => config.audience!.includes(String(a)))) return fail(ctx, config, env, 401, { aud: 'audience not allowed' }, state.invalid);
  }
  const denied = forbidden(config, payload);
  if (denied) return denied;
  const consumer = v.consumerId ? env.index.consumersById.get(v.consumerId) : undefined;
  if (consumer) setConsumer(ctx, consumer, v.credential ? { id: v.credential.id, identifier: v.credential.key } : null);
  else ctx.credential = { id: null, identifier: String(payload.sub ?? '') };
  ctx.jwtClaims = payload;
  copyClaims(ctx, config, payload);
  if (config.hide_credentials) hide(ctx, found);
}

export const jwtHandler: PluginHandler<JwtConfig, State> = {
  name: jwt.name,
  priority: jwt.priority,
  init(config) {
    return {
      verified: verifiedCache(),
      challenge: wwwAuthenticate('Bearer', config.realm),
      invalid: wwwAuthenticate('Bearer', config.realm, 'error="invalid_token"'),
      keys: new Map(),
      headerNames: config.header_names.map((h) => h.toLowerCase()),
      cookieRes: config.cookie_names.map((n) => new RegExp(`(?:^|;\\s*)${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=([^;]*)`)),
      claimHeaders: Object.values(config.claims_to_headers).map((h) => h.toLowerCase()),
    };
  },
  access: function jwtAccess(ctx, config, state, env): AccessResult | Promise<AccessResult> {
    // Whatever happens next (anonymous, another credential, a preflight), a client never sets the
    // headers claims are copied to: the upstream trusts them as the token's.
    for (const h of state.claimHeaders) delete ctx.upstreamHeaders[h];
    if (!config.run_on_preflight && ctx.method === 'OPTIONS') return;
    if (alreadyAuthenticated(ctx, config.anonymous)) return;
    const found = collectTokens(ctx, config, state);
    const tokens = new Set(found.map((f) => f.token));
    if (tokens.size === 0) return fail(ctx, config, env, 401, { message: 'Unauthorized' }, state.challenge);
    if (tokens.size > 1) return fail(ctx, config, env, 401, { message: 'Multiple tokens provided' }, state.invalid);
    const [token] = tokens;
    const nowMs = env.now();
    const hit = state.verified.get(token);
    if (hit && hit.until > nowMs) return accept(ctx, config, env, state, found, hit, nowMs);
    const decoded = decodeJwt(token);
    if (!decoded) return fail(ctx, config, env, 401, { message: 'Bad token; invalid JSON' }, state.invalid);
    const alg = decoded.header.alg;
    if (typeof alg !== 'string' || !SUPPORTED_ALGS.has(alg)) return fail(ctx, config, env, 401, { message: 'Bad token; invalid alg' }, state.invalid);
    // RFC 7515 §4.1.11: a recipient must reject a token whose `crit` names an extension it does not
    // understand. Portico understands none, so any `crit` is refused.
    if (decoded.header.crit !== undefined) return fail(ctx, config, env, 401, { message: 'Bad token; unsupported critical header' }, state.invalid);

    if (config.jwks_uri || config.issuer) {
      return verifyWithJwks(decoded, config, env).then((err) => {
        if (err) return fail(ctx, config, env, 401, { message: err }, state.invalid);
        // An IdP token may still name a consumer through a jwt credential keyed by its claim.
        const claim = decoded.payload[config.key_claim_name];
        const secret = typeof claim === 'string' ? env.index.jwtByKey.get(claim) : undefined;
        const v = remember(state, token, {
          payload: decoded.payload, consumerId: secret?.consumer?.id ?? null, credential: secret ? { id: secret.id, key: secret.key } : null,
          until: nowMs + config.jwks_cache_ttl * 1000,
        });
        return accept(ctx, config, env, state, found, v, nowMs);
      });
    }

    const claimName = config.key_claim_name;
    const claim = decoded.payload[claimName] ?? decoded.header[claimName];
    const invalid = (message: string) => fail(ctx, config, env, 401, { message }, state.invalid);
    if (claim === undefined || claim === null) return invalid(`No mandatory '${claimName}' in claims`);
    if (typeof claim !== 'string' || claim === '') return invalid(`Invalid '${claimName}' in claims`);
    const secret = env.index.jwtByKey.get(claim);
    if (!secret) return invalid(`No credentials found for given '${claimName}'`);
    if (secret.algorithm !== alg) return invalid('Invalid algorithm');
    let key = state.keys.get(secret.id);
    if (key === undefined) {
      try {
        key = alg.startsWith('HS') ? (secret.secret ? secretKey(secret.secret, config.secret_is_base64) : null) : publicKey(secret.rsa_public_key!);
      } catch { key = null; }
      state.keys.set(secret.id, key);
    }
    if (!key) return invalid('Invalid key/secret');
    if (!verifySignature(decoded, alg, key)) return invalid('Invalid signature');
    const v = remember(state, token, { payload: decoded.payload, consumerId: secret.consumer?.id ?? null, credential: { id: secret.id, key: secret.key }, until: Infinity });
    return accept(ctx, config, env, state, found, v, nowMs);
  },
};
