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
    const found: { value: string; name: string; where: 'header' | 'query' | 'body' }[] = [];
    for (let i = 0; i < state.names.length; i++) {
      const name = state.names[i];
      if (config.key_in_header) {
        const h = ctx.headers[name];
        if (h !== undefined) for (const v of Array.isArray(h) ? h : [h]) found.push({ value: v, name, where: 'header' });
      }
      if (config.key_in_query) {
        for (const v of ctx.query().getAll(config.key_names[i])) found.push({ value: v, name: config.key_names[i], where: 'query' });
      }
      if (config.key_in_body) {
        for (const v of readBodyKey(ctx, config.key_names[i])) found.push({ value: v, name: config.key_names[i], where: 'body' });
      }
    }
    const values = new Set(found.map((f) => f.value).filter((v) => v !== ''));
    if (values.size === 0) {
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'No API key found in request', headers: state.challenge });
    }
    if (values.size > 1) {
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'Duplicate API key found', headers: state.challenge });
    }
    const [key] = values;
    const cred = env.index.keyAuthByHash.get(hashApiKey(key));
    const consumer = cred?.consumer ? env.index.consumersById.get(cred.consumer.id) : undefined;
    if (!cred || !consumer || (cred.expires_at != null && cred.expires_at * 1000 <= env.now())) {
      return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'Unauthorized', headers: state.challenge });
    }
    if (config.hide_credentials) {
      for (const f of found) {
        if (f.where === 'header') delete ctx.upstreamHeaders[f.name];
        else if (f.where === 'query') ctx.query().delete(f.name);
        else delete (ctx.shared.body as Record<string, unknown>)[f.name];
      }
    }
    setConsumer(ctx, consumer, { id: cred.id, identifier: cred.id });
  },
};
