// prometheus: the log phase hands the finished request to the DP's prometheus sink (data-plane/src/observability).
import type { LogPhaseSink, PluginHandler } from '../types.ts';
import { observabilityPorts } from '../http-log/port.ts';
import { prometheus, type PrometheusConfig } from './schema.ts';

export const prometheusHandler: PluginHandler<PrometheusConfig, LogPhaseSink> = {
  name: prometheus.name,
  priority: prometheus.priority,
  init: (config, env, instanceId) => observabilityPorts(env, prometheus.name).prometheus(config, instanceId),
  log: function prometheusLog(ctx, _status, _config, sink) { sink.log(ctx); },
};
