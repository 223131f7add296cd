// The benchmark's origin: nginx answering a fixed JSON document (fast and steady, so what a run
// measures is the proxy), or a Node server when nginx is absent. Used by bench.ts and workers.ts.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, portOpen, waitFor } from '../harness/procs.ts';

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** A JSON document of about `bytes` bytes with snake_case keys, as an API returns (json-transform rows). */
function jsonDoc(bytes: number): string {
  const items: unknown[] = [];
  const doc = { request_id: 'r-1', total_count: 0, items, internal_notes: 'x' };
  while (JSON.stringify(doc).length < bytes) items.push({ user_id: items.length, first_name: 'John', last_name: 'Doe', created_at: '2024-01-01T00:00:00Z', is_active: true });
  doc.total_count = items.length;
  return JSON.stringify(doc);
}
export const JSON_DOCS: Record<string, string> = { '/json1k': jsonDoc(1024), '/json100k': jsonDoc(100 * 1024) };

/** nginx as the upstream (fast and steady), or a Node server when nginx is absent. */
export async function startOrigin(): Promise<{ url: string; port: number; extraPorts: number[]; stop: () => void }> {
  const port = await freePort();
  const extraPorts = [await freePort(), await freePort()];
  if (has('nginx')) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-nginx-'));
    writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  server { listen 127.0.0.1:${port}; listen 127.0.0.1:${extraPorts[0]}; listen 127.0.0.1:${extraPorts[1]};
    location / { default_type application/json; return 200 '{"hello":"world"}'; }
    location /json1k { default_type application/json; alias ${dir}/json1k; }
    location /json100k { default_type application/json; alias ${dir}/json100k; } } }\n`);
    // nginx's workers may run as another user (root starts them as nobody): the files must be readable.
    chmodSync(dir, 0o755);
    for (const [p, body] of Object.entries(JSON_DOCS)) writeFileSync(path.join(dir, p.slice(1)), body, { mode: 0o644 });
    const p = spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    await waitFor('origin', () => portOpen(port));
    return { url: `http://127.0.0.1:${port}`, port, extraPorts, stop: () => p.kill() };
  }
  const http = await import('node:http');
  const handler = (q: import('node:http').IncomingMessage, s: import('node:http').ServerResponse) => {
    s.setHeader('content-type', 'application/json');
    s.end(JSON_DOCS[q.url ?? ''] ?? '{"hello":"world"}');
  };
  const servers = [port, ...extraPorts].map((p) => http.createServer(handler).listen(p, '127.0.0.1'));
  await waitFor('origin', () => portOpen(port));
  return { url: `http://127.0.0.1:${port}`, port, extraPorts, stop: () => servers.forEach((x) => x.close()) };
}

