// correlation-id (reference/kong-compat.md §4.11): a request without the header gets one generated
// and sent upstream; with echo_downstream the id goes back to the client. An incoming non-empty id
// is kept as it is (Kong trusts it; it is only a label).
//
// The id goes into the request's access-log line as `correlation_id` (Kong's
// kong.log.set_serialize_value) and stays in `ctx.shared[CORRELATION_ID]` for other plugins. Gateway
// error bodies (502, 504) do not carry it yet.
//
// With echo_downstream the id is on every answer, another plugin's 401/403/429 included: the DP
// runs the response phase and applies ctx.responseHeaders on plugin exits too (Kong's
// header_filter). Gateway errors after the access phase (502, 504) do not carry it yet.
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
 * SEAM(connection) — Kong's tracker is `server_addr-server_port-pid-connection-connection_requests-
 * time` (nginx variables). The plugin API exposes no connection; the addition this asks for:
 * `ProxyContext.connection: { localAddress: string; localPort: number; id: number; requests: number }`
 * (id: the connection's serial number on this node; requests: this request's ordinal on it).
 * Until the DP provides it the connection fields read `unknown-0-<pid>-0-0-<time>`, which is NOT
 * unique (requests of one millisecond share it): `tracker` is only right once that lands.
 */
interface ConnectionInfo { localAddress: string; localPort: number; id: number; requests: number }

function tracker(ctx: ProxyContext, env: PluginEnv): string {
  const c = (ctx as ProxyContext & { connection?: ConnectionInfo }).connection;
  const time = (env.now() / 1000).toFixed(3);
  return c
    ? `${c.localAddress}-${c.localPort}-${process.pid}-${c.id}-${c.requests}-${time}`
    : `unknown-0-${process.pid}-0-0-${time}`;
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
    if (config.echo_downstream) ctx.responseHeaders[state.header] = id;
  },
};
