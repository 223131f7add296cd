// WebSocket (and any HTTP/1.1 Upgrade) proxying: route as usual, then splice the two sockets.
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { escapePath, normalizePath } from '@portico/shared';
import { upstreamPath } from '../router/upstream-path.ts';
import { nextRequestId, type ProxyDeps } from './forward.ts';
import { REQUEST_ID_HEADER, upstreamRequestHeaders } from './headers.ts';
import { MESSAGES } from './errors.ts';

function reject(socket: Duplex, status: number, message: string, requestId: string): void {
  const body = JSON.stringify({ message, request_id: requestId });
  socket.end(`HTTP/1.1 ${status} ${message}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${REQUEST_ID_HEADER}: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
}

export function createUpgradeHandler(deps: ProxyDeps) {
  return function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const requestId = nextRequestId();
    socket.on('error', () => socket.destroy());
    const cfg = deps.current();
    if (!cfg) return reject(socket, 503, 'no configuration available yet', requestId);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q);
    const path = normalizePath(rawPath);
    const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
    const match = cfg.router.match({ method: req.method ?? 'GET', path, host, port: deps.listenPort, headers: req.headers, query });
    if (!match) return reject(socket, 404, MESSAGES.noRoute, requestId);
    const service = match.service;
    if (!service) return reject(socket, 503, MESSAGES.noService, requestId);
    const route = match.route;
    const target = escapePath(upstreamPath(service.path, route.strip_path ? match.matchedPath : '', path, route.strip_path)) + query;
    const defaultPort = service.protocol === 'https' ? 443 : 80;
    const upstreamHost = route.preserve_host && req.headers.host ? req.headers.host
      : service.port === defaultPort ? service.host : `${service.host}:${service.port}`;
    const headers = upstreamRequestHeaders({
      req, requestId, host: upstreamHost, clientIp: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, ''),
      listenPort: deps.listenPort, originalPath: rawPath, strippedPrefix: route.strip_path ? match.matchedPath : '',
    });
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade ?? 'websocket';
    const upstream = service.protocol === 'https'
      ? tls.connect({ host: service.host, port: service.port, servername: service.host, rejectUnauthorized: service.tls_verify === true })
      : net.connect({ host: service.host, port: service.port });
    upstream.setTimeout(service.connect_timeout, () => {
      upstream.destroy();
      reject(socket, 504, MESSAGES.timeout, requestId);
    });
    upstream.once(service.protocol === 'https' ? 'secureConnect' : 'connect', () => {
      upstream.setTimeout(0);
      let head1 = `${req.method} ${target} HTTP/1.1\r\n`;
      for (const [k, v] of Object.entries(headers)) {
        for (const one of Array.isArray(v) ? v : [v]) head1 += `${k}: ${one}\r\n`;
      }
      upstream.write(head1 + '\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on('error', () => {
      if (!upstream.readableDidRead) reject(socket, 502, MESSAGES.badGateway, requestId);
      else socket.destroy();
    });
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
  };
}
