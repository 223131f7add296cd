// acl (reference/kong-compat.md §4.4): allow or deny by the groups of the authenticated consumer.
import type { AccessResult, PluginHandler } from '../types.ts';
import { acl, type AclConfig } from './schema.ts';

interface State { allow: Set<string> | null; deny: Set<string> | null }

export const aclHandler: PluginHandler<AclConfig, State> = {
  name: acl.name,
  priority: acl.priority,
  init(config) {
    return { allow: config.allow?.length ? new Set(config.allow) : null, deny: config.deny?.length ? new Set(config.deny) : null };
  },
  access: function aclAccess(ctx, config, state, env): AccessResult {
    let groups: string[];
    let header = 'x-consumer-groups';
    if ((config.always_use_authenticated_groups || !ctx.consumer) && ctx.authenticatedGroups) {
      groups = ctx.authenticatedGroups;
      header = 'x-authenticated-groups';
    } else if (ctx.consumer) {
      groups = env.index.aclGroupsByConsumer.get(ctx.consumer.id) ?? [];
    } else {
      return { status: 401, message: 'Unauthorized' };
    }
    const member = (set: Set<string>) => groups.some((g) => set.has(g));
    if (state.allow && !member(state.allow)) return { status: 403, message: 'You cannot consume this service' };
    if (state.deny && member(state.deny)) return { status: 403, message: 'You cannot consume this service' };
    if (!config.hide_groups_header && groups.length) ctx.upstreamHeaders[header] = groups.join(', ');
  },
};
