// request-termination (reference/kong-compat.md §4.13): answers in place of the upstream, with
// {"message"} (the status's default or the configured one), a raw body + content_type, nothing, or
// (echo) a JSON copy of the request. With `trigger`, only requests carrying that header or query
// argument are terminated. Everything that does not depend on the request is built per snapshot.
import { hostname } from 'node:os';
import { freezeExit, rawBodyExit } from '../exits.ts';
import type { AccessResult, Exit, PluginEnv, PluginHandler, ProxyContext } from '../types.ts';
import { requestTermination, type RequestTerminationConfig } from './schema.ts';

/** Kong's messages for statuses answered without a configured message. */
const DEFAULT_MESSAGES: Record<number, string> = {
  401: 'Unauthorized', 404: 'Not found', 405: 'Method not allowed', 500: 'An unexpected error occurred',
  502: 'Bad Gateway', 503: 'Service unavailable',
};

interface State {
  /** The answer when it does not depend on the request (everything but echo). */
  exit: Exit | null;
  /** Lower-case trigger, for the header lookup. */
  triggerHeader: string | null;
  message: string | undefined;
  node: { worker_pid: number; hostname: string };
}

/** Query arguments as Kong's kong.request.get_query(): one value as a string, repeated ones as a list. */
function queryTable(ctx: ProxyContext): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!ctx.hasQuery()) return out;
  for (const [k, v] of ctx.query()) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function hostOf(ctx: ProxyContext): string | undefined {
  const h = ctx.headers.host;
  if (!h) return undefined;
  // Kong's get_host: no port, lower case.
  const end = h.startsWith('[') ? h.indexOf(']') + 1 : h.indexOf(':');
  return (end > 0 ? h.slice(0, end) : h).toLowerCase();
}

/** Kong's echo: the node, and the request as the gateway received it (nil values left out). */
function echo(ctx: ProxyContext, status: number, state: State, env: PluginEnv): Exit {
  const raw = ctx.rawBody();
  const c = ctx.uriCaptures;
  return {
    status,
    json: {
      message: state.message,
      kong: { node_id: env.nodeId, worker_pid: state.node.worker_pid, hostname: state.node.hostname },
      request: {
        scheme: ctx.scheme, host: hostOf(ctx), port: ctx.listenPort, headers: ctx.headers, query: queryTable(ctx), body: ctx.shared.body,
        raw_body: raw === null ? undefined : raw.toString('utf8'), method: ctx.method, path: ctx.path,
        uri_captures: c === null ? undefined : { named: c.named, unnamed: c.unnamed },
      },
      matched_route: ctx.route,
      matched_service: ctx.service,
    },
  };
}

export const requestTerminationHandler: PluginHandler<RequestTerminationConfig, State> = {
  name: requestTermination.name,
  priority: requestTermination.priority,
  // Echo shows the parsed body, so the DP must read it first; nothing else needs the body.
  needsBody: (config) => config?.echo === true,
  init(config) {
    const message = config.message ?? DEFAULT_MESSAGES[config.status_code];
    let exit: Exit | null = null;
    if (!config.echo) {
      if (config.body != null) {
        exit = rawBodyExit(config.status_code, config.body, config.content_type != null ? { 'content-type': config.content_type } : {});
      } else if (message !== undefined) {
        // kong.response.exit with a table: plain JSON, no request_id.
        exit = { status: config.status_code, json: { message } };
      } else {
        exit = rawBodyExit(config.status_code, '', {});
      }
    }
    return {
      // Shared by every request of this snapshot: frozen, so a phase that tried to change it fails loudly.
      exit: exit && freezeExit(exit), message,
      triggerHeader: config.trigger?.toLowerCase() ?? null,
      node: { worker_pid: process.pid, hostname: hostname() },
    };
  },
  access: function requestTerminationAccess(ctx, config, state, env): AccessResult {
    if (state.triggerHeader !== null && ctx.headers[state.triggerHeader] === undefined && !(ctx.hasQuery() && ctx.query().has(config.trigger!))) return;
    return state.exit ?? echo(ctx, config.status_code, state, env);
  },
};
