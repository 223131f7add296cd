import { z } from 'zod';
import { bool } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';
import { customFields } from '../http-log/queue.ts';

export const fileLogConfig = z.strictObject({
  path: z.string().min(1, 'length must be at least 1').max(1024).regex(/^[\w./-]+$/, 'not a valid filename').meta({ description: 'File the JSON lines are appended to (created if missing)', example: '/tmp/portico-file-log.jsonl' }),
  reopen: bool().default(false).describe('Close and reopen the file for every entry (log rotation by rename)'),
  custom_fields_by_lua: customFields().describe('Static fields added to every entry (Lua is not run: values are literals)'),
});
export type FileLogConfig = z.infer<typeof fileLogConfig>;

export const fileLog: PluginDefinition = { name: 'file-log', priority: 9, configSchema: fileLogConfig };
