// In-memory ports and a request context for handler unit tests (no network, an injectable clock).
import type { Consumer } from '../entities/consumer.ts';
import type { BasicAuthCredential, JwtSecret } from '../entities/credentials.ts';
import type { Exit, PluginEnv, PluginHandler, ProxyContext } from './types.ts';
import { MemoryRateLimitStore } from './rate-limiting/store.ts';

export interface TestEnv extends PluginEnv {
  /** Counter increments and warnings, in order. */
  events: string[];
  /** Seconds; `now()` reads it. */
  clock: { s: number };
}

export function testEnv(over: { consumers?: Consumer[]; jwtSecrets?: JwtSecret[]; basicAuth?: BasicAuthCredential[]; getJson?: PluginEnv['getJson']; nowMs?: number } = {}): TestEnv {
  const events: string[] = [];
  const clock = { s: (over.nowMs ?? 1_800_000_000_000) / 1000 };
  const consumers = over.consumers ?? [];
  return {
    events, clock,
    now: () => clock.s * 1000,
    log: { warn: (o) => events.push(JSON.stringify(o)), error: (o) => events.push(JSON.stringify(o)) },
    getJson: over.getJson ?? (async () => ({})),
    index: {
      consumersById: new Map(consumers.map((c) => [c.id, c])),
      consumersByUsername: new Map(consumers.filter((c) => c.username).map((c) => [c.username!, c])),
      keyAuthByHash: new Map(),
      jwtByKey: new Map((over.jwtSecrets ?? []).map((j) => [j.key, j])),
      basicAuthByUsername: new Map((over.basicAuth ?? []).map((b) => [b.username, b])),
      aclGroupsByConsumer: new Map(),
    },
    localRateLimitStore: new MemoryRateLimitStore(() => clock.s),
    rateLimitStore: () => new MemoryRateLimitStore(() => clock.s),
    counters: { increment: (n) => events.push(n) },
  };
}

/** A context for `path?query` (`url`, or `path`) with the given request headers (lower-case names, as Node gives them). */
export function testCtx(over: Partial<ProxyContext> & { url?: string } = {}): ProxyContext {
  const { url = over.path ?? '/p', ...rest } = over;
  const q = url.indexOf('?');
  let query: URLSearchParams | undefined;
  return {
    requestId: 'r', method: 'GET', path: q < 0 ? url : url.slice(0, q), headers: {}, clientIp: '10.0.0.1', scheme: 'http', listenPort: 8000,
    connection: () => ({ localAddress: '127.0.0.1', localPort: 8000, id: 1, requests: 1 }), rawBody: () => null,
    route: { id: 'route-1', name: 'r' } as ProxyContext['route'], service: { id: 'svc-1', name: 's' } as ProxyContext['service'],
    query: () => (query ??= new URLSearchParams(q < 0 ? '' : url.slice(q + 1))), hasQuery: () => q >= 0 && q < url.length - 1,
    upstreamHeaders: {}, responseHeaders: {}, consumer: null, credential: null, jwtClaims: null, authenticatedGroups: null, shared: {}, logFields: null, errorFields: null, serviceOverride: null,
    uriCaptures: null, methodOverride: null, pathOverride: null, ...rest,
  };
}

/** A handler bound to one parsed config, as the DP runs it: init once, then phases per request. */
export function instantiate<C>(handler: PluginHandler<C>, schema: { parse(v: unknown): C }, config: Record<string, unknown>, env: PluginEnv = testEnv()) {
  const c = schema.parse(config);
  const state = handler.init ? handler.init(c, env, 'plugin-1') : undefined;
  return {
    config: c,
    state,
    /** The access phase of a handler that answers synchronously (all the edge plugins do). */
    access: (ctx: ProxyContext): Exit | undefined => {
      const r = handler.access!(ctx, c, state, env);
      if (r instanceof Promise) throw new Error(`${handler.name} answered asynchronously`);
      return r ?? undefined;
    },
    response: (ctx: ProxyContext, headers: Record<string, string | string[]> = {}, status = 200) => {
      handler.response!(ctx, status, headers, c, state, env);
      return headers;
    },
  };
}
