// Memory of the all-in-one (issue 16; aim: under 250 MB RSS idle): RSS idle after a first start on
// a fresh data dir, idle after a restart on it, and after moving 128 MB of request bodies and
// 128 MB of response bodies (1 MB each, 8 at a time) through its proxy, then once idle again.
//   node --import tsx test/bench/memory.ts      (after `npm run build`), or as part of `npm run bench`
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startGateway, admin, type GatewayProcess } from '../harness/gateway.ts';
import { freePort } from '../harness/procs.ts';

const MB = 1024 * 1024;
const IDLE_MS = 20_000;
const SETTLE_MS = 35_000;
const rssMb = (g: GatewayProcess) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${g.proc.pid}/status`, 'utf8'))![1]) / 1024);
const idle = () => new Promise((r) => setTimeout(r, IDLE_MS));

/** Sinks request bodies; answers GET with `n` bytes. */
async function bodyOrigin(): Promise<{ url: string; close: () => void }> {
  const chunk = Buffer.alloc(64 * 1024, 120);
  const server = createServer((req, res) => {
    if (req.method === 'POST') { req.resume(); req.on('end', () => res.end('ok')); return; }
    const total = Number(new URL(req.url!, 'http://x').searchParams.get('n') ?? 0);
    res.writeHead(200, { 'content-length': total });
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const c = chunk.subarray(0, Math.min(chunk.length, total - sent));
        sent += c.length;
        if (!res.write(c)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    pump();
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

async function eightAtATime(n: number, f: () => Promise<void>): Promise<void> {
  let started = 0;
  await Promise.all(Array.from({ length: 8 }, async () => { while (started < n) { started++; await f(); } }));
}

export async function benchMemory(): Promise<string[]> {
  const origin = await bodyOrigin();
  let g = await startGateway('all-in-one', { env: { PORTICO_ACCESS_LOG: 'off' } });
  try {
    await idle();
    const first = rssMb(g);
    await g.stop();
    g = await startGateway('all-in-one', { dataDir: g.dataDir, env: { PORTICO_ACCESS_LOG: 'off' } });
    await idle();
    const restarted = rssMb(g);
    await admin(g.admin, 'POST', '/services', { name: 'bodies', url: origin.url });
    await admin(g.admin, 'POST', '/services/bodies/routes', { paths: ['/bodies'] });
    const url = `${g.proxy}/bodies`;
    for (let i = 0; i < 100 && (await fetch(`${url}?n=1`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    const body = Buffer.alloc(MB, 97);
    await eightAtATime(128, async () => { await (await request(url, { method: 'POST', body })).body.dump(); });
    const afterUp = rssMb(g);
    await eightAtATime(128, async () => { const r = await request(`${url}?n=${MB}`); for await (const _ of r.body); });
    const afterDown = rssMb(g);
    // What the process gives back once the bodies are gone (malloc_trim runs every 30 s, shared/src/runtime/malloc-trim.ts).
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const settled = rssMb(g);
    return [
      `all-in-one RSS: idle after a first start ${first} MB, after a restart ${restarted} MB; after 128 × 1 MB request bodies ${afterUp} MB, then 128 × 1 MB response bodies ${afterDown} MB, ${settled} MB ${SETTLE_MS / 1000} s later`,
    ];
  } finally {
    await g.kill();
    g.cleanup();
    origin.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const l of await benchMemory()) console.log(l);
}
