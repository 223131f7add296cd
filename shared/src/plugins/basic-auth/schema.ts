import { z } from 'zod';
import { bool, opt, text } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

export const basicAuthConfig = z.strictObject({
  anonymous: opt(text()).describe('Consumer (id or username) to use when authentication fails'),
  hide_credentials: bool().default(false).describe('Remove the Authorization header before proxying'),
  realm: text().default('service').describe('Realm in WWW-Authenticate'),
});
export type BasicAuthConfig = z.infer<typeof basicAuthConfig>;

export const basicAuth: PluginDefinition = { name: 'basic-auth', priority: 1100, configSchema: basicAuthConfig, noConsumerScope: true };
