// key-auth (reference/kong-compat.md §4.1). Keys are looked up by their SHA-256: the snapshot holds
// hashes only. Beyond Kong: the same key name carrying different values in several places (header
// and query, or repeated) is refused as a duplicate rather than resolved by precedence.
import { hashApiKey } from '../../entities/credentials.ts';
import { alreadyAuthenticated, failOrAnonymous, setConsumer, wwwAuthenticate } from '../auth.ts';
import type { AccessResult, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { keyAuth, type KeyAuthConfig } from './schema.ts';

interface State { names: string[]; challenge: Record<string, string> }

function readBodyKey(ctx: ProxyContext, name: string): string[] {
  const body = ctx.shared.body as Record<string, unknown> | undefined;
  const v = body?.[name];
  return typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Two different keys were sent. */
const CONFLICT = Symbol('conflicting keys');
type Found = string | null | typeof CONFLICT;
/** The key so far after seeing `v`: the first non-empty value, or CONFLICT once another differs. */
function see(found: Found, v: string): Found {
  if (v === '' || found === CONFLICT) return found;
  return found === null || v === found ? v : CONFLICT;
}

export const keyAuthHandler: PluginHandler<KeyAuthConfig, State> = {
  name: keyAuth.name,
  priority: keyAuth.priority,
  needsBody: (config) => config?.key_in_body === true,
  init(config) {
    return { names: config.key_names.map((n) => n.toLowerCase()), challenge: { 'www-authenticate': wwwAuthenticate('Key', config.realm) } };
  },
  access: function keyAuthAccess(ctx, config, state, env: PluginEnv): AccessResult {
    if (!config.run_on_preflight && ctx.method === 'OPTIONS') return;
    if (alreadyAuthenticated(ctx, config.anonymous)) return;
    // One pass over every place a key may be, keeping the first value and noting any other
    // (no arrays and no closure on the common path: one key in one header).
    let key: Found = null;
    for (let i = 0; i < state.names.length; i++) {
      if (config.key_in_header) {
        const h = ctx.headers[state.names[i]];
        if (typeof h === 'string') key = see(key, h); else if (h) for (const v of h) key = see(key, v);
      }
      if (config.key_in_query && ctx.hasQuery()) for (const v of ctx.query().getAll(config.key_names[i])) key = see(key, v);
      if (config.key_in_body) for (const v of readBodyKey(ctx, config.key_names[i])) key = see(key, v);
    }
    if (key === null) {
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'No API key found in request', headers: state.challenge });
    }
    if (key === CONFLICT) {
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'Duplicate API key found', headers: state.challenge });
    }
    const cred = env.index.keyAuthByHash.get(hashApiKey(key));
    const consumer = cred?.consumer ? env.index.consumersById.get(cred.consumer.id) : undefined;
    if (!cred || !consumer || (cred.expires_at != null && cred.expires_at * 1000 <= env.now())) {
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'Unauthorized', headers: state.challenge });
    }
    if (config.hide_credentials) {
      for (let i = 0; i < state.names.length; i++) {
        if (config.key_in_header && ctx.upstreamHeaders[state.names[i]] !== undefined) delete ctx.upstreamHeaders[state.names[i]];
        if (config.key_in_query && ctx.hasQuery()) ctx.query().delete(config.key_names[i]);
        const body = ctx.shared.body as Record<string, unknown> | undefined;
        if (config.key_in_body && body && config.key_names[i] in body) delete body[config.key_names[i]];
      }
    }
    setConsumer(ctx, consumer, { id: cred.id, identifier: cred.id });
  },
};
