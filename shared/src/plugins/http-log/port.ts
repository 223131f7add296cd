// The observability plugins do their work through the DP's ObservabilityPorts (a metrics registry,
// log queues, span exporters): shared/ opens no sockets and no files. This resolves the port once
// per plugin instance, at init (per snapshot), so a missing port is a rejected config, not a 500.
import type { ObservabilityPorts, PluginEnv } from '../types.ts';

export function observabilityPorts(env: PluginEnv, plugin: string): ObservabilityPorts {
  if (!env.observability) throw new Error(`plugin '${plugin}' needs the data plane's observability ports`);
  return env.observability;
}
