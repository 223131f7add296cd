// Requests at a fixed rate on a thread of its own (test/bench/config.ts): latency is measured from
// when each request was due (no coordinated omission), and nothing else the bench does (admin
// writes, status polls) delays the timer that sends them or the callbacks that time them. Posts
// `{ started }` (epoch ms, when request 0 was due) as it starts, then the latencies in ms indexed
// by request (request i was due i / ratePerS seconds after `started`).
import { parentPort, workerData } from 'node:worker_threads';
import { Pool } from 'undici';

const { url, ratePerS, seconds } = workerData;
const u = new URL(url);
const pool = new Pool(u.origin, { connections: 20 });
const count = ratePerS * seconds;
const latencies = new Array(count).fill(0);
const inFlight = [];
const start = performance.now();
parentPort.postMessage({ started: performance.timeOrigin + start });
for (let i = 0; i < count; i++) {
  const due = start + (i * 1000) / ratePerS;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  inFlight.push(pool.request({ path: u.pathname, method: 'GET' }).then(async (r) => { await r.body.dump(); latencies[i] = performance.now() - due; }));
}
await Promise.all(inFlight);
await pool.close();
parentPort.postMessage(latencies);
