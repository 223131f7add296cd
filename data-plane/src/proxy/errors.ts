// Gateway-generated error responses (reference/kong-compat.md §3.9, §7.5).
import type { IncomingHttpHeaders } from 'node:http';

export const MESSAGES = {
  noRoute: 'no Route matched with those values',
  noService: 'no Service found with those values',
  badGateway: 'An invalid response was received from the upstream server',
  timeout: 'The upstream server is timing out',
  unavailable: 'The upstream server is currently unavailable',
  badRequest: 'Bad request',
  internal: 'An unexpected error occurred',
  noPeer: 'failure to get a peer from the ring-balancer',
  noConfig: 'no configuration available yet',
  https: 'Please use HTTPS protocol',
  tooLarge: 'Request size limit exceeded',
  bodyTimeout: 'Request timeout',
  badHeader: 'Bad request: a header set for the upstream is invalid',
  twoHosts: 'Bad request: more than one Host header',
  badVersion: 'Bad request: unsupported HTTP version',
  preflightUpgrade: 'Bad request: OPTIONS cannot upgrade the connection',
  badJson: 'Bad request: the request body is not valid JSON',
  notJsonBody: 'Unsupported Media Type: the request body must be JSON',
  encodedBody: 'Unsupported Media Type: a compressed (Content-Encoding) request body cannot be validated',
} as const;

export interface ErrorBody { contentType: string; body: string }

/**
 * `kind: 'gateway'` is Kong's kong.response.error (JSON unless the client prefers text);
 * `kind: 'upstream'` is an nginx-level error (Accept, then Content-Type, then text/plain).
 * Built with JSON.stringify: a configured message (a rate limit's `error_message`) may hold
 * quotes or backslashes.
 */
export function errorBody(headers: IncomingHttpHeaders, kind: 'gateway' | 'upstream', message: string, requestId: string, extra: Record<string, string> | null = null): ErrorBody {
  const accept = headers.accept ?? '';
  const wantsJson = kind === 'gateway'
    ? !(accept.includes('text/plain') || accept.includes('text/html')) || accept.includes('application/json')
    : accept.includes('application/json') || (!accept.includes('text/') && (headers['content-type'] ?? '').includes('application/json'));
  let jsonExtra = '', textExtra = '';
  // Fields plugins add (a correlation id): names and values already sendable, quoted here all the same.
  if (extra !== null) for (const [k, v] of Object.entries(extra)) { jsonExtra += `,\n  ${JSON.stringify(k)}:${JSON.stringify(v)}`; textExtra += `${k}: ${v.replace(/[\r\n]/g, ' ')}\n`; }
  return wantsJson
    ? { contentType: 'application/json; charset=utf-8', body: `{\n  "message":${JSON.stringify(message)},\n  "request_id":${JSON.stringify(requestId)}${jsonExtra}\n}` }
    : { contentType: 'text/plain; charset=utf-8', body: `${message}\nrequest_id: ${requestId}\n${textExtra}` };
}

/** Reason phrases for the statuses the gateway itself answers on raw sockets. */
export function reasonPhrase(status: number): string {
  switch (status) {
    case 400: return 'Bad Request';
    case 401: return 'Unauthorized';
    case 403: return 'Forbidden';
    case 404: return 'Not Found';
    case 408: return 'Request Timeout';
    case 413: return 'Content Too Large';
    case 426: return 'Upgrade Required';
    case 429: return 'Too Many Requests';
    case 500: return 'Internal Server Error';
    case 502: return 'Bad Gateway';
    case 503: return 'Service Unavailable';
    case 504: return 'Gateway Timeout';
    default: return status >= 300 && status < 400 ? 'Redirect' : 'Error';
  }
}
