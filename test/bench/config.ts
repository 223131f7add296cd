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
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import os from 'node:os';
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
export async function startChildOrigin(): Promise<{ url: string; pid: number; stop: () => void }> {
  const port = await freePort();
  const code = `require('node:http').createServer((q, s) => { s.setHeader('content-type', 'application/json'); s.end('{"hello":"world"}'); }).listen(${port}, '127.0.0.1')`;
  const p = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await waitFor('origin', () => portOpen(port));
  return { url: `http://127.0.0.1:${port}`, pid: p.pid!, stop: () => p.kill() };
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
    // One node under load: the other two DPs stand for other machines, which would not share its cores.
    await Promise.all(stack.dps.slice(1).map((dp) => dp.stop()));
    lines.push(...await benchApplyUnderLoad(stack, origin?.pid));
  } finally {
    origin?.stop();
    await stack.stop();
  }
  return lines;
}

const RATE_PER_S = 200;
/** Apply under load: windows of this many seconds, idle and writing in turn, … */
const WINDOW_S = 3;
/** … this many of each. */
const WINDOWS = Number(process.env.APPLY_WINDOWS ?? 8);
if (!Number.isInteger(WINDOWS) || WINDOWS < 1) throw new Error(`APPLY_WINDOWS must be a whole number of windows, 1 or more (got ${JSON.stringify(process.env.APPLY_WINDOWS)})`);
/** Seconds of load with a write each second before the windows (not measured). */
const WARMUP_S = 15;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/**
 * Requests at a fixed rate (not as fast as possible: queueing would hide a stall) for `seconds`,
 * from a thread of their own: `started` (performance.now() of this thread when request 0 was due)
 * once they start, and `latencies` in ms by request, request i due i / RATE_PER_S s after it.
 */
function fixedRate(url: string, seconds: number): { started: Promise<number>; latencies: Promise<number[]> } {
  const worker = new Worker(new URL('./fixed-rate.mjs', import.meta.url), { workerData: { url, ratePerS: RATE_PER_S, seconds } });
  const started = new Promise<number>((resolve, reject) => {
    worker.once('message', (m: { started: number }) => resolve(m.started - performance.timeOrigin));
    worker.once('error', reject);
  });
  const latencies = started.then(() => new Promise<number[]>((resolve, reject) => {
    worker.once('message', (l: number[]) => { resolve(l); void worker.terminate(); });
    worker.once('error', reject);
  }));
  return { started, latencies };
}

const HZ = 100;
/** Each process's parent, from /proc. */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { const st = readFileSync(`/proc/${d}/stat`, 'utf8'); out.set(Number(d), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1])); } catch { /* gone */ }
  }
  return out;
}
/** `root` and every process under it (Postgres: the postmaster, its backends and workers). */
function processTree(root: number, parentOf = parents()): number[] {
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parentOf) if (ppid === tree[i]) tree.push(pid);
  return tree;
}
/** Processes by role: trees rooted at these pids, or (`own`) the pids alone (the bench: its children are the other roles). */
export type Roles = Map<string, { roots: number[]; own?: boolean }>;

/** CPU time (ms) used so far by each role's processes (utime + stime, with cutime + cstime for children they reaped, from /proc), by role. */
export function cpuByRole(roles: Roles): Map<string, number> {
  const out = new Map<string, number>();
  const parentOf = parents();
  for (const [role, { roots, own }] of roles) {
    let ms = 0;
    for (const pid of own ? roots : roots.flatMap((r) => processTree(r, parentOf))) {
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        // Its own time, and that of children it reaped (a Postgres backend that ended mid-run).
        ms += ((Number(f[11]) + Number(f[12]) + (own ? 0 : Number(f[13]) + Number(f[14]))) * 1000) / HZ;
      } catch { /* gone */ }
    }
    out.set(role, ms);
  }
  return out;
}

/**
 * Puts processes (and those under them) on SCHED_IDLE, confined to the last core: they run only
 * when a core has nothing else to do. In production the CP, Postgres and NATS run on machines of
 * their own; on the bench's two shared cores this is how a DP gets its cores to itself. The core
 * confinement is because SCHED_IDLE alone did not do it on this machine's kernel ("Dynamic Preempt:
 * none", HZ=250): a process inside a system call keeps its core until it returns, and perf sched
 * showed the DP's main thread runnable for 3-4 ms while CP threads ran on both cores. Null when
 * `chrt` is missing or refused; `confined` false when `taskset` is (the line says so).
 */
function schedIdle(roots: number[]): { confined: boolean } | null {
  const parentOf = parents();
  const refused = (r: ReturnType<typeof spawnSync>, pid: number) => r.error !== undefined || (r.status !== 0 && existsSync(`/proc/${pid}`));
  let confined = true;
  for (const pid of roots.flatMap((r) => processTree(r, parentOf))) {
    if (refused(spawnSync('chrt', ['--all-tasks', '--idle', '--pid', '0', String(pid)]), pid)) return null;
    if (refused(spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', String(os.cpus().length - 1), String(pid)]), pid)) confined = false;
  }
  return { confined };
}

/** One thread's scheduler counters (/proc/…/task/…/schedstat): ns on a core, ns runnable but waiting for one. */
interface ThreadStat { tid: number; name: string; runNs: number; waitNs: number }
function threadStats(pid: number): ThreadStat[] {
  const out: ThreadStat[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [runNs, waitNs] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      out.push({ tid: Number(tid), name: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), runNs, waitNs });
    } catch { /* ended */ }
  }
  return out;
}
/** Per second of idle and of writing windows: the DP main thread's CPU and wait for a core, and the CPU of its other threads (ms). */
interface ThreadsByWindow { idle: { main: number; mainWait: number; others: number }; busy: { main: number; mainWait: number; others: number } }
function threadsByWindow(edges: ThreadStat[][], pid: number): ThreadsByWindow {
  const sum = () => ({ main: 0, mainWait: 0, others: 0 });
  const out = { idle: sum(), busy: sum() };
  for (let k = 0; k + 1 < edges.length; k++) {
    const into = k % 2 === 0 ? out.idle : out.busy;
    const before = new Map(edges[k].map((t) => [t.tid, t]));
    for (const t of edges[k + 1]) {
      const b = before.get(t.tid) ?? { runNs: 0, waitNs: 0 };
      if (t.tid === pid) { into.main += t.runNs - b.runNs; into.mainWait += t.waitNs - b.waitNs; } else into.others += t.runNs - b.runNs;
    }
  }
  if (process.env.APPLY_THREADS === '1') {
    const byName = new Map<string, [number, number]>();
    for (let k = 0; k + 1 < edges.length; k++) {
      const before = new Map(edges[k].map((t) => [t.tid, t]));
      for (const t of edges[k + 1]) {
        const key = t.tid === pid ? 'main' : `${t.name}:${t.tid}`;
        const v = byName.get(key) ?? [0, 0];
        v[k % 2] += (t.runNs - (before.get(t.tid)?.runNs ?? 0)) / 1e6 / (WINDOWS * WINDOW_S);
        byName.set(key, v);
      }
    }
    console.log([...byName].map(([n, [i, b]]) => `${n} ${i.toFixed(1)}/${b.toFixed(1)}`).join('; '));
  }
  const perS = (x: number) => x / 1e6 / (WINDOWS * WINDOW_S);
  for (const w of [out.idle, out.busy]) { w.main = perS(w.main); w.mainWait = perS(w.mainWait); w.others = perS(w.others); }
  return out;
}

interface LoadRun { idle: number[]; busy: number[]; early: number[]; late: number[]; slowByPhase: number[]; applies: { ms: number; decode: number; compile: number; loopMax: number }[]; cpu: Map<string, number>; rssBusy: number; threads: ThreadsByWindow }

/**
 * Proxied requests at a fixed rate for 2 × WINDOWS windows of WINDOW_S seconds, idle and writing in
 * turn (a config write at the start of each second of a writing window): the two kinds of window
 * share whatever else the machine does, so their p99s compare the writes and nothing else.
 */
async function idleThenWriting(stack: Stack, url: string, roles: Roles): Promise<LoadRun> {
  const dp = stack.dps[0];
  const sleepUntil = (at: number) => new Promise((res) => setTimeout(res, Math.max(0, at - performance.now())));
  const write = async (sentAt: number) => {
    const r = await stack.A('PATCH', '/routes/r-1-1', { paths: [`/s1/r1/${sentAt}`] });
    const v = Number(r.headers.get('x-portico-config-version'));
    if (r.status !== 200 || !v) throw new Error(`config write answered ${r.status} (version ${r.headers.get('x-portico-config-version')}): ${JSON.stringify(r.body).slice(0, 300)}`);
    return v;
  };
  // Warm-up, not measured: the same load with a write each second, so that the windows compare a
  // node in its steady state, its proxy and apply paths optimized by V8, rather than V8 compiling
  // them. Without it V8 compiled ~350 functions during the windows (~0.5 s of its helper threads,
  // which run at the proxy's priority: the decoder's functions, recompiled on each of the first
  // writes, and the proxy's); with it ~50 (tmpbench trace, --trace-opt, 2026-12-01).
  const warm = fixedRate(url, WARMUP_S);
  const warmFrom = await warm.started;
  let warmVersion = 0;
  for (let s = 0; s < WARMUP_S; s++) {
    await sleepUntil(warmFrom + 1000 * s);
    warmVersion = await write(Date.now());
  }
  await warm.latencies;
  await waitFor('warm-up applied', async () => (await dpVersion(dp)) >= warmVersion, 30_000, 200);
  const load = fixedRate(url, 2 * WINDOWS * WINDOW_S);
  const started = await load.started;
  const applies: LoadRun['applies'] = [];
  const cpu0 = cpuByRole(roles);
  let rssBusy = 0;
  // The DP's threads at each window's edges: the CPU each used, and how long its main thread
  // waited for a core, in idle and in writing windows.
  const edges: ThreadStat[][] = [];
  for (let k = 0; k <= 2 * WINDOWS; k++) {
    await sleepUntil(started + 1000 * WINDOW_S * k);
    edges.push(threadStats(dp.proc.pid!));
    if (k % 2 === 0 || k === 2 * WINDOWS) continue;
    for (let s = 0; s < WINDOW_S; s++) {
      // Writing windows are the odd ones: seconds WINDOW_S × k + s of the load.
      await sleepUntil(started + 1000 * (WINDOW_S * k + s));
      const sentAt = Date.now();
      const v = await write(sentAt);
      // The apply time is the DP's own swap time (applied_at, same clock) less when the write was
      // sent, so /status is read only every 200 ms: a tight poll is load on the DP (and this
      // process) in exactly the moments measured.
      await waitFor('apply', async () => (await dpVersion(dp)) >= v, 30_000, 200);
      const c = ((await (await fetch(`${dp.status}/status`)).json()) as any).configuration;
      const a = c.last_apply;
      applies.push({ ms: c.applied_at - sentAt, decode: a.decode_ms, compile: a.compile_ms, loopMax: a.loop_delay_max_ms });
      rssBusy = Math.max(rssBusy, rssMb(dp.proc.pid!));
    }
  }
  const latencies = await load.latencies;
  const cpu1 = cpuByRole(roles);
  const writing = (i: number) => Math.floor(i / RATE_PER_S / WINDOW_S) % 2 === 1;
  const idle = latencies.filter((_, i) => !writing(i));
  const busy = latencies.filter((_, i) => writing(i));
  // Writing-window requests by when they were due: in the first 300 ms after a write (while it
  // applies) or later in its second.
  const early = latencies.filter((_, i) => writing(i) && i % RATE_PER_S < 0.3 * RATE_PER_S);
  const late = latencies.filter((_, i) => writing(i) && i % RATE_PER_S >= 0.3 * RATE_PER_S);
  // Writing-window requests slower than the idle p99, by when they were due after the write (50 ms buckets over the second).
  const idleP99 = pct(idle, 0.99);
  const slowByPhase = new Array<number>(20).fill(0);
  latencies.forEach((ms, i) => { if (writing(i) && ms > idleP99) slowByPhase[Math.floor(((i % RATE_PER_S) / RATE_PER_S) * 20)]++; });
  const cpu = new Map([...cpu1].map(([role, ms]) => [role, (ms - (cpu0.get(role) ?? 0)) / Math.max(1, applies.length)]));
  return { idle, busy, early, late, slowByPhase, applies, cpu, rssBusy, threads: threadsByWindow(edges, dp.proc.pid!) };
}

function describeRun(title: string, r: LoadRun): string[] {
  const p99 = (xs: number[]) => pct(xs, 0.99);
  const med = (f: (a: LoadRun['applies'][number]) => number) => pct(r.applies.map(f), 0.5);
  const max = (f: (a: LoadRun['applies'][number]) => number) => Math.max(...r.applies.map(f));
  return [
    `proxy p99 at 10,000 routes, ${RATE_PER_S} req/s, ${title}; ${WINDOWS} idle and ${WINDOWS} writing windows of ${WINDOW_S} s in turn: idle ${p99(r.idle).toFixed(2)} ms, with a config write every second ${p99(r.busy).toFixed(2)} ms (× ${(p99(r.busy) / p99(r.idle)).toFixed(2)}); max ${Math.max(...r.idle).toFixed(1)} / ${Math.max(...r.busy).toFixed(1)} ms`,
    `  ${r.applies.length} writes, write → DP applied: median ${med((a) => a.ms).toFixed(0)} ms, max ${max((a) => a.ms).toFixed(0)} ms; DP decode (worker thread) median ${med((a) => a.decode)} ms, compile (sliced) median ${med((a) => a.compile)} ms; `
      + `event loop held at most ${med((a) => a.loopMax)} ms per apply (median of the per-apply max), ${max((a) => a.loopMax)} ms worst`,
    `  writing windows: p99 ${p99(r.early).toFixed(2)} ms for requests due in the 300 ms after a write, ${p99(r.late).toFixed(2)} ms for the rest of its second; `
      + `requests slower than the idle p99 by when due after the write, per 50 ms: ${r.slowByPhase.join(' ')}`,
    `  DP threads, ms per second idle / writing: main thread on a core ${r.threads.idle.main.toFixed(0)} / ${r.threads.busy.main.toFixed(0)}, `
      + `waiting for one ${r.threads.idle.mainWait.toFixed(1)} / ${r.threads.busy.mainWait.toFixed(1)}; other threads on a core ${r.threads.idle.others.toFixed(0)} / ${r.threads.busy.others.toFixed(0)}`,
    `  CPU over the run, ms per write: ${[...r.cpu].map(([role, ms]) => `${role} ${ms.toFixed(0)}`).join(', ')} (the proxied load included; ${r.applies.length} writes in ${2 * WINDOWS * WINDOW_S} s)`,
  ];
}

/**
 * At the 10,000 routes the stack holds: proxy p99 idle and under a config write per second, twice.
 * First with every process sharing the two cores as deployed (Postgres and NATS at the proxy's
 * priority, the CP below it: PORTICO_CP_NICE); then with the CP, Postgres and
 * NATS on SCHED_IDLE and confined to one core (schedIdle), standing in for the machines of their
 * own they have in production (the DP, the origin and the load keep the cores). `originPid`: the origin's process, for its CPU.
 */
export async function benchApplyUnderLoad(stack: Stack, originPid?: number): Promise<string[]> {
  const dp = stack.dps[0];
  const url = `${dp.proxy}/s50/r50`;
  if ((await fetch(url)).status !== 200) throw new Error(`${url} is not served`);
  const roles: Roles = new Map<string, { roots: number[]; own?: boolean }>([
    ['bench (load, writes, polls)', { roots: [process.pid], own: true }], ['CP', { roots: [stack.cp.proc.pid!] }], ['Postgres', { roots: [stack.pg.service.proc!.pid!] }],
    ['NATS', { roots: [stack.nats.service.proc!.pid!] }], ['DP', { roots: [dp.proc.pid!] }], ...(originPid ? [['origin', { roots: [originPid] }] as [string, { roots: number[]; own?: boolean }]] : []),
  ]);
  // APPLY_QUICK=1 (a quicker look while working on this): no wait for the quiet RSS; APPLY_SHARED=0: no pass at one priority.
  const quick = process.env.APPLY_QUICK === '1';
  const lines: string[] = [];
  let rssBusy = 0;
  if (process.env.APPLY_SHARED !== '0') {
    const shared = await idleThenWriting(stack, url, roles);
    lines.push(...describeRun('every process sharing the 2 cores (the CP at its default nice 10, PORTICO_CP_NICE)', shared));
    rssBusy = shared.rssBusy;
  }
  const idlePass = schedIdle([stack.cp.proc.pid!, stack.pg.service.proc!.pid!, stack.nats.service.proc!.pid!]);
  if (idlePass) {
    const run = await idleThenWriting(stack, url, roles);
    rssBusy = Math.max(rssBusy, run.rssBusy);
    lines.push(...describeRun(`CP, Postgres and NATS on SCHED_IDLE${idlePass.confined ? ` on core ${os.cpus().length - 1} only` : ' (taskset missing: not confined to one core)'} (as on machines of their own)`, run));
  } else {
    lines.push('  (CP, Postgres and NATS on SCHED_IDLE: skipped, chrt is missing or refused)');
  }
  if (quick) return lines;
  // The decoder's thread stops after 30 s without work (sync/decoder.ts): the RSS a quiet node keeps.
  await new Promise((r) => setTimeout(r, 32_000));
  lines.push(`  DP RSS at 10,000 routes: ${rssBusy.toFixed(0)} MB while applying a write a second, ${rssMb(dp.proc.pid!).toFixed(0)} MB 30 s after the last (decoder thread stopped)`);
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const l of await benchDeclarative()) console.log(l);
}
