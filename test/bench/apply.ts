// Apply under load alone (issue 16, "no stall on apply"): one CP, one DP, 10,000 routes, proxy p99
// idle and with a config write every second. APPLY_DP_NODE_ARGS passes node flags to the DP
// (e.g. "--trace-gc --cpu-prof --cpu-prof-dir=/tmp/prof"), APPLY_CP_NODE_ARGS to the CP, APPLY_DP_LOG a file for
// the DP's output.
//   node --import tsx test/bench/apply.ts      (after `npm run build`)
import { createWriteStream } from 'node:fs';
import { startStack, dpVersion } from '../harness/stack.ts';
import { waitFor } from '../harness/procs.ts';
import { benchApplyUnderLoad, bigFile, startChildOrigin } from './config.ts';

// APPLY_DP_ENV="NAME=value,…": variables for the DP.
const dpEnv = Object.fromEntries((process.env.APPLY_DP_ENV ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
const stack = await startStack({ dps: 1, dpEnv, dpNodeArgs: process.env.APPLY_DP_NODE_ARGS?.split(' ').filter(Boolean), cpNodeArgs: process.env.APPLY_CP_NODE_ARGS?.split(' ').filter(Boolean) });
const dp = stack.dps[0];
const origin = await startChildOrigin();
if (process.env.APPLY_DP_LOG) {
  const out = createWriteStream(process.env.APPLY_DP_LOG);
  dp.proc.stdout!.pipe(out);
  dp.proc.stderr!.on('data', (d) => out.write(d));
}
try {
  const r = await stack.A('POST', '/config', bigFile(origin.url));
  if (r.status !== 201) throw new Error(`POST /config answered ${r.status}`);
  await waitFor('dp', async () => (await dpVersion(dp)) >= r.body.version, 60_000, 50);
  for (const l of await benchApplyUnderLoad(stack, origin.pid)) console.log(l);
} finally {
  origin.stop();
  await stack.cp.stop();
  await dp.stop(); // SIGTERM: a --cpu-prof profile is written at a clean exit
  await stack.stop();
}
