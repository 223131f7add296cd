// The request handler (ProxyExchange) against a fake undici dispatcher: retries, the one exit
// path, the balancer slot, and failures inside the handler. A real node:http server on loopback
// carries the client side; nothing leaves the process.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { Dispatcher } from 'undici';
import { routeSchema, serviceSchema, targetSchema, upstreamSchema, emptyConfig, type Logger, type Route } from '@portico/shared';
import { MemoryRateLimitStore, type PluginEnv, type PluginHandler } from '@portico/shared/plugins/handlers';
import { Router } from '../router/router.ts';
import { buildIndex, PluginChains, type PluginSlot } from '../plugins/compile.ts';
import { HealthRegistry } from './balancer.ts';
import { compileTargets } from './target.ts';
import { createProxy, type RuntimeConfig } from './forward.ts';
import { mayRetry } from './policy.ts';
import { accessLogTo } from '../observability/access-log.ts';

const SVC = '00000000-0000-4000-8000-0000000000f1';
const UP = '00000000-0000-4000-8000-0000000000f2';
const local = new MemoryRateLimitStore();
const env: PluginEnv = {
  now: Date.now, log: { warn() {}, error() {} }, getJson: async () => ({}), index: buildIndex(emptyConfig()),
  localRateLimitStore: local, rateLimitStore: () => local, counters: { increment() {} },
};

/** A logger that keeps what it is given. */
function memoryLogger(): Logger & { lines: { level: string; obj: any; msg: string }[] } {
  const lines: { level: string; obj: any; msg: string }[] = [];
  const at = (level: string) => (obj: any, msg = '') => { lines.push({ level, obj, msg }); };
  return { lines, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), child: () => memoryLogger() } as unknown as Logger & { lines: typeof lines };
}

/** The legacy undici handler methods ProxyExchange implements. */
interface Handler {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: Buffer[]): void;
  onError(err: Error): void;
}
type Script = (opts: Dispatcher.DispatchOptions, h: Handler) => void;

/** A dispatcher that runs `script` for every attempt and counts them. */
function fakeDispatcher(script: Script) {
  const d = {
    calls: 0, aborted: 0,
    dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      d.calls++;
      script(opts, handler as unknown as Handler);
      return true;
    },
  };
  return d;
}
const err = (code: string) => Object.assign(new Error(code), { code });
const answer200: Script = (_o, h) => {
  h.onConnect(() => {});
  h.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/plain')], () => {}, 'OK');
  h.onData(Buffer.from('ok'));
  h.onComplete([]);
};

interface Gateway { url: string; port: number; log: ReturnType<typeof memoryLogger>; access: ReturnType<typeof memoryLogger>; cfg: RuntimeConfig; close(): Promise<void> }

async function gateway(opts: {
  script: Script | ReturnType<typeof fakeDispatcher>; retries?: number; upstream?: Record<string, unknown>; plugins?: PluginSlot[];
  match?: RuntimeConfig['router']['match']; accessLogOff?: boolean; targetPort?: number;
}): Promise<Gateway> {
  const service = serviceSchema.parse({ id: SVC, created_at: 0, updated_at: 0, name: 's', host: opts.upstream ? 'up.test' : '127.0.0.1', port: 9, retries: opts.retries ?? 5, read_timeout: 1000 });
  const route: Route = routeSchema.parse({ id: '00000000-0000-4000-8000-0000000000f3', created_at: 0, updated_at: 0, paths: ['/r'], service: { id: SVC } });
  const registry = new HealthRegistry(async () => ({ kind: 'tcp' }));
  const upstreams = opts.upstream
    ? registry.plan(
      [upstreamSchema.parse({ id: UP, created_at: 0, updated_at: 0, name: 'up.test', ...opts.upstream })],
      [targetSchema.parse({ id: '00000000-0000-4000-8000-0000000000f4', created_at: 0, updated_at: 0, upstream: { id: UP }, target: `127.0.0.1:${opts.targetPort ?? 9}` })],
    ).balancers
    : new Map();
  registry.stop();
  const router = new Router([route], [service], () => opts.plugins ?? []);
  if (opts.match) router.match = opts.match;
  const cfg: RuntimeConfig = { version: 1, hash: 'h', router, plugins: new PluginChains([], env), upstreams, targets: compileTargets([service], upstreams) };
  const log = memoryLogger();
  const access = memoryLogger();
  const dispatcher = typeof opts.script === 'function' ? fakeDispatcher(opts.script) : opts.script;
  const proxy = createProxy({ current: () => cfg, accessLog: opts.accessLogOff ? null : accessLogTo(access), log, listenPort: 8000, dispatcherFor: () => dispatcher as unknown as Dispatcher });
  const server = http.createServer(proxy.handleRequest);
  server.on('upgrade', proxy.handleUpgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, port, log, access, cfg, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

function request(g: Gateway, path: string, method = 'GET', body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(`${g.url}${path}`, { method, agent: false }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    r.on('error', reject);
    r.end(body);
  });
}

const until = async (what: string, fn: () => boolean) => {
  for (let i = 0; i < 200; i++) { if (fn()) return; await new Promise((r) => setTimeout(r, 10)); }
  assert.fail(`timed out waiting for ${what}`);
};

const open: Gateway[] = [];
after(async () => { await Promise.all(open.map((g) => g.close())); });
const start = async (o: Parameters<typeof gateway>[0]) => { const g = await gateway(o); open.push(g); return g; };

describe('retry policy (nginx proxy_next_upstream)', () => {
  it('never replays a non-idempotent request once any byte of it was sent', () => {
    for (const method of ['POST', 'PATCH', 'LOCK', 'CONNECT', 'BREW']) {
      for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']) {
        assert.equal(mayRetry(method, true, true, code), false, `${method} ${code}`);
      }
    }
  });
  it('replays any method whose connection failed before it was sent', () => {
    for (const code of ['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH']) assert.equal(mayRetry('POST', true, false, code), true, code);
  });
  it('replays idempotent methods after a headers timeout or a reset, never a streamed body', () => {
    for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']) assert.equal(mayRetry(method, true, true, 'UND_ERR_HEADERS_TIMEOUT'), true, method);
    assert.equal(mayRetry('PUT', false, false, 'ECONNREFUSED'), false);
    assert.equal(mayRetry('GET', true, true, 'UND_ERR_BODY_TIMEOUT'), false);
  });
});

describe('ProxyExchange', () => {
  it('sends a bodiless POST that times out after being sent exactly once (retries 5)', async () => {
    const d = fakeDispatcher((_o, h) => { h.onConnect(() => {}); setTimeout(() => h.onError(err('UND_ERR_HEADERS_TIMEOUT')), 5); });
    const g = await start({ script: d, retries: 5 });
    const r = await request(g, '/r/x', 'POST');
    assert.equal(r.status, 504);
    assert.equal(d.calls, 1);
  });

  it('retries a POST whose connection was refused before anything was sent', async () => {
    const d = fakeDispatcher((_o, h) => { setImmediate(() => h.onError(err('ECONNREFUSED'))); });
    const g = await start({ script: d, retries: 5 });
    const r = await request(g, '/r/x', 'POST');
    assert.equal(r.status, 502);
    assert.equal(d.calls, 6);
  });

  it('retries a GET that timed out after being sent', async () => {
    let n = 0;
    const d = fakeDispatcher((o, h) => { if (n++ === 0) { h.onConnect(() => {}); setImmediate(() => h.onError(err('UND_ERR_HEADERS_TIMEOUT'))); } else answer200(o, h); });
    const g = await start({ script: d, retries: 5 });
    const r = await request(g, '/r/x');
    assert.deepEqual([r.status, r.body, d.calls], [200, 'ok', 2]);
  });

  it('ends in one finish for an aborted request: slot released, upstream aborted, log phase and one access-log line', async () => {
    let aborted = 0;
    let logged = 0;
    const logPlugin: PluginHandler = { name: 'log-probe', priority: 1, log: () => { logged++; } };
    const slot: PluginSlot = { name: 'log-probe', handler: logPlugin, base: { id: 'p', name: 'log-probe', config: {}, state: undefined, handler: logPlugin, routeId: null, serviceId: null, consumerId: null }, baseRank: 8, byConsumer: null };
    const d = fakeDispatcher((_o, h) => { h.onConnect(() => { aborted++; setImmediate(() => h.onError(err('UND_ERR_ABORTED'))); }); });
    const g = await start({
      script: d, plugins: [slot],
      upstream: { circuit_breaker: { failures: 1, failure_codes: [503], open_timeout: 10, half_open_requests: 1 } },
    });
    const t = g.cfg.upstreams.get('up.test')!.targets[0];
    // Half-open: the next request is the one probe allowed.
    t.breaker = 'open';
    t.openedAt = Date.now() - 60_000;
    const sock = net.connect(g.port, '127.0.0.1');
    sock.write('GET /r/x HTTP/1.1\r\nHost: a\r\n\r\n');
    await until('the probe to be in flight', () => d.calls === 1);
    assert.equal(t.probesInFlight, 1);
    sock.destroy();
    await until('the access-log line', () => g.access.lines.length === 1);
    assert.equal(t.probesInFlight, 0, 'the probe slot is free again (review C1)');
    assert.equal(t.active, 0);
    assert.equal(aborted, 1, 'the upstream request was aborted');
    assert.equal(logged, 1, 'the log phase ran once');
    assert.equal(g.access.lines[0].obj.status, 499);
    assert.equal(g.access.lines[0].obj.aborted, true);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(g.access.lines.length, 1, 'exactly one line');
  });

  it('counts an upgraded connection as in flight on its target until it closes, and logs it once', async () => {
    const sockets: net.Socket[] = [];
    const up = net.createServer((c) => {
      sockets.push(c);
      c.once('data', () => c.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
    after(() => { sockets.forEach((c) => c.destroy()); up.close(); });
    const g = await start({ script: answer200, upstream: { algorithm: 'least-connections' }, targetPort: (up.address() as net.AddressInfo).port });
    const t = g.cfg.upstreams.get('up.test')!.targets[0];
    const client = net.connect(g.port, '127.0.0.1');
    client.write('GET /r/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    let got = '';
    client.on('data', (d) => { got += d; });
    await until('the 101', () => got.startsWith('HTTP/1.1 101'));
    assert.equal(t.active, 1, 'least-connections sees the WebSocket');
    assert.ok(t.ewmaMs > 0, 'the handshake was reported to the balancer');
    client.destroy();
    await until('the access-log line', () => g.access.lines.length === 1);
    assert.equal(t.active, 0);
    assert.equal(g.access.lines[0].obj.status, 101);
  });

  it('answers 500 and logs with the node logger when matching throws, on HTTP and on Upgrade', async () => {
    const g = await start({ script: answer200, match: () => { throw new TypeError('boom'); } });
    const r = await request(g, '/r/x');
    assert.equal(r.status, 500);
    assert.equal(JSON.parse(r.body).message, 'An unexpected error occurred');
    const raw = await new Promise<string>((resolve) => {
      let b = '';
      const s = net.connect(g.port, '127.0.0.1', () => s.write('GET /r/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
      s.on('data', (c) => { b += c; });
      s.on('close', () => resolve(b));
    });
    assert.match(raw, /^HTTP\/1\.1 500 /);
    assert.equal(g.log.lines.filter((l) => l.level === 'error' && l.obj.err instanceof TypeError).length, 2);
    assert.equal((await request(g, '/r/x')).status, 500, 'the server still answers');
  });

  it('logs internal errors with the node logger when the access log is off', async () => {
    const g = await start({ script: answer200, match: () => { throw new TypeError('boom'); }, accessLogOff: true });
    assert.equal((await request(g, '/r/x?jwt=t')).status, 500);
    const line = g.log.lines.find((l) => l.level === 'error')!;
    assert.equal(line.msg, 'proxy request failed');
    assert.equal(line.obj.path, '/r/x?jwt=[REDACTED]');
    assert.equal(g.access.lines.length, 0);
  });

  it('answers 500 (not 502) when a response-phase handler throws, and aborts the upstream request', async () => {
    const bad: PluginHandler = { name: 'bad-response', priority: 1, response: () => { throw new Error('response bug'); } };
    const slot: PluginSlot = { name: 'bad-response', handler: bad, base: { id: 'r', name: 'bad-response', config: {}, state: undefined, handler: bad, routeId: null, serviceId: null, consumerId: null }, baseRank: 8, byConsumer: null };
    let aborted = 0;
    const d = fakeDispatcher((_o, h) => {
      h.onConnect(() => { aborted++; });
      if (h.onHeaders(200, [Buffer.from('content-type'), Buffer.from('text/plain')], () => {}, 'OK')) { h.onData(Buffer.from('x')); h.onComplete([]); }
    });
    const g = await start({ script: d, plugins: [slot] });
    assert.equal((await request(g, '/r/x')).status, 500);
    await until('the access-log line', () => g.access.lines.length === 1);
    assert.equal(aborted, 1);
    assert.ok(g.log.lines.some((l) => l.level === 'error' && l.obj.err?.message === 'response bug'));
  });

  it('answers 500 when an access handler rejects, and logs it', async () => {
    const bad: PluginHandler = { name: 'bad', priority: 1, access: async () => { throw new Error('plugin bug'); } };
    const slot: PluginSlot = { name: 'bad', handler: bad, base: { id: 'b', name: 'bad', config: {}, state: undefined, handler: bad, routeId: null, serviceId: null, consumerId: null }, baseRank: 8, byConsumer: null };
    const g = await start({ script: answer200, plugins: [slot] });
    assert.equal((await request(g, '/r/x?apikey=secret')).status, 500);
    const line = g.log.lines.find((l) => l.msg === 'proxy request failed')!;
    assert.equal(line.obj.path, '/r/x?apikey=[REDACTED]');
    assert.equal(g.access.lines[0].obj.path, '/r/x?apikey=[REDACTED]');
  });
});
