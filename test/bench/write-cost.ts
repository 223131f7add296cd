// CPU per config write, by process, at the 10,000 routes of the apply bench and with no proxied
// load: one CP, Postgres, NATS and one DP; WRITE_COST_N one-route writes (default 40), each waited
// for until the DP applied it, 300 ms apart; each process tree's CPU (utime + stime from /proc)
// less that of the same time quiet. CP_NODE_ARGS / DP_NODE_ARGS pass node flags (e.g.
// "--cpu-prof --cpu-prof-dir=/tmp/prof").
//   npm run build && node --import tsx test/bench/write-cost.ts
import { startStack, dpVersion } from '../harness/stack.ts';
import { waitFor } from '../harness/procs.ts';
import { bigFile, cpuByRole, startChildOrigin, type Roles } from './config.ts';

const N = Number(process.env.WRITE_COST_N ?? 40);
if (!Number.isInteger(N) || N < 1) throw new Error(`WRITE_COST_N must be a whole number of writes, 1 or more (got ${JSON.stringify(process.env.WRITE_COST_N)})`);
const args = (v: string | undefined) => (v ?? '').split(' ').filter(Boolean);

const stack = await startStack({ dps: 1, cpNodeArgs: args(process.env.CP_NODE_ARGS), dpNodeArgs: args(process.env.DP_NODE_ARGS) });
const dp = stack.dps[0];
const origin = await startChildOrigin();
const roles: Roles = new Map([['CP', stack.cp.proc.pid!], ['Postgres', stack.pg.service.proc!.pid!], ['NATS', stack.nats.service.proc!.pid!], ['DP', dp.proc.pid!]].map(([role, pid]) => [role as string, { roots: [pid as number] }]));
const cpu = () => cpuByRole(roles);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
try {
  const r = await stack.A('POST', '/config', bigFile(origin.url));
  if (r.status !== 201) throw new Error(`POST /config answered ${r.status}`);
  await waitFor('dp', async () => (await dpVersion(dp)) >= r.body.version, 60_000, 50);
  const write = async () => {
    const w = await stack.A('PATCH', '/routes/r-1-1', { paths: [`/s1/r1/${Date.now()}`] });
    const v = Number(w.headers.get('x-portico-config-version'));
    if (w.status !== 200 || !v) throw new Error(`config write answered ${w.status}`);
    await waitFor('apply', async () => (await dpVersion(dp)) >= v, 30_000, 10);
  };
  for (let i = 0; i < 10; i++) { await write(); await sleep(300); } // warm-up: V8 compiles the write and apply paths
  const q0 = cpu();
  await sleep(N * 400);
  const q1 = cpu();
  const c0 = cpu();
  const ms: number[] = [];
  for (let i = 0; i < N; i++) { const t = performance.now(); await write(); ms.push(performance.now() - t); await sleep(300); }
  const c1 = cpu();
  ms.sort((a, b) => a - b);
  console.log(`${N} one-route writes at 10,000 routes, no load: write → DP applied median ${ms[N >> 1].toFixed(0)} ms; CPU per write: ${
    [...roles.keys()].map((role) => `${role} ${((c1.get(role)! - c0.get(role)! - (q1.get(role)! - q0.get(role)!)) / N).toFixed(1)} ms`).join(', ')}`);
} finally {
  origin.stop();
  await stack.cp.stop();
  await dp.stop(); // SIGTERM: a --cpu-prof profile is written at a clean exit
  await stack.stop();
}
