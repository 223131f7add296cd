// Focused cost of the observability plugins on one built checkout: one all-in-one gateway, routes
// without a plugin, with opentelemetry at sampling 0, and with http-log to a local collector;
// alternating short autocannon runs (-c50), medians and the ratio to the plain route.
//   node test/bench/obs-ratio.mjs [checkout]      (D, R: seconds per run, rounds)
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os'; import path from 'node:path'; import net from 'node:net';
const root = path.resolve(process.argv[2] ?? '.');
const { default: ac } = await import(path.join(root, 'node_modules/autocannon/autocannon.js'));
const free = () => new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const op = await free();
const origin = spawn(process.execPath, ['-e', `require('http').createServer((q,s)=>{s.setHeader('content-type','application/json');s.end('{"hello":"world"}')}).listen(${op},'127.0.0.1')`], { stdio: 'ignore' });
// The collector (OTLP and http-log) reads and drops what it is sent. Its own process, like the
// origin's: in autocannon's process it would take autocannon's CPU and read as the plugin's cost.
const sp0 = await free();
const sink = spawn(process.execPath, ['-e', `require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('{}'))}).listen(${sp0},'127.0.0.1')`], { stdio: 'ignore' });
const sinkUrl = `http://127.0.0.1:${sp0}`;
const [ap, pp, sp] = [await free(), await free(), await free()];
const gw = spawn(process.execPath, [path.join(root, 'dist/portico.mjs')], { cwd: root, stdio: 'ignore', env: { PATH: process.env.PATH, PORTICO_ADMIN_LISTEN: `127.0.0.1:${ap}`, PORTICO_PROXY_LISTEN: `127.0.0.1:${pp}`, PORTICO_STATUS_LISTEN: `127.0.0.1:${sp}`, PORTICO_PROXY_TLS_LISTEN: 'off', PORTICO_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pb-')), PORTICO_ACCESS_LOG: 'off', PORTICO_LOG_LEVEL: 'warn' } });
for (let i = 0; i < 300; i++) { try { const r = await fetch(`http://127.0.0.1:${sp}/status/ready`); if (r.ok) break; } catch {} await sleep(100); }
const A = (m, p, b) => fetch(`http://127.0.0.1:${ap}${p}`, { method: m, headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }).then((r) => r.json());
await A('POST', '/services', { name: 's', url: `http://127.0.0.1:${op}` });
for (const [name, plugin] of [['plain', null], ['otel0', { name: 'opentelemetry', config: { traces_endpoint: `${sinkUrl}/v1/traces`, sampling_rate: 0 } }],
  ['hlog', { name: 'http-log', config: { http_endpoint: `${sinkUrl}/logs`, queue: { max_batch_size: 100 } } }]]) {
  await A('POST', '/services/s/routes', { name, paths: [`/${name}`] });
  if (plugin) await A('POST', `/routes/${name}/plugins`, plugin);
}
await sleep(1500);
const D = Number(process.env.D ?? 4), ROUNDS = Number(process.env.R ?? 5);
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const names = ['plain', 'otel0', 'hlog'];
const runs = Object.fromEntries(names.map((n) => [n, []]));
for (const n of names) await ac({ url: `http://127.0.0.1:${pp}/${n}/x`, connections: 50, duration: 2 });
for (let i = 0; i < ROUNDS; i++) {
  for (const n of i % 2 ? [...names].reverse() : names) {
    const r = await ac({ url: `http://127.0.0.1:${pp}/${n}/x`, connections: 50, duration: D });
    if (r.non2xx || r.errors) console.error('errors', n, r.non2xx, r.errors);
    runs[n].push(r.requests.average);
  }
}
const out = {};
for (const n of names) out[n] = { rps: Math.round(med(runs[n])), ratio: +(med(runs[n]) / med(runs.plain)).toFixed(3), runs: runs[n].map(Math.round) };
console.log(JSON.stringify({ load: os.loadavg().map((x) => +x.toFixed(1)), ...out }));
gw.kill(); origin.kill(); sink.kill(); process.exit(0);
