// Declarative config at 10,000 routes (issue 12's benchmark; aims: under 3 s, one version, every
// DP applied), on a CP with Postgres and three DPs over NATS:
//   - POST /config of a 10,000-route file (100 services × 100 routes): answer time, and time until
//     all three DPs run the new version; how many versions it made;
//   - `portico config sync` of the same file into an emptied gateway, as a user runs it (a new
//     process: read, substitute, send, apply), then again with nothing to change.
//   node --import tsx test/bench/config.ts      (after `npm run build`), or as part of `npm run bench`
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startStack, dpVersion } from '../harness/stack.ts';
import { tmpRoot, waitFor } from '../harness/procs.ts';
import { ROOT } from '../harness/gateway.ts';

const SERVICES = 100;
const ROUTES_PER_SERVICE = 100;

function bigFile(upstream: string): Record<string, unknown> {
  return {
    _format_version: '3.0',
    services: Array.from({ length: SERVICES }, (_, s) => ({
      name: `svc-${s}`,
      url: upstream,
      routes: Array.from({ length: ROUTES_PER_SERVICE }, (_, r) => ({ name: `r-${s}-${r}`, paths: [`/s${s}/r${r}`] })),
    })),
  };
}

export async function benchDeclarative(): Promise<string[]> {
  const lines: string[] = [];
  const stack = await startStack({ dps: 3 });
  try {
    const dir = tmpRoot();
    const doc = bigFile(stack.upstream.url);
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
  } finally {
    await stack.stop();
  }
  return lines;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const l of await benchDeclarative()) console.log(l);
}
