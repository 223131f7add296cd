// Admin write latency with authentication on versus off (issue 10's benchmark; aim: under 1.2×).
//   node --import tsx test/bench/admin-write.ts      (after `npm run build`)
// Starts an all-in-one twice — without admins (loopback mode) and with PORTICO_ADMIN_TOKEN — and
// times PAIRS sequential `POST /services` + `DELETE /services/{id}` pairs against each, after a
// warm-up. Both run side by side and take turns in blocks of BLOCK pairs, so the load of a shared
// machine falls on both alike. Every write is audited in both (the audit log is always on), so the
// ratio is the cost of authentication and the admin's audit fields. BENCH_DATABASE=postgres runs
// each all-in-one on its own harness Postgres instead of its embedded PGlite.
import { admin, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startPostgres, type PgHandle } from '../harness/procs.ts';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 500);
const BLOCK = 50;
const WARMUP = 50;
const TOKEN = 'bench-admin-token-0123456789';
const POSTGRES = process.env.BENCH_DATABASE === 'postgres';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

interface Target { name: string; g: GatewayProcess; pg?: PgHandle; headers: Record<string, string>; n: number; posts: number[]; deletes: number[]; pairs: number[] }

async function start(name: string, withAuth: boolean): Promise<Target> {
  const pg = POSTGRES ? await startPostgres() : undefined;
  const g = await startGateway('all-in-one', { env: { PORTICO_ADMIN_TOKEN: withAuth ? TOKEN : undefined, DATABASE_URL: pg?.url } });
  return { name, g, pg, headers: withAuth ? { 'Kong-Admin-Token': TOKEN } : {}, n: 0, posts: [], deletes: [], pairs: [] };
}

async function pairs(t: Target, count: number, record: boolean): Promise<void> {
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const created = await admin(t.g.admin, 'POST', '/services', { name: `bench-${t.n++}`, url: 'http://127.0.0.1:9/x' }, t.headers);
    const t1 = performance.now();
    if (created.status !== 201) throw new Error(`${t.name}: POST /services answered ${created.status}: ${JSON.stringify(created.body)}`);
    const gone = await admin(t.g.admin, 'DELETE', `/services/${created.body.id}`, undefined, t.headers);
    const t2 = performance.now();
    if (gone.status !== 204) throw new Error(`${t.name}: DELETE answered ${gone.status}`);
    if (record) { t.posts.push(t1 - t0); t.deletes.push(t2 - t1); t.pairs.push(t2 - t0); }
  }
}

const targets = [await start('no admins (loopback)', false), await start('PORTICO_ADMIN_TOKEN', true)];
try {
  for (const t of targets) await pairs(t, WARMUP, false);
  for (let done = 0, round = 0; done < PAIRS; done += BLOCK, round++) {
    const order = round % 2 ? [...targets].reverse() : targets;
    for (const t of order) await pairs(t, Math.min(BLOCK, PAIRS - done), true);
  }
  for (const t of targets) {
    const v = await admin(t.g.admin, 'GET', '/audit/verify', undefined, t.headers);
    if (v.body?.valid !== true || v.body.entries !== 2 * t.n) throw new Error(`${t.name}: audit chain ${JSON.stringify(v.body)}`);
  }
} finally {
  for (const t of targets) { await t.g.kill(); t.g.cleanup(); await t.pg?.stop(); }
}

const ms = (x: number) => x.toFixed(2);
console.log(`# admin writes: ${PAIRS} sequential POST /services + DELETE pairs each (after ${WARMUP} warm-up, alternating blocks of ${BLOCK}), all-in-one on ${POSTGRES ? 'Postgres' : 'PGlite'}, audit log on in both`);
console.log('| admin API | POST p50 ms | DELETE p50 ms | pair p50 ms | pair p99 ms |');
console.log('|---|---:|---:|---:|---:|');
for (const t of targets) console.log(`| ${t.name} | ${ms(pct(t.posts, 0.5))} | ${ms(pct(t.deletes, 0.5))} | ${ms(pct(t.pairs, 0.5))} | ${ms(pct(t.pairs, 0.99))} |`);
const [off, on] = targets;
console.log(`ratio with token / without: p50 × ${(pct(on.pairs, 0.5) / pct(off.pairs, 0.5)).toFixed(2)}, p99 × ${(pct(on.pairs, 0.99) / pct(off.pairs, 0.99)).toFixed(2)} (aim: under 1.2×)`);
