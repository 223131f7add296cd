// request-size-limiting (reference/kong-compat.md §4.8). A body announced by Content-Length is
// decided here, before a byte of it is read: over the limit → 413 (417 when the client waits for
// `100 Continue`, so it never sends the body). A chunked body has no length to read: the handler
// gives its limit through `requestBodyLimit`, and the DP counts the body while streaming it
// upstream, aborting it with a 413 past the limit (no buffering).
import { freezeExit } from '../exits.ts';
import type { AccessResult, Exit, PluginHandler, ProxyContext } from '../types.ts';
import { requestSizeLimiting, UNIT_BYTES, type RequestSizeLimitingConfig } from './schema.ts';

interface State { limit: number }

const TOO_LARGE = freezeExit<Exit>({ status: 413, message: 'Request size limit exceeded' });
const EXPECTATION_FAILED = freezeExit<Exit>({ status: 417, message: 'Request size limit exceeded' });
const LENGTH_REQUIRED = freezeExit<Exit>({ status: 411, message: 'A valid Content-Length header is required' });

/** The answer to a body over the limit (417 to a client that sent `Expect: 100-continue`). */
export function bodyTooLarge(ctx: ProxyContext): Exit {
  const expect = ctx.headers.expect;
  return expect !== undefined && expect.trim().toLowerCase() === '100-continue' ? EXPECTATION_FAILED : TOO_LARGE;
}

/** RFC 9112 §6.1: chunked is the final transfer coding. */
function isChunked(te: string | undefined): boolean {
  return te !== undefined && /(?:^|,)\s*chunked\s*$/i.test(te);
}

export const requestSizeLimitingHandler: PluginHandler<RequestSizeLimitingConfig, State> & {
  requestBodyLimit(config: RequestSizeLimitingConfig, state: State): number | null;
} = {
  name: requestSizeLimiting.name,
  priority: requestSizeLimiting.priority,
  init(config) {
    return { limit: config.allowed_payload_size * UNIT_BYTES[config.size_unit] };
  },
  requestBodyLimit: (_config, state) => state.limit,
  access: function requestSizeLimitingAccess(ctx, config, state): AccessResult {
    const cl = ctx.headers['content-length'];
    // Node refuses a malformed Content-Length before any handler runs; Kong's tonumber() is the model.
    const length = cl === undefined || cl.trim() === '' ? NaN : Number(cl);
    if (Number.isFinite(length)) return length > state.limit ? bodyTooLarge(ctx) : undefined;
    if (config.require_content_length && !isChunked(ctx.headers['transfer-encoding'])) return LENGTH_REQUIRED;
  },
};
