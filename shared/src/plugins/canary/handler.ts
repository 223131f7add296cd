// canary: send a share of a route's traffic to another service (95/5 rollouts), either at random
// per request or in sticky cohorts by consumer, client IP or a header value.
import { createHash } from 'node:crypto';
import type { AccessResult, PluginHandler, ProxyContext } from '../types.ts';
import { canary, type CanaryConfig } from './schema.ts';

function cohortKey(ctx: ProxyContext, config: CanaryConfig): string | null {
  switch (config.hash) {
    case 'consumer': return ctx.consumer?.id ?? ctx.credential?.id ?? null;
    case 'ip': return ctx.clientIp;
    case 'header': {
      const v = ctx.headers[config.hash_header!.toLowerCase()];
      return (Array.isArray(v) ? v[0] : v) ?? null;
    }
    default: return null;
  }
}

/** A stable point in [0, 100) for a cohort key. */
function bucket(key: string): number {
  return (createHash('sha1').update(key).digest().readUInt32BE(0) % 10_000) / 100;
}

export const canaryHandler: PluginHandler<CanaryConfig, undefined> = {
  name: canary.name,
  priority: canary.priority,
  access: function canaryAccess(ctx, config): AccessResult {
    const key = cohortKey(ctx, config);
    const point = key === null ? Math.random() * 100 : bucket(key);
    if (point < config.percentage) ctx.serviceOverride = config.upstream_service;
  },
};
