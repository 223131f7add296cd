// What every auth plugin shares: consumer identity headers, anonymous fallback, and the OR/AND
// rule between several auth plugins (reference/kong-compat.md §4.0).
import type { Consumer } from '../entities/consumer.ts';
import type { AuthenticatedCredential, Exit, PluginEnv, ProxyContext } from './types.ts';

/** Headers only the gateway sets; the proxy never copies them from a client (data-plane/src/proxy/headers.ts). */
export const IDENTITY_HEADERS = ['x-consumer-id', 'x-consumer-custom-id', 'x-consumer-username', 'x-credential-identifier', 'x-anonymous-consumer', 'x-consumer-groups', 'x-authenticated-groups'] as const;

// `delete` only when present: deleting turns the object into a slow dictionary for V8.
function unset(h: Record<string, string | string[]>, name: string): void {
  if (h[name] !== undefined) delete h[name];
}

export function setConsumer(ctx: ProxyContext, consumer: Consumer, credential: AuthenticatedCredential | null): void {
  const h = ctx.upstreamHeaders;
  ctx.consumer = consumer;
  ctx.credential = credential;
  h['x-consumer-id'] = consumer.id;
  if (consumer.custom_id) h['x-consumer-custom-id'] = consumer.custom_id; else unset(h, 'x-consumer-custom-id');
  if (consumer.username) h['x-consumer-username'] = consumer.username; else unset(h, 'x-consumer-username');
  if (credential) {
    h['x-credential-identifier'] = credential.identifier;
    unset(h, 'x-anonymous-consumer');
  } else {
    unset(h, 'x-credential-identifier');
    h['x-anonymous-consumer'] = 'true';
  }
}

/** With `anonymous` set, auth plugins are OR-ed: skip when another one already authenticated. */
export function alreadyAuthenticated(ctx: ProxyContext, anonymous: string | null): boolean {
  return anonymous != null && ctx.credential != null;
}

/** On failure: fall back to the anonymous consumer when configured, else answer with `exit`. */
export function failOrAnonymous(ctx: ProxyContext, anonymous: string | null, env: PluginEnv, exit: Exit): Exit | undefined {
  if (anonymous == null) return exit;
  const consumer = env.index.consumersById.get(anonymous) ?? env.index.consumersByUsername.get(anonymous);
  if (!consumer) return { status: 500, message: `anonymous consumer ${anonymous} is configured but doesn't exist` };
  if (!ctx.consumer) setConsumer(ctx, consumer, null);
  return undefined;
}

export function wwwAuthenticate(scheme: string, realm: string | null, extra?: string): string {
  const parts: string[] = [];
  if (realm) parts.push(`realm="${realm}"`);
  if (extra) parts.push(extra);
  return parts.length ? `${scheme} ${parts.join(', ')}` : scheme;
}
