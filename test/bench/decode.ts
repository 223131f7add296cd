// The DP decoder's work per one-route write at 10,000 routes, in this process: what its thread does
// (decode-protocol.ts decodeRequest: unpack the members, match the blocks it holds, key and
// validate the rest, check the hash, diff against the held keys), without the thread around it.
// DECODE_N writes (default 200), each a new route path, sealed by a SnapshotWriter as the CP does;
// only the decodes are timed. DECODE_PROFILE=file writes a CPU profile of the decodes.
//   node --import tsx test/bench/decode.ts
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { canonicalConfig, emptyConfig, routeSchema, serviceSchema, SnapshotWriter, type Config } from '@portico/shared';
import { decodeRequest } from '../../data-plane/src/sync/decode-protocol.ts';

const N = Number(process.env.DECODE_N ?? 200);
if (!Number.isInteger(N) || N < 1) throw new Error(`DECODE_N must be a whole number of writes, 1 or more (got ${JSON.stringify(process.env.DECODE_N)})`);
const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : 1);
const services = Array.from({ length: 100 }, (_, i) => serviceSchema.parse({ id: randomUUID(), created_at: 1, updated_at: 1, host: `s${i}.test` })).sort(byId);
const routes = Array.from({ length: 10_000 }, (_, i) => routeSchema.parse({
  id: randomUUID(), created_at: 1, updated_at: 1, name: `r-${i}`, paths: [`/s${i % 100}/r${i}`], service: { id: services[i % 100].id },
})).sort(byId);

const writer = new SnapshotWriter();
let version = 0;
const seal = (config: Config) => writer.seal({ version: ++version, built_at: version }, config, canonicalConfig(config).texts).bytes;
let config: Config = { ...emptyConfig(), services, routes };
const writes = [seal(config)];
for (let k = 0; k < N; k++) {
  const changed = config.routes.slice();
  changed[1234] = { ...changed[1234], paths: [`/moved/${k}`], updated_at: k + 2 };
  config = { ...config, routes: changed };
  writes.push(seal(config));
}

let last = 0;
const decode = (bytes: Uint8Array, id: number) => {
  const r = decodeRequest({ id, payload: new Uint8Array(bytes), held: last || null, newerThan: id - 1 });
  if (r.status !== 'decoded') throw new Error(`write ${id}: ${r.status}`);
  last = r.id;
  return r;
};
decode(writes[0], 1);
const session = process.env.DECODE_PROFILE ? new Session() : null;
if (session) { session.connect(); await session.post('Profiler.enable'); await session.post('Profiler.start'); }
const ms: number[] = [];
let fresh = 0;
for (let k = 1; k < writes.length; k++) {
  const t = performance.now();
  const r = decode(writes[k], k + 1);
  ms.push(performance.now() - t);
  fresh += r.status === 'decoded' ? r.lists.routes.fresh.length : 0;
}
if (session) writeFileSync(process.env.DECODE_PROFILE!, JSON.stringify((await session.post('Profiler.stop')).profile));
ms.sort((a, b) => a - b);
const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(2);
console.log(`${N} one-route writes at 10,000 routes, decoded in-process: median ${at(0.5)} ms, p10 ${at(0.1)}, p90 ${at(0.9)}; ${fresh} route chunk(s) sent back`);
