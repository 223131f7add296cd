import { z } from 'zod';
import { int, oneOf, opt } from '../../entities/fields.ts';
import { headerValue, kongHeaderName } from '../http-fields.ts';
import type { PluginDefinition } from '../types.ts';
import { queueConfig } from '../http-log/queue.ts';

/** Propagation formats this DP reads and writes (Kong also knows jaeger, ot, datadog, aws, gcp). */
export const PROPAGATION_FORMATS = ['w3c', 'b3', 'b3-single'] as const;
const format = () => oneOf(PROPAGATION_FORMATS);

export const openTelemetryConfig = z.strictObject({
  traces_endpoint: z.string().max(4096).refine((v) => { try { return /^https?:$/.test(new URL(v).protocol); } catch { return false; } },
    { error: 'expected an http or https URL' }).meta({ description: 'OTLP/HTTP traces endpoint (…/v1/traces)', example: 'http://127.0.0.1:4318/v1/traces' }),
  logs_endpoint: opt(z.string().max(4096)).describe('Kong compatibility; logs are not exported over OTLP'),
  headers: z.record(kongHeaderName(), headerValue()).nullable().default(null).describe('Headers sent with every export'),
  resource_attributes: z.record(z.string().min(1).max(256), z.string().max(4096)).nullable().default(null).describe('Resource attributes of every span (service.name defaults to kong)'),
  queue: queueConfig(200).describe('Batching and queue limits of the span exporter (max_batch_size, max_coalescing_delay, max_entries)'),
  batch_span_count: opt(int(1, 1_000_000)).describe('Deprecated: queue.max_batch_size'),
  batch_flush_delay: opt(int(0, 3600)).describe('Deprecated: queue.max_coalescing_delay'),
  connect_timeout: int(0, 2 ** 31 - 1).default(1000).describe('ms'),
  send_timeout: int(0, 2 ** 31 - 1).default(5000).describe('ms before an export fails'),
  read_timeout: int(0, 2 ** 31 - 1).default(5000).describe('ms'),
  http_response_header_for_traceid: opt(kongHeaderName()).describe('Response header that carries the trace id'),
  sampling_rate: opt(z.number({ error: 'expected a number' }).min(0, 'value should be between 0 and 1').max(1, 'value should be between 0 and 1'))
    .describe('Share of requests without a sampled parent that are traced (unset: 0.01, Kong\'s tracing_sampling_rate)'),
  propagation: z.strictObject({
    extract: z.array(format()).max(8).default(['w3c', 'b3']).describe('Formats read from the request, first found wins'),
    inject: z.array(oneOf([...PROPAGATION_FORMATS, 'preserve'])).max(8).default(['preserve']).describe("Formats written upstream; 'preserve': the one extracted, else default_format"),
    clear: z.array(kongHeaderName()).max(64).default([]).describe('Headers removed before the request goes upstream'),
    default_format: format().default('w3c').describe('Format injected when none was extracted'),
  }).prefault({}),
  header_type: opt(z.string().max(64)).describe('Deprecated; use propagation'),
});
export type OpenTelemetryConfig = z.infer<typeof openTelemetryConfig>;

export const openTelemetry: PluginDefinition = { name: 'opentelemetry', priority: 14, configSchema: openTelemetryConfig };
