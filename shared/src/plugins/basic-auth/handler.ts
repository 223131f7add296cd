// basic-auth (reference/kong-compat.md §4.3) with scrypt-hashed passwords instead of Kong's SHA-1.
// scrypt is slow on purpose, so it runs on the thread pool behind a gate (at most half the pool;
// a short queue; beyond it 503), successes are remembered for the life of the snapshot and
// failures for a short while (keyed by a hash of the attempt, never the password itself), and an
// unknown username costs one scrypt check like a wrong password, so timing reveals no usernames.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { DUMMY_PASSWORD_HASH, PASSWORD_GATE, type PasswordGate } from '../../entities/password.ts';
import type { BasicAuthCredential } from '../../entities/credentials.ts';
import type { Consumer } from '../../entities/consumer.ts';
import { alreadyAuthenticated, failOrAnonymous, setConsumer, wwwAuthenticate } from '../auth.ts';
import type { AccessResult, Exit, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { basicAuth, type BasicAuthConfig } from './schema.ts';

/** Successful checks remembered per plugin instance (keys exist only for right passwords). */
export const MAX_REMEMBERED = 10_000;
/** Failed attempts remembered: a repeated wrong guess costs no scrypt. Short, so a slip is soon forgotten. */
export const MAX_FAILED = 10_000;
export const FAILED_TTL_MS = 30_000;

interface State {
  challenge: Record<string, string>;
  verified: LRUCache<string, true>;
  failed: LRUCache<string, true>;
  gate: PasswordGate;
}

/** The gate is full: a 503 (the node is overloaded, not the client wrong), never a fall back to anonymous. */
const busy = (): Exit => ({ status: 503, message: 'Authentication is busy; retry shortly', headers: { 'retry-after': '1' } });

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

function unauthorized(ctx: ProxyContext, config: BasicAuthConfig, state: State, env: PluginEnv): AccessResult {
  return failOrAnonymous(ctx, config.anonymous, env, { status: 401, message: 'Unauthorized', headers: state.challenge });
}

function accept(ctx: ProxyContext, config: BasicAuthConfig, cred: BasicAuthCredential, consumer: Consumer, header: string): AccessResult {
  if (config.hide_credentials) delete ctx.upstreamHeaders[header];
  setConsumer(ctx, consumer, { id: cred.id, identifier: cred.username });
}

/** Caches are keyed by the attempt against the stored hash (JSON: unambiguous), so a password change forgets both. */
function attemptKey(user: string, stored: string, pass: string): string {
  return createHash('sha256').update(JSON.stringify([user, stored, pass])).digest('base64');
}

export const basicAuthHandler: PluginHandler<BasicAuthConfig, State> = {
  name: basicAuth.name,
  priority: basicAuth.priority,
  init(config) {
    return {
      challenge: { 'www-authenticate': wwwAuthenticate('Basic', config.realm) },
      verified: new LRUCache({ max: MAX_REMEMBERED }),
      failed: new LRUCache({ max: MAX_FAILED, ttl: FAILED_TTL_MS }),
      gate: PASSWORD_GATE,
    };
  },
  access: function basicAuthAccess(ctx, config, state, env): AccessResult | Promise<AccessResult> {
    if (alreadyAuthenticated(ctx, config.anonymous)) return;
    const creds = readCredentials(ctx);
    if (!creds) return unauthorized(ctx, config, state, env);
    const cred = env.index.basicAuthByUsername.get(creds.user);
    const consumer = cred?.consumer ? env.index.consumersById.get(cred.consumer.id) : undefined;
    const known = cred !== undefined && consumer !== undefined;
    const key = attemptKey(creds.user, known ? cred.password : '', creds.pass);
    if (known && state.verified.has(key)) return accept(ctx, config, cred, consumer, creds.header);
    if (state.failed.has(key)) return unauthorized(ctx, config, state, env);
    const check = state.gate.verify(creds.pass, known ? cred.password : DUMMY_PASSWORD_HASH);
    if (!check) {
      env.counters.increment('basic_auth_busy');
      return busy();
    }
    return check.then((ok) => {
      if (ok && known) {
        state.verified.set(key, true);
        return accept(ctx, config, cred, consumer, creds.header);
      }
      state.failed.set(key, true);
      return unauthorized(ctx, config, state, env);
    });
  },
};
