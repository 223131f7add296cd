// rate-limiting (reference/kong-compat.md §4.5) with exact cluster-wide limits: policy `redis`
// decides every period in one atomic script on Redis's clock. Redis failures never make a request
// wait past the store's short timeout; what happens then is the config's choice.
import type { AccessResult, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { PERIOD_SECONDS, PERIODS, rateLimiting, type Period, type RateLimitingConfig } from './schema.ts';
import type { Decision, Limit, RateLimitStore } from './store.ts';


interface State {
  id: string;
  periods: Period[];
  limits: Limit[];
  store: RateLimitStore;
  local: RateLimitStore;
  /** Limit headers are the same for every request: built once. */
  limitHeaders: [string, string][];
  remainingHeaders: string[];
}

function identifier(ctx: ProxyContext, config: RateLimitingConfig): string {
  const ip = ctx.clientIp;
  switch (config.limit_by) {
    case 'consumer': return ctx.consumer?.id ?? ctx.credential?.id ?? ip;
    case 'credential': return ctx.credential?.id ?? ip;
    case 'ip': return ip;
    case 'service': return ctx.service?.id ?? ip;
    case 'header': {
      const v = ctx.headers[config.header_name!.toLowerCase()];
      return (Array.isArray(v) ? v[0] : v) ?? ip;
    }
    case 'path': return ctx.path === config.path ? config.path : ip;
    case 'route': return ctx.route.id;
    case 'consumer-route': return `${ctx.consumer?.id ?? ctx.credential?.id ?? ip}:${ctx.route.id}`;
  }
}

function respond(ctx: ProxyContext, config: RateLimitingConfig, state: State, d: Decision): AccessResult {
  // The most constraining period: lowest remaining, ties to the longer window.
  let k = 0;
  for (let i = 1; i < d.remaining.length; i++) if (d.remaining[i] <= d.remaining[k]) k = i;
  if (!config.hide_client_headers) {
    const h = ctx.responseHeaders;
    for (let i = 0; i < state.limitHeaders.length; i++) {
      h[state.limitHeaders[i][0]] = state.limitHeaders[i][1];
      h[state.remainingHeaders[i]] = String(d.remaining[i]);
    }
    h['ratelimit-limit'] = String(state.limits[k].limit);
    h['ratelimit-remaining'] = String(d.remaining[k]);
    h['ratelimit-reset'] = String(d.reset[k]);
  }
  if (d.allowed) return;
  const headers: Record<string, string> = { 'retry-after': String(d.reset[k]) };
  if (!config.hide_client_headers) Object.assign(headers, ctx.responseHeaders);
  return { status: config.error_code, message: config.error_message, headers };
}

/** The counter store failed: the config's choice (503, this node's counters, or let it through). */
function storeFailed(err: unknown, ctx: ProxyContext, config: RateLimitingConfig, state: State, env: PluginEnv, key: string): AccessResult | Promise<AccessResult> {
  env.counters.increment('rate_limiting_store_failures');
  env.log.warn({ err: (err as Error).message, plugin: 'rate-limiting', fault_tolerant: config.fault_tolerant }, 'rate-limit counter store failed');
  if (!config.fault_tolerant) return { status: 503, message: 'Rate limiting is unavailable: the counter store did not answer' };
  if (config.on_store_failure === 'local') {
    const d = state.local.hit(key, state.limits, config.algorithm);
    return d instanceof Promise ? d.then((x) => respond(ctx, config, state, x)) : respond(ctx, config, state, d);
  }
  return undefined;
}

export const rateLimitingHandler: PluginHandler<RateLimitingConfig, State> = {
  name: rateLimiting.name,
  priority: rateLimiting.priority,
  init(config, env, id) {
    const periods = PERIODS.filter((p) => config[p] != null);
    const limits = periods.map((p, i) => ({
      seconds: PERIOD_SECONDS[p], limit: config[p]!,
      capacity: config.algorithm === 'token-bucket' && i === 0 && config.burst != null ? config.burst : undefined,
    }));
    return {
      id, periods, limits,
      store: config.policy === 'redis' ? env.rateLimitStore(config.redis) : env.localRateLimitStore,
      local: env.localRateLimitStore,
      limitHeaders: periods.map((p) => [`x-ratelimit-limit-${p}`, String(config[p])] as [string, string]),
      remainingHeaders: periods.map((p) => `x-ratelimit-remaining-${p}`),
    };
  },
  access: function rateLimitingAccess(ctx, config, state, env: PluginEnv): AccessResult | Promise<AccessResult> {
    // Counters are per plugin instance, so consumer tiers (consumer-scoped configs) count apart.
    const key = `${state.id}:${identifier(ctx, config)}`;
    let d: Decision | Promise<Decision>;
    try {
      d = state.store.hit(key, state.limits, config.algorithm);
    } catch (err) {
      return storeFailed(err, ctx, config, state, env, key);
    }
    if (d instanceof Promise) return d.then((x) => respond(ctx, config, state, x), (err) => storeFailed(err, ctx, config, state, env, key));
    return respond(ctx, config, state, d);
  },
};
