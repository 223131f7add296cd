// JWKS keys from an identity provider, kept across snapshots and shared by every jwt instance
// naming the same URI. A token naming an unknown kid triggers at most one refetch per cooldown;
// when the IdP is down, the keys already fetched keep working.
import type { KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PluginEnv } from '../types.ts';
import { publicKey } from './verify.ts';

interface Entry {
  keys: Map<string, { key: KeyObject; alg: string | null }>;
  /** Keys without a kid, tried in order when a token has none. */
  anonymous: { key: KeyObject; alg: string | null }[];
  fetchedAt: number;
  lastAttempt: number;
  inflight: Promise<void> | null;
}

const FETCH_TIMEOUT_MS = 3_000;
/**
 * URIs and issuers come from config, not clients, but these maps outlive snapshots: an LRU keeps
 * a config that churns through URIs (or a discovery document naming new ones) from growing them.
 * Far more than any real config names.
 */
export const MAX_JWKS_SOURCES = 1_000;
const caches = new LRUCache<string, Entry>({ max: MAX_JWKS_SOURCES });
const discovered = new LRUCache<string, { jwksUri: string; at: number }>({ max: MAX_JWKS_SOURCES });

/** How many JWKS and discovery entries are held (for the bounded-state test). */
export function jwksCacheSizes(): { jwks: number; discovered: number } {
  return { jwks: caches.size, discovered: discovered.size };
}

async function load(uri: string, e: Entry, env: PluginEnv): Promise<void> {
  e.lastAttempt = env.now();
  try {
    const doc = await env.getJson(uri, FETCH_TIMEOUT_MS) as { keys?: unknown };
    if (!doc || !Array.isArray(doc.keys)) throw new Error('JWKS has no "keys" array');
    const keys = new Map<string, { key: KeyObject; alg: string | null }>();
    const anonymous: { key: KeyObject; alg: string | null }[] = [];
    for (const jwk of doc.keys as Record<string, unknown>[]) {
      if (jwk.use && jwk.use !== 'sig') continue;
      if (jwk.kty === 'oct') continue; // never accept symmetric keys from a JWKS
      try {
        const k = { key: publicKey(jwk), alg: typeof jwk.alg === 'string' ? jwk.alg : null };
        if (typeof jwk.kid === 'string') keys.set(jwk.kid, k); else anonymous.push(k);
      } catch { /* skip keys node cannot import */ }
    }
    e.keys = keys; e.anonymous = anonymous; e.fetchedAt = env.now();
  } catch (err) {
    env.log.warn({ jwks_uri: uri, err: (err as Error).message }, 'JWKS fetch failed; using cached keys');
  }
}

function refresh(uri: string, e: Entry, env: PluginEnv): Promise<void> {
  e.inflight ??= load(uri, e, env).finally(() => { e.inflight = null; });
  return e.inflight;
}

export async function resolveJwksUri(issuer: string, env: PluginEnv): Promise<string | null> {
  const hit = discovered.get(issuer);
  if (hit && env.now() - hit.at < 3_600_000) return hit.jwksUri;
  try {
    const doc = await env.getJson(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, FETCH_TIMEOUT_MS) as { jwks_uri?: unknown };
    if (typeof doc?.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
    discovered.set(issuer, { jwksUri: doc.jwks_uri, at: env.now() });
    return doc.jwks_uri;
  } catch (err) {
    env.log.warn({ issuer, err: (err as Error).message }, 'OIDC discovery failed');
    return hit?.jwksUri ?? null;
  }
}

/** The key for `kid`, refetching (rate-limited) on a miss and in the background when stale. */
export async function jwksKey(uri: string, kid: string | undefined, ttlMs: number, cooldownMs: number, env: PluginEnv): Promise<{ key: KeyObject; alg: string | null }[]> {
  let e = caches.get(uri);
  if (!e) {
    e = { keys: new Map(), anonymous: [], fetchedAt: 0, lastAttempt: 0, inflight: null };
    caches.set(uri, e);
  }
  const lookup = () => (kid !== undefined ? (e!.keys.has(kid) ? [e!.keys.get(kid)!] : []) : [...e!.keys.values(), ...e!.anonymous]);
  let found = lookup();
  const now = env.now();
  if (found.length === 0 && (e.lastAttempt === 0 || now - e.lastAttempt >= cooldownMs)) {
    await refresh(uri, e, env);
    found = lookup();
  } else if (now - e.fetchedAt > ttlMs && now - e.lastAttempt >= cooldownMs) {
    void refresh(uri, e, env);
  }
  return found;
}
