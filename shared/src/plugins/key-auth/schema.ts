import { z } from 'zod';
import { bool, httpToken, opt, text } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';


export const keyAuthConfig = z.strictObject({
  key_names: z.array(httpToken()).min(1, 'length must be at least 1').default(['apikey']).describe('Header, query and body names the key is read from'),
  hide_credentials: bool().default(false).describe('Remove the key before proxying'),
  anonymous: opt(text()).describe('Consumer (id or username) to use when authentication fails'),
  key_in_header: bool().default(true).describe('Read the key from headers'),
  key_in_query: bool().default(true).describe('Read the key from the query string'),
  key_in_body: bool().default(false).describe('Read the key from a form or JSON body'),
  run_on_preflight: bool().default(true).describe('Authenticate CORS preflight (OPTIONS) requests too'),
  realm: opt(text()).describe('Realm in WWW-Authenticate'),
});
export type KeyAuthConfig = z.infer<typeof keyAuthConfig>;

export const keyAuth: PluginDefinition = { name: 'key-auth', priority: 1250, configSchema: keyAuthConfig, noConsumerScope: true };
