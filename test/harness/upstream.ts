// A real HTTP upstream for tests: echoes what it received as JSON, and on request delays,
// answers a chosen status, streams a large body, or speaks WebSocket.
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

export interface Echo {
  method: string; url: string; headers: http.IncomingHttpHeaders; bodyBytes: number; body: string;
  /** Over TLS: the CN of the client certificate the gateway presented, if any. */
  client_cn?: string;
}

export interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; upgrade: boolean }

export interface Upstream {
  port: number;
  url: string;
  hits: number;
  /** The last requests it received, upgrades included, newest last (at most 200). */
  seen: Seen[];
  /** Applies to every request until changed: answer this status, after this delay. */
  mode: { status?: number; delayMs?: number };
  /** Requests being answered now, the most there were at once, and those whose client left before the answer. */
  readonly active: number;
  readonly maxActive: number;
  readonly aborted: number;
  close(): Promise<void>;
}

/**
 * Controls, as query parameters: `?delay_ms=N` waits before answering; `?status=N` answers N;
 * `?set_header=name:value` adds a response header;
 * `/download/<bytes>` streams that many bytes; any body is counted (and echoed when small);
 * `?reply=<text>` answers that text (as application/json) instead of the echo.
 */
export async function startUpstream(port = 0, tls?: https.ServerOptions): Promise<Upstream> {
  const state = { hits: 0, active: 0, maxActive: 0, aborted: 0 };
  const seen: Seen[] = [];
  const record = (req: http.IncomingMessage, upgrade: boolean) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, upgrade });
    if (seen.length > 200) seen.shift();
  };
  const mode: { status?: number; delayMs?: number } = {};
  const server = (tls ? https.createServer(tls) : http.createServer()).on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    state.hits++;
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    res.once('close', () => { state.active--; if (!res.writableFinished) state.aborted++; });
    record(req, false);
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/stall') { req.pause(); return; } // never reads the body, never answers
    const dl = /^\/download\/(\d+)$/.exec(url.pathname);
    if (dl) {
      let left = Number(dl[1]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
      const chunk = Buffer.alloc(64 * 1024, 97);
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) { res.once('drain', pump); return; }
        }
        res.end();
      };
      pump();
      return;
    }
    let bytes = 0;
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => { bytes += d.length; if (bytes <= 1 << 20) parts.push(d); });
    req.on('end', () => {
      const answer = () => {
        const echo: Echo = { method: req.method!, url: req.url!, headers: req.headers, bodyBytes: bytes, body: bytes <= 1 << 20 ? Buffer.concat(parts).toString() : '' };
        if (tls) echo.client_cn = String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '') || undefined;
        const status = mode.status ?? Number(url.searchParams.get('status') ?? 200);
        const headers: Record<string, string | string[]> = { 'content-type': 'application/json', 'x-upstream': 'echo', 'x-upstream-port': String(actualPort), connection: 'keep-alive, x-drop-me', 'x-drop-me': 'hop' };
        // `?set_header=name:value` (repeatable) adds a response header (Cache-Control, Vary, Set-Cookie, …).
        for (const h of url.searchParams.getAll('set_header')) {
          const colon = h.indexOf(':');
          if (colon > 0) headers[h.slice(0, colon).toLowerCase()] = h.slice(colon + 1);
        }
        res.writeHead(status, headers);
        const reply = url.searchParams.get('reply');
        res.end(reply ?? JSON.stringify(echo));
      };
      const delay = mode.delayMs ?? Number(url.searchParams.get('delay_ms') ?? 0);
      if (delay) setTimeout(answer, delay); else answer();
    });
  });
  server.on('upgrade', (req) => record(req, true));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (m) => ws.send(`echo:${req.url}:${m.toString()}`));
  });
  let actualPort = 0;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const actual = (server.address() as AddressInfo).port;
  actualPort = actual;
  return {
    port: actual,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${actual}`,
    get hits() { return state.hits; },
    get active() { return state.active; },
    get maxActive() { return state.maxActive; },
    get aborted() { return state.aborted; },
    seen,
    mode,
    close: () => new Promise<void>((r) => { wss.close(); server.closeAllConnections(); server.close(() => r()); }),
  };
}

/**
 * Opens a WebSocket to `url`, sends `message` and resolves with the first reply; rejects with
 * `status N` when the handshake is answered with something other than 101.
 */
export function wsRoundTrip(url: string, message: string, headers: Record<string, string> = {}, tls: { ca?: string; servername?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, ...tls });
    ws.on('open', () => ws.send(message));
    ws.on('message', (m) => { resolve(m.toString()); ws.close(); });
    ws.on('unexpected-response', (_req, res) => { res.resume(); reject(new Error(`status ${res.statusCode}`)); });
    ws.on('error', reject);
  });
}
