// correlation-id (reference/kong-compat.md §4.11): a request without the header gets one generated
// and sent upstream; with echo_downstream the id goes back to the client. An incoming non-empty id
// is kept as it is (Kong trusts it; it is only a label).
//
// The id goes into the request's access-log line as `correlation_id` (Kong's
// kong.log.set_serialize_value), into the gateway's own error bodies (502, 504: ctx.errorFields), and
// stays in `ctx.shared[CORRELATION_ID]` for other plugins.
//
// With echo_downstream the id is on every answer, another plugin's 401/403/429 included: the DP
// runs the response phase and applies ctx.responseHeaders on plugin exits too (Kong's
// header_filter), and the gateway's own errors after the access phase (502, 504) too.
import { randomUUID } from 'node:crypto';
import type { AccessResult, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { correlationId, type CorrelationIdConfig } from './schema.ts';

/** Key of the id in ctx.shared (SEAM(log-fields)). */
export const CORRELATION_ID = 'correlation_id';

type Generator = (ctx: ProxyContext, env: PluginEnv) => string;

// uuid#counter: one UUID per process (Kong: per worker) and a counter, unique without a random
// draw per request.
const PROCESS_UUID = randomUUID();
let counter = 0;

/**
 * Kong's tracker: `server_addr-server_port-pid-connection-connection_requests-time` (nginx
 * variables): the connection's serial number on this node and this request's ordinal on it make it
 * unique per node.
 */
function tracker(ctx: ProxyContext, env: PluginEnv): string {
  const c = ctx.connection();
  return `${c.localAddress}-${c.localPort}-${process.pid}-${c.id}-${c.requests}-${(env.now() / 1000).toFixed(3)}`;
}

const GENERATORS: Record<CorrelationIdConfig['generator'], Generator> = {
  uuid: () => randomUUID(),
  'uuid#counter': () => `${PROCESS_UUID}#${++counter}`,
  tracker,
};

interface State { header: string; generate: Generator }

export const correlationIdHandler: PluginHandler<CorrelationIdConfig, State> = {
  name: correlationId.name,
  priority: correlationId.priority,
  init(config) {
    return { header: config.header_name.toLowerCase(), generate: GENERATORS[config.generator] };
  },
  access: function correlationIdAccess(ctx, config, state, env): AccessResult {
    const incoming = ctx.headers[state.header];
    let id = typeof incoming === 'string' ? incoming : Array.isArray(incoming) ? incoming[0] : undefined;
    if (!id) {
      id = state.generate(ctx, env);
      ctx.upstreamHeaders[state.header] = id;
    }
    ctx.shared[CORRELATION_ID] = id;
    (ctx.logFields ??= {}).correlation_id = id;
    (ctx.errorFields ??= {}).correlation_id = id;
    if (config.echo_downstream) ctx.responseHeaders[state.header] = id;
  },
};
