// TLS part of `npm run bench` (issue 15): keep-alive throughput over TLS, HTTP/1.1 (wrk) and HTTP/2
// (a small Node client: neither wrk nor autocannon speaks h2, and h2load is not installed), as a
// ratio of the same target's plain HTTP, and new connections per second (a full TLS handshake and
// one request each, `Connection: close`), for a Portico DP and for nginx terminating TLS with the
// same certificate in the same run (skipped, and said so, when nginx is absent).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Stack } from '../harness/stack.ts';
import { freePort, portOpen, waitFor } from '../harness/procs.ts';
import { makeCert } from '../harness/certs.ts';

const H2_SESSIONS = 5;
const H2_STREAMS_PER_SESSION = 10;

/** Requests per second over HTTP/2: `sessions` connections, each keeping `streams` requests in flight, for `seconds`. */
function h2Load(url: string, seconds: number): number {
  const code = `
    const http2 = require('node:http2');
    const u = new URL(${JSON.stringify(url)});
    let done = 0; let stop = false;
    const one = (s) => { if (stop) return; const r = s.request({ ':path': u.pathname }); r.on('response', () => {}); r.resume(); r.on('end', () => { done++; one(s); }); r.on('error', () => one(s)); r.end(); };
    const sessions = Array.from({ length: ${H2_SESSIONS} }, () => http2.connect(u.origin, { rejectUnauthorized: false }));
    for (const s of sessions) for (let i = 0; i < ${H2_STREAMS_PER_SESSION}; i++) one(s);
    setTimeout(() => { stop = true; process.stdout.write(String(done / ${seconds})); for (const s of sessions) s.destroy(); process.exit(0); }, ${seconds * 1000});`;
  return Number(execFileSync(process.execPath, ['-e', code], { encoding: 'utf8' }));
}

async function startNginxTls(upstreamPort: number, cert: string, key: string): Promise<{ plain: string; tls: string; stop: () => void } | null> {
  try { execFileSync('sh', ['-c', 'command -v nginx'], { stdio: 'ignore' }); } catch { return null; }
  const [plainPort, tlsPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-nginx-tls-'));
  writeFileSync(path.join(dir, 'cert.pem'), cert);
  writeFileSync(path.join(dir, 'key.pem'), key, { mode: 0o600 });
  writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream origin { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server { listen 127.0.0.1:${plainPort}; listen 127.0.0.1:${tlsPort} ssl http2;
    ssl_certificate ${dir}/cert.pem; ssl_certificate_key ${dir}/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
    location /mock/ { proxy_pass http://origin/; proxy_http_version 1.1; proxy_set_header Connection ""; } } }\n`);
  const p = spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  await waitFor('nginx tls', () => portOpen(tlsPort));
  return { plain: `http://127.0.0.1:${plainPort}/mock/anything`, tls: `https://127.0.0.1:${tlsPort}/mock/anything`, stop: () => p.kill() };
}

export interface TlsBenchDeps {
  stack: Stack;
  originPort: number;
  /** Keep-alive load (wrk or autocannon) against a URL: req/s. */
  load(url: string, headers?: Record<string, string>): Promise<{ rps: number }>;
  seconds: number;
  rounds: number;
  say(line: string): void;
}

export async function tlsBench(d: TlsBenchDeps): Promise<void> {
  // One certificate for both, served by Portico for every SNI (`*`) and by nginx as its only one.
  const pem = makeCert({ cn: 'bench.test', sans: ['bench.test', 'IP:127.0.0.1'], keyType: 'ec', days: 30 });
  await d.stack.write('POST', '/certificates', { ...pem, snis: ['*'] });
  const dp = d.stack.dps[0];
  const nginx = await startNginxTls(d.originPort, pem.cert, pem.key);
  const targets: { name: string; plain: string; tls: string }[] = [
    { name: 'portico DP', plain: `${dp.proxy}/mock/anything`, tls: `https://127.0.0.1:${dp.proxyTlsPort}/mock/anything` },
    ...(nginx ? [{ name: 'nginx', plain: nginx.plain, tls: nginx.tls }] : []),
  ];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows: string[] = [];
  for (const t of targets) {
    const r = { plain: [] as number[], h1: [] as number[], h2: [] as number[], handshakes: [] as number[] };
    for (let i = 0; i < d.rounds; i++) {
      r.plain.push((await d.load(t.plain)).rps);
      r.h1.push((await d.load(t.tls)).rps);
      r.h2.push(h2Load(t.tls, d.seconds));
      r.handshakes.push((await d.load(t.tls, { connection: 'close' })).rps);
    }
    const [plain, h1, h2, hs] = [median(r.plain), median(r.h1), median(r.h2), median(r.handshakes)];
    rows.push(`| ${t.name} | ${plain.toFixed(0)} | ${h1.toFixed(0)} (× ${(h1 / plain).toFixed(2)}) | ${h2.toFixed(0)} (× ${(h2 / plain).toFixed(2)}) | ${hs.toFixed(0)} |`);
  }
  d.say('');
  d.say(`TLS (same ECDSA P-256 certificate; HTTP/1.1 keep-alive by the load tool above; HTTP/2 by a Node client, ${H2_SESSIONS} sessions × ${H2_STREAMS_PER_SESSION} streams; new connections: \`Connection: close\`, one full handshake and one request each)${nginx ? '' : ' — nginx absent: Portico only'}`);
  d.say('');
  d.say('| target | plain HTTP req/s | TLS HTTP/1.1 req/s (× plain) | TLS HTTP/2 req/s (× plain) | new TLS connections/s |');
  d.say('|---|---:|---:|---:|---:|');
  for (const row of rows) d.say(row);
  nginx?.stop();
  // wrk runs synchronously: give the event loop a turn so keep-alive connections the CP closed
  // meanwhile are dropped from the pool before the next admin call (else: "other side closed").
  await new Promise((r) => setTimeout(r, 200));
}
