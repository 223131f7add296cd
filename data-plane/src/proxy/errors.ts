// Gateway-generated error responses (reference/kong-compat.md §3.9, §7.5).
import type { IncomingMessage, ServerResponse } from 'node:http';

export const MESSAGES = {
  noRoute: 'no Route matched with those values',
  noService: 'no Service found with those values',
  badGateway: 'An invalid response was received from the upstream server',
  timeout: 'The upstream server is timing out',
  unavailable: 'The upstream server is currently unavailable',
  badRequest: 'Bad request',
  internal: 'An unexpected error occurred',
  noPeer: 'failure to get a peer from the ring-balancer',
} as const;

/**
 * `kind: 'gateway'` is Kong's kong.response.error (JSON unless the client prefers text);
 * `kind: 'upstream'` is an nginx-level error (Accept, then Content-Type, then text/plain).
 */
export function sendError(req: IncomingMessage, res: ServerResponse, status: number, message: string, requestId: string, kind: 'gateway' | 'upstream', extraHeaders?: Record<string, string>): void {
  if (res.headersSent) { res.destroy(); return; }
  const accept = req.headers.accept ?? '';
  const ctype = req.headers['content-type'] ?? '';
  const wantsJson = kind === 'gateway'
    ? !/text\/plain|text\/html/.test(accept) || accept.includes('application/json')
    : accept.includes('application/json') || (!accept.includes('text/') && ctype.includes('application/json'));
  const body = wantsJson
    ? `{\n  "message":"${message}",\n  "request_id":"${requestId}"\n}`
    : `${message}\nrequest_id: ${requestId}\n`;
  const headers: Record<string, string | number> = {
    'content-type': wantsJson ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
    'content-length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body),
    'x-portico-request-id': requestId,
    ...extraHeaders,
  };
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}
