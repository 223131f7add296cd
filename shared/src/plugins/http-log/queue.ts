// Kong's plugin queue settings (kong/tools/queue_schema.lua), shared by http-log and opentelemetry:
// entries are batched, sent by a background worker, retried with exponential backoff for at most
// max_retry_time, and dropped (and counted) when the queue is full. Times are seconds, as Kong's.
import { z } from 'zod';
import { int, opt, text } from '../../entities/fields.ts';

const seconds = (min: number, max: number) => z.number({ error: 'expected a number' })
  .min(min, `value should be between ${min} and ${max}`).max(max, `value should be between ${min} and ${max}`);

export const queueConfig = (defaultBatch: number) => z.strictObject({
  max_batch_size: int(1, 1_000_000).default(defaultBatch).describe('Most entries sent in one request'),
  max_coalescing_delay: seconds(0, 3600).default(1).describe('Seconds to wait for a batch to fill before sending what there is'),
  max_entries: int(1, 1_000_000).default(10_000).describe('Most entries waiting; past it new entries are dropped and counted'),
  max_bytes: opt(int(1, 2 ** 31 - 1)).describe('Most bytes of entries waiting (unset: no byte limit)'),
  max_retry_time: seconds(0, 1_000_000).default(60).describe('Seconds to keep retrying a failed batch before dropping it'),
  initial_retry_delay: seconds(0.001, 1_000_000).default(0.01).describe('Seconds before the first retry; doubles each time'),
  max_retry_delay: seconds(0.001, 1_000_000).default(60).describe('Longest wait between two retries, seconds'),
  concurrency_limit: z.union([z.literal(-1), z.literal(1)], { error: 'expected -1 or 1' }).default(1).describe('1: one batch in flight at a time; -1: no limit'),
}).prefault({});
export type QueueConfig = z.infer<ReturnType<typeof queueConfig>>;

/** Static fields added to every entry (Kong's custom_fields_by_lua, without Lua: values are literal strings): `a.b` sets a nested field. */
export const customFields = () => z.record(z.string().min(1).max(256).regex(/^[A-Za-z0-9_.-]+$/, 'expected letters, digits, _, - and .'), text())
  .nullable().default(null);
