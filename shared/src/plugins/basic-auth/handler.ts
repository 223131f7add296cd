// basic-auth (reference/kong-compat.md §4.3) with scrypt-hashed passwords instead of Kong's SHA-1.
// scrypt is slow on purpose, so it runs on the thread pool and successful checks are remembered for
// the life of the snapshot (keyed by a hash of the credentials, never the password itself).
import { createHash } from 'node:crypto';
import { verifyPasswordAsync } from '../../entities/password.ts';
import { alreadyAuthenticated, failOrAnonymous, setConsumer, wwwAuthenticate } from '../auth.ts';
import type { AccessResult, PluginHandler, ProxyContext } from '../types.ts';
import { basicAuth, type BasicAuthConfig } from './schema.ts';

const MAX_REMEMBERED = 10_000;

interface State { challenge: Record<string, string>; verified: Set<string> }

function readCredentials(ctx: ProxyContext): { user: string; pass: string; header: string } | null | undefined {
  for (const header of ['proxy-authorization', 'authorization']) {
    const v = ctx.headers[header];
    if (typeof v !== 'string') continue;
    const m = /^\s*Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(v);
    if (!m) return null;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) return null;
    return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1), header };
  }
  return undefined;
}

export const basicAuthHandler: PluginHandler<BasicAuthConfig, State> = {
  name: basicAuth.name,
  priority: basicAuth.priority,
  init(config) {
    return { challenge: { 'www-authenticate': wwwAuthenticate('Basic', config.realm) }, verified: new Set() };
  },
  access: function basicAuthAccess(ctx, config, state, env): AccessResult | Promise<AccessResult> {
    if (alreadyAuthenticated(ctx, config.anonymous)) return;
    const unauthorized = () => failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'Unauthorized', headers: state.challenge });
    const creds = readCredentials(ctx);
    if (!creds) return unauthorized();
    const cred = env.index.basicAuthByUsername.get(creds.user);
    const consumer = cred?.consumer ? env.index.consumersById.get(cred.consumer.id) : undefined;
    if (!cred || !consumer) return unauthorized();
    const accept = (): AccessResult => {
      if (config.hide_credentials) delete ctx.upstreamHeaders[creds.header];
      setConsumer(ctx, consumer, { id: cred.id, identifier: cred.username });
    };
    const memo = createHash('sha256').update(`${cred.id}\0${cred.password}\0${creds.pass}`).digest('base64');
    if (state.verified.has(memo)) return accept();
    return verifyPasswordAsync(creds.pass, cred.password).then((ok) => {
      if (!ok) return unauthorized();
      if (state.verified.size >= MAX_REMEMBERED) state.verified.clear();
      state.verified.add(memo);
      return accept();
    });
  },
};
