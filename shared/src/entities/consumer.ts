import { z } from 'zod';
import { opt, str, tags, timestamp, uuid } from './fields.ts';

/** A consumer: who calls the API (reference/kong-compat.md §2.3). */
export const consumerSchema = z.strictObject({
  id: uuid().describe('Primary key, generated when absent'),
  created_at: timestamp().describe('Creation time, seconds since the epoch'),
  updated_at: timestamp().describe('Last update time, seconds since the epoch'),
  username: opt(str()).describe('Unique user name'),
  custom_id: opt(str()).describe('Unique id from another system'),
  tags: tags().describe('Free-form tags for filtering'),
}).superRefine((c, ctx) => {
  if (c.username == null && c.custom_id == null) {
    ctx.addIssue({ code: 'custom', path: ['@entity'], message: "at least one of these fields must be non-empty: 'custom_id', 'username'" });
  }
}).meta({ entity_checks: [{ at_least_one_of: ['custom_id', 'username'] }] });
export type Consumer = z.infer<typeof consumerSchema>;
