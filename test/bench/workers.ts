// Worker part of `npm run bench` (issue 16, "All cores"): one DP node with PORTICO_WORKERS=1 and
// one with 2, started side by side on the same CP, on the plain route and on key-auth + Redis
// rate limiting. Besides req/s and latency, CPU microseconds per request: the CPU time of every
// process of the node (primary and workers, from /proc) over the requests it served, which stays
// meaningful on a loaded machine where req/s does not.
//
// Standalone, with its own stack and the full bench's origin (nginx when present; wrk runs
// synchronously, so the origin cannot live in this process):
//   npm run build --silent && node --import tsx test/bench/workers.ts
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startStack, dpVersion, type Stack } from '../harness/stack.ts';
import { startRedis, waitFor } from '../harness/procs.ts';
import { startOrigin } from './origin.ts';

interface Load { rps: number; p50: number; p99: number }
interface Options {
  stack: Stack;
  redisUrl: string;
  load: (url: string, headers?: Record<string, string>) => Promise<Load>;
  rounds: number;
  say: (s: string) => void;
  /**
   * Routes that exist on the stack: a plain one, one with key-auth + rate-limiting (policy redis)
   * and its key, and one with rate-limiting policy local (the node's counters, held by the primary).
   */
  plain: string;
  limited: { path: string; headers: Record<string, string> };
  local: string;
}

const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** utime + stime of a process, in µs (fields 14 and 15 of /proc/<pid>/stat, after the command name). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

/** The node's processes (its primary and workers, or the one process) and requests served so far. */
async function nodeUsage(dp: GatewayProcess): Promise<{ cpuUs: number; requests: number }> {
  const st = await (await fetch(`${dp.status}/status`)).json() as { server: { total_requests: number }; workers?: { pid: number }[] };
  const pids = [dp.proc.pid!, ...(st.workers ?? []).map((w) => w.pid)];
  return { cpuUs: pids.reduce((a, p) => a + cpuUs(p), 0), requests: st.server.total_requests };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function benchWorkers(o: Options): Promise<void> {
  const nodes = new Map<number, GatewayProcess>();
  for (const workers of [1, 2]) {
    nodes.set(workers, await startGateway('data-plane', {
      env: { NATS_URL: o.stack.nats.url, REDIS_URL: o.redisUrl, PORTICO_WORKERS: String(workers), PORTICO_ACCESS_LOG: process.env.BENCH_ACCESS_LOG ?? 'off', PORTICO_LOG_LEVEL: 'warn' },
    }));
  }
  try {
    const latest = (await o.stack.A('GET', '/status')).body.configuration.version as number;
    await Promise.all([...nodes.values()].map((dp) => waitFor('dp', async () => (await dpVersion(dp)) >= latest, 30_000, 20)));
    const cases: [string, string, Record<string, string>?][] = [['plain route', o.plain], ['key-auth + rate-limiting (redis)', o.limited.path, o.limited.headers], ['rate-limiting (local)', o.local]];
    const results = new Map<string, { load: Load; usPerReq: number }[]>();
    for (const [, dp] of nodes) for (const [, path, headers] of cases) {
      const r = await fetch(dp.proxy + path, { headers });
      if (r.status !== 200) throw new Error(`${dp.proxy}${path} answered ${r.status}`);
      await o.load(dp.proxy + path, headers); // warm-up: JIT, pools
    }
    for (let round = 0; round < o.rounds; round++) {
      for (const [workers, dp] of nodes) {
        for (const [name, path, headers] of cases) {
          const before = await nodeUsage(dp);
          const load = await o.load(dp.proxy + path, headers);
          const after = await nodeUsage(dp);
          const key = `${workers}|${name}`;
          results.set(key, [...(results.get(key) ?? []), { load, usPerReq: (after.cpuUs - before.cpuUs) / Math.max(1, after.requests - before.requests) }]);
        }
      }
    }
    const med = (workers: number, name: string) => {
      const xs = results.get(`${workers}|${name}`)!;
      return { rps: median(xs.map((x) => x.load.rps)), p50: median(xs.map((x) => x.load.p50)), p99: median(xs.map((x) => x.load.p99)), us: median(xs.map((x) => x.usPerReq)) };
    };
    o.say('');
    o.say('| Portico node (PORTICO_WORKERS) | route | req/s | p50 ms | p99 ms | CPU µs/request (all processes) | × 1 worker |');
    o.say('|---|---|---:|---:|---:|---:|---:|');
    for (const workers of nodes.keys()) {
      for (const [name] of cases) {
        const m = med(workers, name);
        o.say(`| portico, ${workers} worker${workers > 1 ? 's' : ''} | ${name} | ${m.rps.toFixed(0)} | ${m.p50.toFixed(2)} | ${m.p99.toFixed(2)} | ${m.us.toFixed(0)} | ${(m.rps / med(1, name).rps).toFixed(2)} |`);
      }
    }
  } finally {
    await Promise.all([...nodes.values()].map(async (g) => { await g.kill(); g.cleanup(); }));
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const wrk = (url: string, headers: Record<string, string> = {}): Load => {
    const out = execFileSync('wrk', ['-t1', '-c50', `-d${seconds}s`, '--latency', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url], { encoding: 'utf8' });
    const ms = (label: string) => { const m = new RegExp(`\\s${label}\\s+([\\d.]+)(us|ms|s)`).exec(out)!; return Number(m[1]) * (m[2] === 'us' ? 1e-3 : m[2] === 's' ? 1e3 : 1); };
    return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]), p50: ms('50%'), p99: ms('99%') };
  };
  const origin = await startOrigin();
  const redis = await startRedis();
  const stack = await startStack({ dps: 0 });
  await stack.A('POST', '/services', { name: 'bench', url: origin.url });
  await stack.A('POST', '/services/bench/routes', { name: 'bench', paths: ['/mock'] });
  await stack.A('POST', '/consumers', { username: 'bench' });
  await stack.A('POST', '/consumers/bench/key-auth', { key: 'bench-key' });
  await stack.A('POST', '/services/bench/routes', { name: 'karl', paths: ['/karl'] });
  await stack.A('POST', '/routes/karl/plugins', { name: 'key-auth' });
  await stack.A('POST', '/routes/karl/plugins', { name: 'rate-limiting', config: { second: 1e9, policy: 'redis', algorithm: 'sliding-window' } });
  await stack.A('POST', '/services/bench/routes', { name: 'rll', paths: ['/rll'] });
  await stack.A('POST', '/routes/rll/plugins', { name: 'rate-limiting', config: { second: 1e9, policy: 'local' } });
  try {
    await benchWorkers({
      stack, redisUrl: redis.url, load: async (url, headers) => wrk(url, headers), rounds: Number(process.env.BENCH_ROUNDS ?? 3), say: console.log,
      plain: '/mock/anything', limited: { path: '/karl/anything', headers: { apikey: 'bench-key' } }, local: '/rll/anything',
    });
  } finally {
    await stack.stop();
    origin.stop();
    await redis.stop();
  }
}
