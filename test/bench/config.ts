// Declarative config at 10,000 routes (issue 12's benchmark; aims: under 3 s, one version, every
// DP applied), on a CP with Postgres and three DPs over NATS:
//   - POST /config of a 10,000-route file (100 services × 100 routes): answer time, and time until
//     all three DPs run the new version; how many versions it made;
//   - `portico config sync` of the same file into an emptied gateway, as a user runs it (a new
//     process: read, substitute, send, apply), then again with nothing to change;
//   - then, at those 10,000 routes (issue 16, "no stall on apply"): p99 of proxied requests at a
//     fixed rate, idle and while a config write lands every second; per write, the apply time and
//     the longest the DP's event loop was held (its /status last_apply); the DP's RSS.
//   node --import tsx test/bench/config.ts      (after `npm run build`), or as part of `npm run bench`
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { stringify } from 'yaml';
import { startStack, dpVersion, type Stack } from '../harness/stack.ts';
import { freePort, portOpen, tmpRoot, waitFor } from '../harness/procs.ts';
import { ROOT } from '../harness/gateway.ts';

const SERVICES = 100;
const ROUTES_PER_SERVICE = 100;

export function bigFile(upstream: string): Record<string, unknown> {
  return {
    _format_version: '3.0',
    services: Array.from({ length: SERVICES }, (_, s) => ({
      name: `svc-${s}`,
      url: upstream,
      routes: Array.from({ length: ROUTES_PER_SERVICE }, (_, r) => ({ name: `r-${s}-${r}`, paths: [`/s${s}/r${r}`] })),
    })),
  };
}

/**
 * An origin in a process of its own: the harness's upstream runs in this process, whose event
 * loop also sends the admin writes and polls, and would add their delays to the proxy's latency.
 */
export async function startChildOrigin(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const code = `require('node:http').createServer((q, s) => { s.setHeader('content-type', 'application/json'); s.end('{"hello":"world"}'); }).listen(${port}, '127.0.0.1')`;
  const p = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await waitFor('origin', () => portOpen(port));
  return { url: `http://127.0.0.1:${port}`, stop: () => p.kill() };
}

/** `originUrl`: where the 10,000 routes go (default: an origin process started here). */
export async function benchDeclarative(originUrl?: string): Promise<string[]> {
  const lines: string[] = [];
  const stack = await startStack({ dps: 3 });
  const origin = originUrl ? null : await startChildOrigin();
  try {
    const dir = tmpRoot();
    const doc = bigFile(originUrl ?? origin!.url);
    const file = path.join(dir, 'kong.yml');
    writeFileSync(file, stringify(doc));
    const versionsBefore = (await stack.A('GET', '/config/versions')).body.data.length as number;
    const allApplied = (v: number) => Promise.all(stack.dps.map((dp) => waitFor('dp', async () => (await dpVersion(dp)) >= v, 60_000, 5)));

    let t0 = performance.now();
    const r = await stack.A('POST', '/config', doc);
    const answered = performance.now() - t0;
    if (r.status !== 201) throw new Error(`POST /config answered ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
    await allApplied(r.body.version);
    const applied = performance.now() - t0;
    const versionsAfter = (await stack.A('GET', '/config/versions')).body.data.length as number;
    lines.push(`POST /config, ${SERVICES * ROUTES_PER_SERVICE} routes (${SERVICES} services): answered ${answered.toFixed(0)} ms, all 3 DPs applied ${applied.toFixed(0)} ms; ${versionsAfter - versionsBefore} new version(s)`);

    t0 = performance.now();
    const again = await stack.A('POST', '/config', doc);
    lines.push(`POST /config of the same file again: ${(performance.now() - t0).toFixed(0)} ms (${again.body.summary}, version ${again.body.version})`);

    const empty = await stack.A('POST', '/config', { _format_version: '3.0' });
    await allApplied(empty.body.version);
    const cli = (args: string[]) => spawnSync(process.execPath, ['--import=tsx', 'portico.ts', 'config', ...args, '--admin-url', stack.cp.admin], { cwd: ROOT, encoding: 'utf8' });
    t0 = performance.now();
    const sync = cli(['sync', file]);
    const synced = performance.now() - t0;
    if (sync.status !== 0) throw new Error(`portico config sync failed: ${sync.stderr}`);
    const v = Number(/config version (\d+)/.exec(sync.stdout)![1]);
    await allApplied(v);
    const syncApplied = performance.now() - t0;
    lines.push(`portico config sync, ${SERVICES * ROUTES_PER_SERVICE} routes into an empty gateway (new process, YAML file): done ${synced.toFixed(0)} ms, all 3 DPs applied ${syncApplied.toFixed(0)} ms`);
    t0 = performance.now();
    const noop = cli(['sync', file]);
    lines.push(`portico config sync with nothing to change: ${(performance.now() - t0).toFixed(0)} ms (${noop.stdout.trim()})`);
    lines.push(...await benchApplyUnderLoad(stack));
  } finally {
    origin?.stop();
    await stack.stop();
  }
  return lines;
}

const RATE_PER_S = 200;
const LOAD_S = 10;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Requests at a fixed rate (not as fast as possible: queueing would hide a stall) for `seconds`, from a thread of their own; latencies in ms. */
function fixedRate(url: string, seconds: number): Promise<number[]> {
  const worker = new Worker(new URL('./fixed-rate.mjs', import.meta.url), { workerData: { url, ratePerS: RATE_PER_S, seconds } });
  return new Promise((resolve, reject) => {
    worker.once('message', (latencies: number[]) => { resolve(latencies); void worker.terminate(); });
    worker.once('error', reject);
  });
}

const HZ = 100;
/** CPU time (ms) used so far by the processes of this bench, by role (from /proc: utime + stime). */
function cpuByRole(): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd: string, stat: string;
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '); stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
    const role = Number(pid) === process.pid ? 'bench (load, writes, polls)' : cmd.includes('control-plane/dist') ? 'CP' : cmd.includes('data-plane/dist') ? 'DP'
      : cmd.includes('portico-test') && cmd.includes('postgres') ? 'Postgres' : cmd.includes('nats-server') && cmd.includes('portico-test') ? 'NATS' : cmd.includes('createServer') ? 'origin' : null;
    if (!role) continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(role, (out.get(role) ?? 0) + ((Number(f[11]) + Number(f[12])) * 1000) / HZ);
  }
  return out;
}

/** At the 10,000 routes the stack holds: proxy p99 idle and under a config write per second. */
export async function benchApplyUnderLoad(stack: Stack): Promise<string[]> {
  const dp = stack.dps[0];
  const url = `${dp.proxy}/s50/r50`;
  if ((await fetch(url)).status !== 200) throw new Error(`${url} is not served`);
  await fixedRate(url, 2);
  const idle = await fixedRate(url, LOAD_S);
  let writing = true;
  const applies: { ms: number; decode: number; compile: number; loopMax: number }[] = [];
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const t0 = performance.now();
      const r = await stack.A('PATCH', '/routes/r-1-1', { paths: [`/s1/r1/${i}`] });
      const v = Number(r.headers.get('x-portico-config-version'));
      // Polled every 25 ms: the poll is load on the DP, and on this process.
      await waitFor('apply', async () => (await dpVersion(dp)) >= v, 30_000, 25);
      const ms = performance.now() - t0;
      const a = ((await (await fetch(`${dp.status}/status`)).json()) as any).configuration.last_apply;
      applies.push({ ms, decode: a.decode_ms, compile: a.compile_ms, loopMax: a.loop_delay_max_ms });
      await new Promise((res) => setTimeout(res, Math.max(0, 1000 - (performance.now() - t0))));
    }
  })();
  const cpu0 = cpuByRole();
  const busy = await fixedRate(url, LOAD_S);
  const cpu1 = cpuByRole();
  const rssBusy = rssMb(dp.proc.pid!);
  writing = false;
  await writer;
  const p99 = (xs: number[]) => pct(xs, 0.99);
  const med = (f: (a: (typeof applies)[number]) => number) => pct(applies.map(f), 0.5);
  const max = (f: (a: (typeof applies)[number]) => number) => Math.max(...applies.map(f));
  // The decoder's thread stops after 30 s without work (sync/decoder.ts): the RSS a quiet node keeps.
  await new Promise((r) => setTimeout(r, 32_000));
  return [
    `proxy p99 at 10,000 routes, ${RATE_PER_S} req/s for ${LOAD_S} s: idle ${p99(idle).toFixed(2)} ms, with a config write every second ${p99(busy).toFixed(2)} ms (× ${(p99(busy) / p99(idle)).toFixed(2)}); max ${Math.max(...idle).toFixed(1)} / ${Math.max(...busy).toFixed(1)} ms`,
    `  ${applies.length} writes, write → DP applied: median ${med((a) => a.ms).toFixed(0)} ms, max ${max((a) => a.ms).toFixed(0)} ms; DP decode (worker thread) median ${med((a) => a.decode)} ms, compile (sliced) median ${med((a) => a.compile)} ms; `
      + `event loop held at most ${med((a) => a.loopMax)} ms per apply (median of the per-apply max), ${max((a) => a.loopMax)} ms worst`,
    `  CPU while writing, ms per write: ${[...cpu1].map(([role, ms]) => `${role} ${((ms - (cpu0.get(role) ?? 0)) / Math.max(1, applies.length)).toFixed(0)}`).join(', ')} (the proxied load included; ${applies.length} writes in ${LOAD_S} s)`,
    `  DP RSS at 10,000 routes: ${rssBusy.toFixed(0)} MB while applying a write a second, ${rssMb(dp.proc.pid!).toFixed(0)} MB 30 s after the last (decoder thread stopped)`,
  ];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const l of await benchDeclarative()) console.log(l);
}
