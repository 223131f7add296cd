// In-memory ports and a request context for handler unit tests (no DP, no sockets).
import { MemoryRateLimitStore } from './rate-limiting/store.ts';
import type { Exit, PluginEnv, PluginHandler, ProxyContext } from './types.ts';

export function testEnv(now = 1_800_000_000_000): PluginEnv {
  const store = new MemoryRateLimitStore(() => now / 1000);
  return {
    now: () => now, log: { warn() {}, error() {} }, getJson: async () => ({}),
    index: { consumersById: new Map(), consumersByUsername: new Map(), keyAuthByHash: new Map(), jwtByKey: new Map(), basicAuthByUsername: new Map(), aclGroupsByConsumer: new Map() },
    localRateLimitStore: store, rateLimitStore: () => store, counters: { increment() {} },
  };
}

/** A context for `method path?query` with the given request headers (lower-case names, as Node gives them). */
export function testContext(over: Partial<ProxyContext> & { url?: string } = {}): ProxyContext {
  const { url = over.path ?? '/p', ...rest } = over;
  const q = url.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  return {
    requestId: 'req-1', method: 'GET', path: q < 0 ? url : url.slice(0, q), headers: {}, clientIp: '198.51.100.1',
    route: { id: 'route-1', name: 'r' } as ProxyContext['route'], service: { id: 'svc-1', name: 's' } as ProxyContext['service'],
    query: () => params, hasQuery: () => q >= 0 && q < url.length - 1, upstreamHeaders: {}, responseHeaders: {},
    consumer: null, credential: null, authenticatedGroups: null, shared: {}, serviceOverride: null, ...rest,
  };
}

/** A handler bound to one parsed config, as the DP runs it: init once, then phases per request. */
export function instantiate<C>(handler: PluginHandler<C>, schema: { parse(v: unknown): C }, config: Record<string, unknown>, env = testEnv()) {
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
