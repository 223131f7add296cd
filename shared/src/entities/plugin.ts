import { z } from 'zod';
import { bool, foreign, opt, oneOf, set, tags, text, timestamp, utf8Name, uuid } from './fields.ts';

export const PLUGIN_PROTOCOLS = ['grpc', 'grpcs', 'http', 'https', 'tcp', 'tls', 'tls_passthrough', 'udp', 'ws', 'wss'] as const;

/**
 * A plugin instance as stored: `config` is checked against the named plugin's own schema by the
 * CP (shared/src/plugins/schemas.ts), so here it is any record.
 */
export const pluginSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  name: text(256).describe('The plugin to run'),
  instance_name: opt(utf8Name()).describe('Unique name of this instance; usable in place of the id'),
  config: z.record(z.string(), z.unknown()).default({}).describe("The plugin's configuration"),
  service: foreign().describe('Run only for this service'),
  route: foreign().describe('Run only for this route'),
  consumer: foreign().describe('Run only for this consumer'),
  protocols: set(oneOf(PLUGIN_PROTOCOLS)).default(['grpc', 'grpcs', 'http', 'https']).describe('Protocols the plugin runs on'),
  enabled: bool().default(true).describe('A disabled plugin does not run'),
  tags: tags().describe('Free-form tags for filtering'),
});
export type PluginEntity = z.infer<typeof pluginSchema>;
