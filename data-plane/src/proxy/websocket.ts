// WebSocket (and any HTTP/1.1 Upgrade) proxying: route and run the access phase exactly as for
// other requests (auth, rate limits, canary), pick a target when the service is an upstream, then
// splice the two sockets.
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { escapePath, normalizePath, type Service } from '@portico/shared';
import type { AccessResult, Exit } from '@portico/shared/plugins/handlers';
import { upstreamPath } from '../router/upstream-path.ts';
import { RequestContext } from '../plugins/context.ts';
import { isMessageExit, runAccess } from '../plugins/run.ts';
import { hostOf, hostPort, splitUrl, type ServiceTarget } from './target.ts';
import { nextRequestId, type ProxyDeps } from './forward.ts';
import { REQUEST_ID_HEADER, upstreamRequestHeaders } from './headers.ts';
import { MESSAGES } from './errors.ts';

function reject(socket: Duplex, status: number, body: unknown, requestId: string, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  let head = `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 429 ? 'Too Many Requests' : 'Error'}\r\n`;
  const all: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), [REQUEST_ID_HEADER]: requestId, connection: 'close', ...headers };
  for (const [k, v] of Object.entries(all)) head += `${k}: ${v}\r\n`;
  socket.end(`${head}\r\n${text}`);
}

function rejectExit(socket: Duplex, exit: Exit, requestId: string): void {
  if (isMessageExit(exit)) reject(socket, exit.status, { message: exit.message, request_id: requestId }, requestId, exit.headers);
  else reject(socket, exit.status, exit.json, requestId, exit.headers);
}

export function createUpgradeHandler(deps: ProxyDeps) {
  return function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const requestId = nextRequestId();
    socket.on('error', () => socket.destroy());
    const cfg = deps.current();
    if (!cfg) return reject(socket, 503, { message: 'no configuration available yet', request_id: requestId }, requestId);
    const { path: rawPath, query } = splitUrl(req.url ?? '/');
    const path = normalizePath(rawPath);
    const match = cfg.router.match({ method: req.method ?? 'GET', path, host: hostOf(req.headers.host ?? ''), port: deps.listenPort, headers: req.headers, query });
    if (!match) return reject(socket, 404, { message: MESSAGES.noRoute, request_id: requestId }, requestId);
    if (!match.route.protocols.includes('http')) {
      return reject(socket, 426, { message: 'Please use HTTPS protocol', request_id: requestId }, requestId, { upgrade: 'TLS/1.2, HTTP/1.1' });
    }
    if (!match.service) return reject(socket, 503, { message: MESSAGES.noService, request_id: requestId }, requestId);
    const route = match.route;
    const clientIp = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const headers = upstreamRequestHeaders({
      req, requestId, host: '', clientIp, listenPort: deps.listenPort, originalPath: rawPath,
      strippedPrefix: route.strip_path ? match.matchedPath : '',
    });
    const slots = match.compiled.plugins;
    const connect = (target: ServiceTarget, finalQuery: string) => {
      const service = target.service;
      const uri = escapePath(upstreamPath(service.path, route.strip_path ? match.matchedPath : '', path, route.strip_path)) + finalQuery;
      let dialHost = service.host;
      let dialPort = service.port;
      if (target.balancer) {
        const peer = target.balancer.pick(null, new Set());
        if (!peer) return reject(socket, 503, { message: MESSAGES.noPeer, request_id: requestId }, requestId);
        dialHost = peer.host;
        dialPort = peer.port;
      }
      headers.host = route.preserve_host && req.headers.host ? req.headers.host
        : target.balancer?.upstream.host_header ?? hostPort(dialHost, dialPort, target.defaultPort);
      splice(req, socket, head, service, dialHost, dialPort, uri, headers, requestId);
    };
    const matched = cfg.targets.get(match.service.id)!;
    if (slots.length === 0) return connect(matched, query);
    const ctx = new RequestContext(requestId, req, path, clientIp, route, match.service, headers, query);
    const after = (exit: AccessResult) => {
      if (exit) return rejectExit(socket, exit, requestId);
      connect((ctx.serviceOverride && cfg.targets.get(ctx.serviceOverride)) || matched, ctx.finalQuery());
    };
    try {
      const r = runAccess(slots, ctx, cfg.plugins.env);
      if (r instanceof Promise) r.then(after, () => reject(socket, 500, { message: MESSAGES.internal, request_id: requestId }, requestId));
      else after(r);
    } catch {
      reject(socket, 500, { message: MESSAGES.internal, request_id: requestId }, requestId);
    }
  };
}

function splice(req: IncomingMessage, socket: Duplex, head: Buffer, service: Service, dialHost: string, dialPort: number,
  target: string, headers: Record<string, string | string[]>, requestId: string): void {
  headers.connection = 'Upgrade';
  headers.upgrade = req.headers.upgrade ?? 'websocket';
  const upstream = service.protocol === 'https'
    ? tls.connect({ host: dialHost, port: dialPort, servername: dialHost, rejectUnauthorized: service.tls_verify === true })
    : net.connect({ host: dialHost, port: dialPort });
  upstream.setTimeout(service.connect_timeout, () => {
    upstream.destroy();
    reject(socket, 504, { message: MESSAGES.timeout, request_id: requestId }, requestId);
  });
  upstream.once(service.protocol === 'https' ? 'secureConnect' : 'connect', () => {
    upstream.setTimeout(0);
    let requestHead = `${req.method} ${target} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) requestHead += `${k}: ${one}\r\n`;
    }
    upstream.write(requestHead + '\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', () => {
    if (!upstream.readableDidRead) reject(socket, 502, { message: MESSAGES.badGateway, request_id: requestId }, requestId);
    else socket.destroy();
  });
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => socket.destroy());
}

