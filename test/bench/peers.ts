// The side-by-side part of `npm run bench` (issue 16): proxies doing the same job, one process (or
// worker) each unless the row says otherwise, against the same upstream, in one run. Every row
// reports req/s, p50/p99 and CPU µs per request: the CPU time (utime + stime, /proc/<pid>/stat) of
// the target's whole process tree, children and threads included, over the requests served. CPU
// per request is what to compare on a shared machine: req/s moves with whatever else runs.
//
// A peer is a start function that returns its process id, its rows and a stop function, or a
// sentence saying why it is skipped (a binary that is absent: the bench installs nothing). To add a
// row, add a peer to the list in bench.ts.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway } from '../harness/gateway.ts';
import { dpVersion, type Stack } from '../harness/stack.ts';
import { freePort, portOpen, waitFor } from '../harness/procs.ts';

export interface PeerRow { name: string; url: string; headers?: Record<string, string> }
export interface RunningPeer { pid: number; rows: PeerRow[]; stop(): void | Promise<void> }
export interface PeerEnv {
  /** The upstream every peer forwards to (`/anything` answers a small JSON document). */
  origin: { url: string; port: number };
  stack: Stack;
  redisUrl: string;
}
export interface Peer { name: string; start(env: PeerEnv): Promise<RunningPeer | string> }
export interface Measured { rps: number; p50: number; p99: number; requests: number; cpuUs: number }

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU seconds used so far by `root` and every process below it: utime + stime of each live one,
 * plus cutime + cstime (its children already reaped).
 */
export function treeCpuSeconds(root: number): number {
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try { stat = readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
    // Fields after the command name (which may hold spaces): state ppid … utime(14) stime cutime cstime.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parent.set(Number(entry), Number(f[1]));
    ticks.set(Number(entry), Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
  }
  let total = 0;
  for (const [pid, t] of ticks) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) { total += t; break; }
    }
  }
  return total / CLK_TCK;
}

const WRK_LUA = `done = function(s, l, r)
  io.write(string.format("RESULT %f %f %f %d\\n", s.requests / (s.duration / 1e6), l:percentile(50) / 1000, l:percentile(99) / 1000, s.requests))
end\n`;

/** wrk against `url` for `seconds`, with the target's CPU time measured around it. */
export function measure(url: string, headers: Record<string, string> | undefined, pid: number, seconds: number, connections: number): Measured {
  const lua = path.join(os.tmpdir(), 'portico-wrk-peers.lua');
  writeFileSync(lua, WRK_LUA);
  const h = Object.entries(headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const cpu0 = treeCpuSeconds(pid);
  const out = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, ...h, '-s', lua, url], { encoding: 'utf8' });
  const cpu1 = treeCpuSeconds(pid);
  const m = /RESULT ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(out)!;
  const requests = Number(m[4]);
  return { rps: Number(m[1]), p50: Number(m[2]), p99: Number(m[3]), requests, cpuUs: ((cpu1 - cpu0) * 1e6) / requests };
}

const tmp = (name: string) => mkdtempSync(path.join(os.tmpdir(), `portico-${name}-`));
const absent = (bin: string) => `${bin} is not installed: skipped`;

function stopper(p: ChildProcess): () => Promise<void> {
  return async () => {
    if (p.exitCode !== null || p.signalCode) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  };
}

async function started(name: string, p: ChildProcess, port: number, rows: (base: string) => PeerRow[]): Promise<RunningPeer> {
  await waitFor(name, async () => {
    if (p.exitCode !== null) throw new Error(`${name} exited with ${p.exitCode}`);
    return portOpen(port);
  });
  return { pid: p.pid!, rows: rows(`http://127.0.0.1:${port}`), stop: stopper(p) };
}

const plainRow = (name: string) => (base: string): PeerRow[] => [{ name, url: `${base}/mock/anything` }];

/** nginx proxy_pass with upstream keep-alive, `workers` worker_processes. */
export function nginxPeer(workers: number): Peer {
  const name = `nginx proxy_pass, ${workers} worker${workers > 1 ? 's' : ''}`;
  return {
    name,
    async start({ origin }) {
      if (!existsSync('/usr/sbin/nginx')) return absent('/usr/sbin/nginx');
      const port = await freePort();
      const dir = tmp('nginx-peer');
      writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes ${workers}; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream origin { server 127.0.0.1:${origin.port}; keepalive 64; keepalive_requests 100000; }
  server { listen 127.0.0.1:${port}; location /mock/ { proxy_pass http://origin/; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`);
      const p = spawn('/usr/sbin/nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
      return started(name, p, port, plainRow(name));
    },
  };
}

/** HAProxy, one thread, connections to the upstream reused across requests. */
export const haproxyPeer: Peer = {
  name: 'HAProxy, nbthread 1',
  async start({ origin }) {
    if (!existsSync('/usr/sbin/haproxy')) return absent('/usr/sbin/haproxy');
    const port = await freePort();
    const dir = tmp('haproxy-peer');
    writeFileSync(path.join(dir, 'haproxy.cfg'), `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend proxy
  bind 127.0.0.1:${port}
  default_backend origin
backend origin
  http-request replace-path /mock(/.*) \\1
  server o 127.0.0.1:${origin.port}\n`);
    const p = spawn('/usr/sbin/haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    return started(this.name, p, port, plainRow(this.name));
  },
};

/** Caddy's reverse_proxy on one core (GOMAXPROCS=1), no access log (its default). */
export const caddyPeer: Peer = {
  name: 'Caddy, GOMAXPROCS=1',
  async start({ origin }) {
    if (!existsSync('/usr/bin/caddy')) return absent('/usr/bin/caddy');
    const port = await freePort();
    const dir = tmp('caddy-peer');
    writeFileSync(path.join(dir, 'Caddyfile'), `{
  admin off
  auto_https off
}
http://127.0.0.1:${port} {
  handle_path /mock/* {
    reverse_proxy 127.0.0.1:${origin.port}
  }
}\n`);
    const p = spawn('/usr/bin/caddy', ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], {
      stdio: 'ignore', env: { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir, GOMAXPROCS: '1' },
    });
    return started(this.name, p, port, plainRow(this.name));
  },
};

async function nodePeer(name: string, code: (port: number, upstream: string) => string, upstream: string): Promise<RunningPeer> {
  const port = await freePort();
  const p = spawn(process.execPath, ['-e', code(port, upstream)], { stdio: 'ignore', cwd: process.cwd() });
  return started(name, p, port, plainRow(name));
}

export const fastifyPeer: Peer = {
  name: '@fastify/http-proxy',
  start: ({ origin }) => nodePeer('@fastify/http-proxy', (port, upstream) => `
    const fastify = require('fastify')({ logger: false });
    fastify.register(require('@fastify/http-proxy'), { upstream: ${JSON.stringify(upstream)}, prefix: '/mock' });
    fastify.listen({ port: ${port}, host: '127.0.0.1' });`, origin.url),
};

/**
 * The per-process ceiling for a Node proxy: node:http in, undici stream() out, pooled keep-alive
 * connections, hop-by-hop headers dropped, nothing else (no routing, no plugins, no logs).
 */
export const bareNodePeer: Peer = {
  name: 'bare Node forwarder (node:http + undici stream)',
  start: ({ origin }) => nodePeer('bare Node forwarder (node:http + undici stream)', (port, upstream) => `
    const http = require('node:http');
    const { Agent, stream } = require('undici');
    const dispatcher = new Agent({ keepAliveTimeout: 60000 });
    const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer', 'host']);
    const strip = (h) => { const o = {}; for (const k in h) if (!HOP.has(k)) o[k] = h[k]; return o; };
    http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
      const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
      stream(${JSON.stringify(upstream)} + req.url.slice(5), { method: req.method, headers: strip(req.headers), body: hasBody ? req : null, dispatcher },
        ({ statusCode, headers }) => { res.writeHead(statusCode, strip(headers)); return res; })
        .catch(() => { if (!res.headersSent) res.writeHead(502); res.end(); });
    }).listen(${port}, '127.0.0.1');`, origin.url),
};

/**
 * A Portico DP of its own on the bench's control plane (so a row measures only its process tree),
 * serving `/mock` plain and `/karl` with key-auth + Redis rate limiting, as the rest of the bench.
 */
export function porticoPeer(name: string, env: Record<string, string> = {}): Peer {
  return {
    name,
    async start({ stack, redisUrl }) {
      const dp = await startGateway('data-plane', {
        env: {
          NATS_URL: stack.nats.url, REDIS_URL: redisUrl, PORTICO_LOG_LEVEL: 'warn', PORTICO_ACCESS_LOG: process.env.BENCH_ACCESS_LOG ?? 'off',
          // BENCH_NODE_OPTIONS: e.g. `--require` a profiler preload.
          NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS, ...env,
        },
        // BENCH_DP_NODE_ARGS: node flags NODE_OPTIONS refuses, e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof'
        // (a profile per DP, written when it stops).
        nodeArgs: process.env.BENCH_DP_NODE_ARGS?.split(' ').filter(Boolean),
      });
      const want = await dpVersion(stack.dps[0]);
      await waitFor(`${name} at version ${want}`, async () => (await dpVersion(dp)) >= want, 20_000, 50);
      return {
        pid: dp.proc.pid!,
        rows: [
          { name, url: `${dp.proxy}/mock/anything` },
          { name: `${name} + key-auth + rate-limiting (redis)`, url: `${dp.proxy}/karl/anything`, headers: { apikey: 'bench-key' } },
        ],
        async stop() { await dp.stop(); dp.cleanup(); },
      };
    },
  };
}

/**
 * Starts every peer, warms each row up, measures all rows `rounds` times (interleaved, so a noisy
 * moment hits every row alike), stops the peers, and returns the table's lines (medians).
 */
export async function benchPeers(peers: Peer[], env: PeerEnv, o: { seconds: number; rounds: number; connections: number }): Promise<string[]> {
  const skipped: string[] = [];
  const running: { peer: Peer; run: RunningPeer }[] = [];
  try {
    for (const peer of peers) {
      const run = await peer.start(env);
      if (typeof run === 'string') skipped.push(`- ${peer.name}: ${run}`);
      else running.push({ peer, run });
    }
    const rows = running.flatMap(({ run }) => run.rows.map((row) => ({ row, pid: run.pid, results: [] as Measured[] })));
    for (const { row } of rows) {
      const r = await fetch(row.url, { headers: row.headers });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`${row.name}: ${row.url} answered ${r.status}`);
    }
    for (const { row, pid } of rows) measure(row.url, row.headers, pid, 1, 10);
    for (let round = 0; round < o.rounds; round++) {
      for (const r of rows) r.results.push(measure(r.row.url, r.row.headers, r.pid, o.seconds, o.connections));
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const m = rows.map((r) => ({
      name: r.row.name, rps: med(r.results.map((x) => x.rps)), p50: med(r.results.map((x) => x.p50)),
      p99: med(r.results.map((x) => x.p99)), cpuUs: med(r.results.map((x) => x.cpuUs)),
    }));
    const ref = (prefix: string) => m.find((x) => x.name.startsWith(prefix));
    const bare = ref('bare Node forwarder');
    const nginx = ref('nginx proxy_pass, 1 worker');
    const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', ...(nginx ? ['× nginx 1w'] : []), ...(bare ? ['× bare Node'] : [])];
    const table = m.map((x) => `| ${x.name} | ${x.rps.toFixed(0)} | ${x.p50.toFixed(2)} | ${x.p99.toFixed(2)} | ${x.cpuUs.toFixed(0)} |`
      + `${nginx ? ` ${(x.rps / nginx.rps).toFixed(2)} |` : ''}${bare ? ` ${(x.rps / bare.rps).toFixed(2)} |` : ''}`);
    return [`| ${head.join(' | ')} |`, `|---|${head.slice(1).map(() => '---:').join('|')}|`, ...table, ...(skipped.length ? ['', ...skipped] : [])];
  } finally {
    for (const { run } of running) await run.stop();
  }
}
