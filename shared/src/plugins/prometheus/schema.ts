import { z } from 'zod';
import { bool } from '../../entities/fields.ts';
import type { PluginDefinition } from '../types.ts';

// Kong's flags, all off by default (kong/plugins/prometheus/schema.lua). ai_metrics and
// wasm_metrics are accepted for config compatibility and have nothing to count here.
export const prometheusConfig = z.strictObject({
  per_consumer: bool().default(false).describe('Fill the consumer label of kong_http_requests_total and kong_bandwidth_bytes (capped; past the cap: "_other")'),
  status_code_metrics: bool().default(false).describe('Export kong_http_requests_total'),
  latency_metrics: bool().default(false).describe('Export kong_kong_latency_ms, kong_upstream_latency_ms and kong_request_latency_ms'),
  bandwidth_metrics: bool().default(false).describe('Export kong_bandwidth_bytes'),
  upstream_health_metrics: bool().default(false).describe('Export kong_upstream_target_health (if any instance enables it)'),
  ai_metrics: bool().default(false).describe('Kong compatibility; nothing is counted'),
  wasm_metrics: bool().default(false).describe('Kong compatibility; nothing is counted'),
});
export type PrometheusConfig = z.infer<typeof prometheusConfig>;

export const prometheus: PluginDefinition = { name: 'prometheus', priority: 13, configSchema: prometheusConfig };
