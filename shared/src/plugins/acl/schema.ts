import { z } from 'zod';
import { bool, opt, str } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

export const aclConfig = z.strictObject({
  allow: opt(z.array(str())).describe('Groups allowed through (exclusive with deny)'),
  deny: opt(z.array(str())).describe('Groups refused (exclusive with allow)'),
  hide_groups_header: bool().default(false).describe('Do not send X-Consumer-Groups upstream'),
  always_use_authenticated_groups: bool().default(false).describe('Prefer groups an auth plugin authenticated over the consumer\'s'),
}).superRefine((c, ctx) => {
  const has = (v: string[] | null) => v != null && v.length > 0;
  if (has(c.allow) === has(c.deny)) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: "exactly one of these fields must be non-empty: 'config.allow', 'config.deny'" });
  }
}).meta({ entity_checks: [{ only_one_of: ['config.allow', 'config.deny'] }, { at_least_one_of: ['config.allow', 'config.deny'] }] });
export type AclConfig = z.infer<typeof aclConfig>;

export const acl: PluginDefinition = { name: 'acl', priority: 950, configSchema: aclConfig, noConsumerScope: true };
