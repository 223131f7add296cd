// ip-restriction (reference/kong-compat.md §4.7): deny is checked first, then allow. The lists are
// compiled into IpMatchers once per snapshot; a request costs one address parse and a few hash
// probes. ctx.clientIp is the client as the node's trusted_ips / real_ip_header settings see it
// (shared/src/net/real-ip.ts), so behind a trusted load balancer the real client is checked and a
// client's own X-Forwarded-For is never believed.
import { IpMatcher, parseIpInto } from '../../net/index.ts';
import { freezeExit } from '../exits.ts';
import type { AccessResult, Exit, PluginHandler } from '../types.ts';
import { ipRestriction, type IpRestrictionConfig } from './schema.ts';

interface State {
  deny: IpMatcher | null;
  allow: IpMatcher | null;
  status: number;
  /** The configured message; null: Kong's default, which names the address. */
  message: string | null;
}

// One address per request, parsed synchronously: a module-level buffer is safe.
const scratch = new Uint32Array(4);

const NO_ADDRESS = freezeExit<Exit>({ status: 403, message: 'Cannot identify the client IP address, unix domain sockets are not supported.' });

function refuse(state: State, ip: string): Exit {
  return { status: state.status, message: state.message ?? `IP address not allowed: ${ip}` };
}

export const ipRestrictionHandler: PluginHandler<IpRestrictionConfig, State> = {
  name: ipRestriction.name,
  priority: ipRestriction.priority,
  init(config) {
    return {
      deny: config.deny?.length ? new IpMatcher(config.deny) : null,
      allow: config.allow?.length ? new IpMatcher(config.allow) : null,
      status: config.status ?? 403,
      message: config.message,
    };
  },
  access: function ipRestrictionAccess(ctx, _config, state): AccessResult {
    const ip = ctx.clientIp;
    const version = parseIpInto(ip, 0, ip.length, scratch);
    if (version === 0) return NO_ADDRESS;
    if (state.deny && state.deny.containsParsed(version, scratch)) return refuse(state, ip);
    if (state.allow && !state.allow.containsParsed(version, scratch)) return refuse(state, ip);
  },
};
