import { z } from 'zod';
import { int, opt, text } from '../../entities/fields.ts';
import { cidrError } from '../../net/index.ts';
import type { PluginDefinition } from '../types.ts';

/** Kong's typedefs.ip_or_cidr, IPv4 and IPv6. */
const ipOrCidr = () => text(64).superRefine((v, ctx) => {
  const err = cidrError(v);
  if (err) ctx.addIssue({ code: 'custom', message: err });
}).meta({ example: '10.0.0.0/8' });

export const ipRestrictionConfig = z.strictObject({
  allow: opt(z.array(ipOrCidr())).describe('Addresses and CIDRs let through; any other address is refused'),
  deny: opt(z.array(ipOrCidr())).describe('Addresses and CIDRs refused (checked before allow)'),
  // Kong takes any number; a status Node cannot send would turn every refusal into a 500.
  status: opt(int(100, 599)).describe('Status of a refusal (default 403)'),
  message: opt(text()).describe("Message of a refusal (default 'IP address not allowed: <ip>')"),
}).superRefine((c, ctx) => {
  if (!c.allow?.length && !c.deny?.length) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: "at least one of these fields must be non-empty: 'config.allow', 'config.deny'" });
  }
}).meta({ entity_checks: [{ at_least_one_of: ['config.allow', 'config.deny'] }] });
export type IpRestrictionConfig = z.infer<typeof ipRestrictionConfig>;

export const ipRestriction: PluginDefinition = { name: 'ip-restriction', priority: 990, configSchema: ipRestrictionConfig };
