// opentelemetry: the access phase decides sampling and propagates (data-plane/src/observability/
// tracing.ts); the log phase ends the request's server span, or starts and ends it when an earlier
// plugin answered before this one ran.
import type { PluginHandler, TracePort } from '../types.ts';
import { observabilityPorts } from '../http-log/port.ts';
import { openTelemetry, type OpenTelemetryConfig } from './schema.ts';

export const openTelemetryHandler: PluginHandler<OpenTelemetryConfig, TracePort> = {
  name: openTelemetry.name,
  priority: openTelemetry.priority,
  init: (config, env, instanceId) => observabilityPorts(env, openTelemetry.name).tracer(config, instanceId),
  access: function openTelemetryAccess(ctx, _config, tracer) { tracer.access(ctx); },
  log: function openTelemetryLog(ctx, _status, _config, tracer) { tracer.log(ctx); },
};
