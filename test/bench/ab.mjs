// A/B proxy throughput of two checkouts side by side: the same origin, the same machine load,
// alternating short autocannon runs (-c50), medians reported. Each checkout must be built
// (`npm ci && npm run build`); the second one's node_modules provides autocannon.
//   node test/bench/ab.mjs <baseline checkout> <candidate checkout>      (AL=on: access log on; D, R: seconds, rounds)
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os'; import path from 'node:path'; import net from 'node:net';
const [A, B] = process.argv.slice(2);
const { default: ac } = await import(path.join(B, 'node_modules/autocannon/autocannon.js'));
const free = () => new Promise((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const op = await free();
const origin = spawn(process.execPath, ['-e', `require('http').createServer((q,s)=>{s.setHeader('content-type','application/json');s.end('{"hello":"world"}')}).listen(${op},'127.0.0.1')`], { stdio: 'ignore' });
async function gateway(root) {
  const [ap, pp, sp] = [await free(), await free(), await free()];
  const gw = spawn(process.execPath, [(await import('node:fs')).existsSync(path.join(root, 'dist/portico.mjs')) ? path.join(root, 'dist/portico.mjs') : path.join(root, 'control-plane/dist/all-in-one.mjs')], { cwd: root, stdio: 'ignore', env: { PATH: process.env.PATH, PORTICO_ADMIN_LISTEN: `127.0.0.1:${ap}`, PORTICO_PROXY_LISTEN: `127.0.0.1:${pp}`, PORTICO_STATUS_LISTEN: `127.0.0.1:${sp}`, PORTICO_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'pb-')), PORTICO_ACCESS_LOG: process.env.AL ?? 'off', PORTICO_LOG_LEVEL: 'warn' } });
  for (let i = 0; i < 300; i++) { try { const r = await fetch(`http://127.0.0.1:${sp}/status/ready`); if (r.ok) break; } catch {} await sleep(100); }
  const Ad = (m, p, b) => fetch(`http://127.0.0.1:${ap}${p}`, { method: m, headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }).then((r) => r.json());
  await Ad('POST', '/services', { name: 's', url: `http://127.0.0.1:${op}` });
  await Ad('POST', '/services/s/routes', { name: 'r', paths: ['/mock'] });
  await Ad('POST', '/services/s/routes', { name: 'k', paths: ['/key'] });
  await Ad('POST', '/routes/k/plugins', { name: 'key-auth' });
  await Ad('POST', '/consumers', { username: 'u' });
  await Ad('POST', '/consumers/u/key-auth', { key: 'secretkey' });
  return { gw, base: `http://127.0.0.1:${pp}` };
}
const ga = await gateway(A), gb = await gateway(B);
await sleep(1500);
const D = Number(process.env.D ?? 4), ROUNDS = Number(process.env.R ?? 5);
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const res = {};
for (const [name, p, headers] of [['plain', '/mock/x', {}], ['key-auth', '/key/x', { apikey: 'secretkey' }]]) {
  const ra = [], rb = [];
  for (const g of [ga, gb]) await ac({ url: g.base + p, connections: 50, duration: 2, headers });
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 ? [[gb, rb], [ga, ra]] : [[ga, ra], [gb, rb]];
    for (const [g, out] of order) { const r = await ac({ url: g.base + p, connections: 50, duration: D, headers }); out.push(r.requests.average); if (r.non2xx || r.errors) console.error('errors', name, r.non2xx, r.errors); }
  }
  res[name] = { A: Math.round(med(ra)), B: Math.round(med(rb)), ratio: +(med(rb) / med(ra)).toFixed(3), runsA: ra.map(Math.round), runsB: rb.map(Math.round) };
}
console.log(JSON.stringify(res, null, 1));
ga.gw.kill(); gb.gw.kill(); origin.kill(); process.exit(0);
