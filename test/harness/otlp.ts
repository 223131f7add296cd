// Telemetry receivers for tests: real HTTP servers that decode what the gateway sends.
// - an OTLP/HTTP traces receiver (the exporter's JSON encoding of ExportTraceServiceRequest),
//   flattening resourceSpans → scopeSpans → spans so tests can assert ids, parents and attributes;
// - a log collector for http-log that can turn slow, go down (its port closed) and come back on
//   the same port.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  kind: number;
  attributes: Record<string, unknown>;
  events: string[];
  resource: Record<string, unknown>;
}

type OtlpValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
const valueOf = (v: OtlpValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue ?? v.boolValue);
const attrs = (list: { key: string; value: OtlpValue }[] | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]));

interface Receiver<T> {
  url: string;
  received: T[];
  requests: { headers: http.IncomingHttpHeaders; body: string }[];
  /** Delay every answer by this many ms. */
  mode: { delayMs: number; status: number };
  /** Closes the port (connections refused) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

async function startReceiver<T>(decode: (body: string) => T[]): Promise<Receiver<T>> {
  const received: T[] = [];
  const requests: Receiver<T>['requests'] = [];
  const mode = { delayMs: 0, status: 200 };
  const sockets = new Set<Socket>();
  const make = () => {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        setTimeout(() => {
          // Cut while slow (down()): the sender saw a failure, so this delivery does not count.
          if (req.socket.destroyed) return;
          if (mode.status === 200) { requests.push({ headers: req.headers, body }); received.push(...decode(body)); }
          res.writeHead(mode.status, { 'content-type': 'application/json' }).end('{}');
        }, mode.delayMs);
      });
    });
    server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
    return server;
  };
  let server = make();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const closeServer = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return {
    url: `http://127.0.0.1:${port}`, received, requests, mode,
    down: closeServer,
    async up() { server = make(); await new Promise<void>((r) => server.listen(port, '127.0.0.1', r)); },
    close: closeServer,
  };
}

export function startOtlpReceiver(): Promise<Receiver<ReceivedSpan>> {
  return startReceiver((body) => {
    const out: ReceivedSpan[] = [];
    const doc = JSON.parse(body) as { resourceSpans?: { resource?: { attributes?: [] }; scopeSpans?: { spans?: any[] }[] }[] };
    for (const rs of doc.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          out.push({
            traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId ?? '', name: s.name, kind: s.kind,
            attributes: attrs(s.attributes), events: (s.events ?? []).map((e: { name: string }) => e.name), resource,
          });
        }
      }
    }
    return out;
  });
}

/** http-log's collector: each request is one entry (a JSON object) or a batch (a JSON array). */
export function startLogCollector(): Promise<Receiver<Record<string, any>>> {
  return startReceiver((body) => {
    const doc = JSON.parse(body) as Record<string, any> | Record<string, any>[];
    return Array.isArray(doc) ? doc : [doc];
  });
}
