// file-log: the log phase hands the finished request to the DP's fileLog sink (data-plane/src/observability).
import type { LogPhaseSink, PluginHandler } from '../types.ts';
import { observabilityPorts } from '../http-log/port.ts';
import { fileLog, type FileLogConfig } from './schema.ts';

export const fileLogHandler: PluginHandler<FileLogConfig, LogPhaseSink> = {
  name: fileLog.name,
  priority: fileLog.priority,
  init: (config, env, instanceId) => observabilityPorts(env, fileLog.name).fileLog(config, instanceId),
  log: function fileLogLog(ctx, _status, _config, sink) { sink.log(ctx); },
};
