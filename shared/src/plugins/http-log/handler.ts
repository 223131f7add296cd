// http-log: the log phase hands the finished request to the DP's httpLog sink (data-plane/src/observability).
import type { LogPhaseSink, PluginHandler } from '../types.ts';
import { observabilityPorts } from '../http-log/port.ts';
import { httpLog, type HttpLogConfig } from './schema.ts';

export const httpLogHandler: PluginHandler<HttpLogConfig, LogPhaseSink> = {
  name: httpLog.name,
  priority: httpLog.priority,
  init: (config, env, instanceId) => observabilityPorts(env, httpLog.name).httpLog(config, instanceId),
  log: function httpLogLog(ctx, _status, _config, sink) { sink.log(ctx); },
};
