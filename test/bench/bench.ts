// `npm run bench`: Portico's speed, measured against the direct upstream and its peers in one run,
// on loopback. Prints tables; ratios and CPU per request are what to compare (the machine is noisy).
//
//   Side by side (peers.ts; BENCH_ONLY=peers stops after it): nginx (1 and 2 workers), HAProxy,
//   Caddy, @fastify/http-proxy, a bare Node forwarder and Portico DPs, each with CPU µs/request
//   (BENCH_PEERS=<substring> measures only the peers whose name holds it).
//   wrk (or autocannon when wrk is absent) -c50 against the upstream directly and Portico's routes.
//   Admin write → all 3 DPs serving (p50/p99 over 100 writes); snapshot build/transfer/apply and DP
//   RSS at 10,000 routes; routing cost per request at 10 vs 10,000 routes. Edge plugins: cors,
//   header-only request/response transforms (× the plain route), json-transform of a 1 KB and a
//   100 KB JSON response (× the plain route serving the same document); request-validator on a
//   POSTed 1 KB JSON body (× the plain route with the same body), and its in-process costs. A DP node with
//   PORTICO_WORKERS=1 vs 2, with CPU µs per request (workers.ts).
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { routeSchema, serviceSchema } from '@portico/shared';
import { Router } from '../../data-plane/src/router/router.ts';
import { KongMetrics } from '../../data-plane/src/observability/kong-metrics.ts';
import { startStack, dpVersion } from '../harness/stack.ts';
import { freePort, portOpen, startRedis, waitFor } from '../harness/procs.ts';
import { tlsBench } from './tls.ts';
import { validatorCost, validatorCostLine, validatorFixture } from './validator.ts';
import { startOrigin } from './origin.ts';
import { cpuByRole, type Roles } from './config.ts';
import { bareNodePeer, benchPeers, caddyPeer, fastifyPeer, haproxyPeer, nginxPeer, porticoPeer, type Peer } from './peers.ts';

const DURATION_S = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 50;

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

interface Load { rps: number; p50: number; p99: number }

function wrk(url: string, headers: Record<string, string> = {}, body?: string): Load {
  const lua = path.join(os.tmpdir(), 'portico-wrk.lua');
  const post = body === undefined ? '' : `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`;
  writeFileSync(lua, `${post}done = function(s, l, r)
  io.write(string.format("RESULT %f %f %f\\n", s.requests / (s.duration / 1e6), l:percentile(50) / 1000, l:percentile(99) / 1000))
end\n`);
  const h = Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  const out = execFileSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${DURATION_S}s`, ...h, '-s', lua, url], { encoding: 'utf8' });
  const m = /RESULT ([\d.]+) ([\d.]+) ([\d.]+)/.exec(out)!;
  return { rps: Number(m[1]), p50: Number(m[2]), p99: Number(m[3]) };
}

async function autocannon(url: string, headers: Record<string, string> = {}, body?: string): Promise<Load> {
  const { default: ac } = await import('autocannon');
  const post = body === undefined ? {} : { method: 'POST' as const, body, headers: { ...headers, 'content-type': 'application/json' } };
  const r = await ac({ url, connections: CONNECTIONS, duration: DURATION_S, headers, ...post });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

const load = (url: string, headers?: Record<string, string>, body?: string) => (has('wrk') ? Promise.resolve(wrk(url, headers, body)) : autocannon(url, headers, body));

function routingCost(): { n10: number; n10k: number } {
  const svc = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 0, updated_at: 0, host: 'up.test' });
  const mk = (n: number) => new Router(Array.from({ length: n }, (_, i) => routeSchema.parse({
    id: `00000000-0000-4000-8000-${String(i + 2).padStart(12, '0')}`, created_at: 0, updated_at: 0,
    paths: [`/svc${i}/items`], service: { id: svc.id },
  })), [svc]);
  const time = (r: Router, n: number) => {
    const inputs = Array.from({ length: 1000 }, (_, i) => ({ method: 'GET', path: `/svc${i % n}/items/42`, host: 'gw.test', port: 8000, headers: {} }));
    for (let i = 0; i < 200_000; i++) r.match(inputs[i % 1000]);
    const t = process.hrtime.bigint();
    const N = 1_000_000;
    for (let i = 0; i < N; i++) r.match(inputs[i % 1000]);
    return Number(process.hrtime.bigint() - t) / N;
  };
  return { n10: time(mk(10), 10), n10k: time(mk(10_000), 10_000) };
}

/** The prometheus plugin's cost in-process: one request counted (all flags), and rendering 1,000 routes' series. */
function metricsCost(): { recordNs: number; renderMs: number; bytes: number } {
  const k = new KongMetrics();
  const flags = { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true };
  const ctxs = Array.from({ length: 1000 }, (_, i) => ({ route: { id: `r${i}`, name: `route-${i}` }, service: { id: 's', name: 'bench' }, consumer: null }) as never);
  const s = { status: 200, source: 'service', startedAt: 0, latencies: { kong: 1, proxy: 30, request: 31 }, bytesIn: 100, bytesOut: 300, upstreamTarget: null, upstreamUri: '/', tries: 1, traceId: null, responseHeaders: () => ({}) } as const;
  for (let i = 0; i < 200_000; i++) k.record(ctxs[i % 1000], s, flags);
  const N = 2_000_000;
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) k.record(ctxs[i % 1000], s, flags);
  const recordNs = Number(process.hrtime.bigint() - t) / N;
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < 20; i++) { const t0 = performance.now(); bytes = k.render().length; times.push(performance.now() - t0); }
  return { recordNs, renderMs: median(times), bytes };
}

async function main() {
  const rows: string[] = [];
  const say = (s: string) => { console.log(s); rows.push(s); };
  say(`# Portico benchmark — ${new Date().toISOString()} — ${os.cpus().length} cores, node ${process.version}, ${has('wrk') ? 'wrk' : 'autocannon'} -c${CONNECTIONS}, ${DURATION_S}s × ${ROUNDS} rounds (medians)`);

  const origin = await startOrigin();
  onFailure.push(() => origin.stop());
  const redis = await startRedis();
  onFailure.push(() => redis.stop());
  const stack = await startStack({ dps: 3, dpEnv: { PORTICO_ACCESS_LOG: process.env.BENCH_ACCESS_LOG ?? 'off', PORTICO_LOG_LEVEL: 'warn', REDIS_URL: redis.url } });
  onFailure.push(() => stack.stop());
  await stack.write('POST', '/services', { name: 'bench', url: origin.url });
  await stack.write('POST', '/services/bench/routes', { name: 'bench', paths: ['/mock'] });

  // Auth routes: key-auth, jwt HS256, jwt RS256, each a route of its own on the same service.
  await stack.write('POST', '/consumers', { username: 'bench' });
  await stack.write('POST', '/consumers/bench/key-auth', { key: 'bench-key' });
  await stack.write('POST', '/consumers/bench/jwt', { key: 'bench-hs', secret: 'bench-secret-bench-secret-bench-secret' });
  const rsa = await generateKeyPair('RS256', { extractable: true });
  await stack.write('POST', '/consumers/bench/jwt', { key: 'bench-rs', algorithm: 'RS256', rsa_public_key: await exportSPKI(rsa.publicKey) });
  for (const [name, plugin] of [['ka', 'key-auth'], ['hs', 'jwt'], ['rs', 'jwt'], ['karl', 'key-auth']]) {
    await stack.write('POST', '/services/bench/routes', { name, paths: [`/${name}`] });
    await stack.write('POST', `/routes/${name}/plugins`, { name: plugin });
  }
  // Limits far above what the run sends: every request pays for the Redis decision, none is refused.
  await stack.write('POST', '/routes/karl/plugins', { name: 'rate-limiting', config: { second: 1e9, policy: 'redis', algorithm: 'sliding-window' } });

  // Side by side (issue 16): one row list; a peer starts its own process(es) and says why when absent.
  const peers: Peer[] = [
    nginxPeer(1), nginxPeer(2), haproxyPeer, caddyPeer, fastifyPeer, bareNodePeer,
    porticoPeer('portico, 1 worker', { PORTICO_WORKERS: '1' }),
    porticoPeer('portico, 1 worker, access log on', { PORTICO_WORKERS: '1', PORTICO_ACCESS_LOG: 'on', PORTICO_LOG_LEVEL: 'info' }),
  ];
  if (has('wrk')) {
    say('');
    say('Side by side, one run (CPU µs/req: the process tree\'s utime+stime over requests served):');
    const only = process.env.BENCH_PEERS;
    for (const line of await benchPeers(only ? peers.filter((p) => p.name.includes(only)) : peers, { origin, stack, redisUrl: redis.url }, { seconds: DURATION_S, rounds: ROUNDS, connections: CONNECTIONS })) say(line);
  } else say('side-by-side table skipped: it needs wrk (its request count and latency percentiles)');
  if (process.env.BENCH_ONLY === 'peers') { origin.stop(); await stack.stop(); await redis.stop(); process.exit(0); }

  // Balancing: the same origin on three ports as three targets.
  await stack.write('POST', '/upstreams', { name: 'rr.bench' });
  for (const p of [origin.port, ...origin.extraPorts]) await stack.write('POST', '/upstreams/rr.bench/targets', { target: `127.0.0.1:${p}` });
  await stack.write('POST', '/services', { name: 'rr', host: 'rr.bench' });
  await stack.write('POST', '/services/rr/routes', { paths: ['/rr'] });
  await stack.write('POST', '/upstreams', { name: 'one.bench' });
  await stack.write('POST', '/upstreams/one.bench/targets', { target: `127.0.0.1:${origin.port}` });
  await stack.write('POST', '/services', { name: 'one', host: 'one.bench' });
  await stack.write('POST', '/services/one/routes', { paths: ['/one'] });
  // Edge plugins (issue 11): header-only ones on routes of their own, and json-transform on a 1 KB
  // and a 100 KB JSON response (the plain route serving the same documents is the reference).
  const edge: [string, string, Record<string, unknown>?][] = [
    ['cors', 'cors', { origins: ['https://app.bench'], credentials: true }],
    ['rqt', 'request-transformer', { add: { headers: ['x-bench:1', 'x-user:$(headers.x-user)'] }, remove: { headers: ['x-drop'] } }],
    ['rst', 'response-transformer', { remove: { headers: ['server'] }, add: { headers: ['x-frame-options:DENY'] } }],
    ['jt', 'json-transform', { response: { ops: [{ op: 'deny', paths: ['$.internal_notes'] }, { op: 'case', keys: 'camelCase' }, { op: 'wrap', key: 'data' }] } }],
  ];
  for (const [name, plugin, config] of edge) {
    await stack.write('POST', '/services/bench/routes', { name, paths: [`/${name}`] });
    await stack.write('POST', `/routes/${name}/plugins`, { name: plugin, config });
  }
  // request-validator (issue 14): a 1 KB JSON body POSTed to a route validating it, and to the plain route.
  const validation = validatorFixture();
  await stack.write('POST', '/services/bench/routes', { name: 'rv', paths: ['/rv'] });
  await stack.write('POST', '/routes/rv/plugins', { name: 'request-validator', config: { body_schema: validation.schema } });
  // proxy-cache (issue 14): every request after the first is a hit from the node's LRU.
  await stack.write('POST', '/services/bench/routes', { name: 'pc', paths: ['/pc'] });
  await stack.write('POST', '/routes/pc/plugins', { name: 'proxy-cache', config: { strategy: 'memory', cache_ttl: 3600 } });
  // Observability (issue 13): each on a route of its own, compared with the plain route (× portico DP).
  // Spans and log entries go to a local sink that drains and answers 200.
  const sink = await startDrainingSink();
  const obsRoutes: [string, { name: string; config: Record<string, unknown> }][] = [
    ['prom', { name: 'prometheus', config: { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true, upstream_health_metrics: true } }],
    ['otel0', { name: 'opentelemetry', config: { traces_endpoint: `${sink.url}/v1/traces`, sampling_rate: 0 } }],
    ['otel1', { name: 'opentelemetry', config: { traces_endpoint: `${sink.url}/v1/traces`, sampling_rate: 1 } }],
    // Kong's default batch of 1 sends one request per entry; a collector takes batches.
    ['hlog', { name: 'http-log', config: { http_endpoint: `${sink.url}/logs`, queue: { max_batch_size: 100 } } }],
  ];
  for (const [name, plugin] of obsRoutes) {
    await stack.write('POST', '/services/bench/routes', { name, paths: [`/${name}`] });
    await stack.write('POST', `/routes/${name}/plugins`, plugin);
  }
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const hsToken = await new SignJWT({ iss: 'bench-hs', exp }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('bench-secret-bench-secret-bench-secret'));
  const rsToken = await new SignJWT({ iss: 'bench-rs', exp }).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);

  const targets: [string, string, Record<string, string>?, string?][] = [
    ['upstream direct', `${origin.url}/anything`],
    ['portico DP', `${stack.dps[0].proxy}/mock/anything`],
    ['portico + key-auth', `${stack.dps[0].proxy}/ka/anything`, { apikey: 'bench-key' }],
    ['portico + jwt HS256', `${stack.dps[0].proxy}/hs/anything`, { authorization: `Bearer ${hsToken}` }],
    ['portico + jwt RS256', `${stack.dps[0].proxy}/rs/anything`, { authorization: `Bearer ${rsToken}` }],
    ['portico + key-auth + rate-limiting (redis, sliding)', `${stack.dps[0].proxy}/karl/anything`, { apikey: 'bench-key' }],
    ['portico → upstream entity, 1 target', `${stack.dps[0].proxy}/one/anything`],
    ['portico → upstream entity, 3 targets round-robin', `${stack.dps[0].proxy}/rr/anything`],
    ['portico + cors (actual request)', `${stack.dps[0].proxy}/cors/anything`, { origin: 'https://app.bench' }],
    ['portico + request-transformer (headers)', `${stack.dps[0].proxy}/rqt/anything`, { 'x-user': 'u' }],
    ['portico + response-transformer (headers)', `${stack.dps[0].proxy}/rst/anything`],
    ['portico DP, 1 KB JSON', `${stack.dps[0].proxy}/mock/json1k`],
    ['portico + json-transform, 1 KB JSON', `${stack.dps[0].proxy}/jt/json1k`],
    ['portico DP, 100 KB JSON', `${stack.dps[0].proxy}/mock/json100k`],
    ['portico + json-transform, 100 KB JSON', `${stack.dps[0].proxy}/jt/json100k`],
    ['portico DP, POST 1 KB JSON', `${stack.dps[0].proxy}/mock/anything`, {}, validation.body],
    ['portico + request-validator, POST 1 KB JSON', `${stack.dps[0].proxy}/rv/anything`, {}, validation.body],
    ['portico + proxy-cache hit (memory), 1 KB JSON', `${stack.dps[0].proxy}/pc/json1k`],
    ['portico + prometheus (all flags)', `${stack.dps[0].proxy}/prom/anything`],
    ['portico + opentelemetry, sampling 0', `${stack.dps[0].proxy}/otel0/anything`],
    ['portico + opentelemetry, sampling 1.0', `${stack.dps[0].proxy}/otel1/anything`],
    ['portico + http-log (local collector, batches of 100)', `${stack.dps[0].proxy}/hlog/anything`],
  ];
  for (const [name, url, headers, body] of targets) {
    const r = await fetch(url, body === undefined ? { headers } : { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
    if (r.status !== 200) throw new Error(`${name}: ${url} answered ${r.status}`);
  }
  // Warm every target up (JIT, pools) before measuring.
  for (const [, url, headers, body] of targets) {
    if (has('wrk') && body === undefined) execFileSync('wrk', ['-t1', '-c10', '-d1s', ...Object.entries(headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url], { stdio: 'ignore' });
  }
  const results = new Map<string, Load[]>(targets.map(([n]) => [n, []]));
  const { Redis } = await import('ioredis');
  const redisClient = new Redis(redis.url);
  const evalCalls = async () => {
    const info = await redisClient.info('commandstats');
    return [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  };
  let rlRequests = 0; let rlCalls = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, url, headers, body] of targets) {
      const before = name.includes('rate-limiting') ? await evalCalls() : 0;
      const r = await load(url, headers, body);
      results.get(name)!.push(r);
      if (name.includes('rate-limiting')) { rlCalls += (await evalCalls()) - before; rlRequests += r.rps * DURATION_S; }
    }
  }
  redisClient.disconnect();
  const med = (name: string) => {
    const xs = results.get(name)!;
    return { rps: median(xs.map((x) => x.rps)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)) };
  };
  say('');
  say('| target | req/s | p50 ms | p99 ms | × upstream | × portico DP |');
  say('|---|---:|---:|---:|---:|---:|');
  const direct = med('upstream direct').rps;
  const plain = med('portico DP').rps;
  for (const [name] of targets) {
    const m = med(name);
    say(`| ${name} | ${m.rps.toFixed(0)} | ${m.p50.toFixed(2)} | ${m.p99.toFixed(2)} | ${(m.rps / direct).toFixed(2)} | ${(m.rps / plain).toFixed(2)} |`);
  }

  // Declarative config at 10,000 routes (issue 12): POST /config and `portico config sync`.
  say('');
  const { benchDeclarative } = await import('./config.ts');
  for (const line of await benchDeclarative()) say(line);
  const { benchMemory } = await import('./memory.ts');
  for (const line of await benchMemory()) say(line);

  say('');
  const ratio = (a: string, b: string) => (med(a).rps / med(b).rps).toFixed(2);
  say(`edge plugins × plain route: cors ${ratio('portico + cors (actual request)', 'portico DP')}, request-transformer (headers) ${ratio('portico + request-transformer (headers)', 'portico DP')}, `
    + `response-transformer (headers) ${ratio('portico + response-transformer (headers)', 'portico DP')}; json-transform × the plain route serving the same document: `
    + `1 KB ${ratio('portico + json-transform, 1 KB JSON', 'portico DP, 1 KB JSON')}, 100 KB ${ratio('portico + json-transform, 100 KB JSON', 'portico DP, 100 KB JSON')}`);
  say(`request-validator × the plain route, both POST 1 KB JSON: ${ratio('portico + request-validator, POST 1 KB JSON', 'portico DP, POST 1 KB JSON')}`);
  say(validatorCostLine(validatorCost()));
  say(`proxy-cache hit × the plain proxied route, 1 KB JSON: ${ratio('portico + proxy-cache hit (memory), 1 KB JSON', 'portico DP, 1 KB JSON')} (aim ≥ 1.5)`);
  say(`Redis calls per rate-limited request: ${(rlCalls / rlRequests).toFixed(2)} (EVALSHA calls / requests, from Redis INFO commandstats)`);

  await tlsBench({ stack, originPort: origin.port, load, seconds: DURATION_S, rounds: ROUNDS, say });

  // Composition (issue 14): a 3-leg aggregator against its legs called one by one.
  say('');
  const { aggregateBench } = await import('./aggregate.ts');
  await aggregateBench({ stack, originUrl: origin.url, say });
  // One node on every core (issue 16): PORTICO_WORKERS=1 vs 2, plain and key-auth + Redis rate limiting.
  const { benchWorkers } = await import('./workers.ts');
  await stack.write('POST', '/services/bench/routes', { name: 'rll', paths: ['/rll'] });
  await stack.write('POST', '/routes/rll/plugins', { name: 'rate-limiting', config: { second: 1e9, policy: 'local' } });
  await benchWorkers({ stack, redisUrl: redis.url, load, rounds: ROUNDS, say, plain: '/mock/anything', limited: { path: '/karl/anything', headers: { apikey: 'bench-key' } }, local: '/rll/anything' });

  // Admin write → all 3 DPs serving.
  const lat: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t = performance.now();
    const r = await stack.A('POST', '/services/bench/routes', { paths: [`/w${i}`] });
    const v = Number(r.headers.get('x-portico-config-version'));
    await Promise.all(stack.dps.map((dp) => waitFor('dp', async () => (await dpVersion(dp)) >= v, 10_000, 2)));
    lat.push(performance.now() - t);
  }
  say('');
  say(`admin write → all 3 DPs serving: p50 ${pct(lat, 0.5).toFixed(1)} ms, p99 ${pct(lat, 0.99).toFixed(1)} ms (100 sequential writes)`);

  // 10,000 routes: build, transfer, apply, RSS.
  const client = new pg.Client({ connectionString: stack.pg.url });
  await client.connect();
  const svcId = (await stack.A('GET', '/services/bench')).body.id;
  await client.query(`INSERT INTO routes (id, created_at, updated_at, name, protocols, paths, https_redirect_status_code, regex_priority,
      strip_path, path_handling, preserve_host, request_buffering, response_buffering, service_id)
    SELECT gen_random_uuid(), 0, 0, 'bulk-' || i, ARRAY['http','https'], ARRAY['/bulk/' || i || '/items'], 426, 0, true, 'v0', false, true, true, $1
    FROM generate_series(1, 10000) AS i`, [svcId]);
  await client.end();
  const t0 = performance.now();
  const w = await stack.A('POST', '/services/bench/routes', { paths: ['/trigger'] });
  const v = Number(w.headers.get('x-portico-config-version'));
  await Promise.all(stack.dps.map((dp) => waitFor('dp', async () => (await dpVersion(dp)) >= v, 30_000, 5)));
  const total = performance.now() - t0;
  const cpLine = stack.cp.logs().split('\n').reverse().find((l) => l.includes('"config snapshot published"'));
  const cpInfo = cpLine ? JSON.parse(cpLine) : {};
  // The apply leaves work behind on every DP and the CP (the decoder thread, collecting the old
  // config): the load starts once they are quiet, so it measures routing among 10,012 routes.
  const roles: Roles = new Map([['gateway', { roots: [stack.cp.proc.pid!, ...stack.dps.map((d) => d.proc.pid!)] }]]);
  for (let i = 0; i < 20; i++) {
    const before = cpuByRole(roles).get('gateway')!;
    await new Promise((r) => setTimeout(r, 500));
    if (cpuByRole(roles).get('gateway')! - before < 50) break; // under a tenth of a core
  }
  const st = await (await fetch(`${stack.dps[0].status}/status`)).json() as any;
  const apply = st.configuration.last_apply;
  say(`10,000 routes: snapshot ${(cpInfo.bytes / 1024).toFixed(0)} KB gzip; build ${cpInfo.build_ms} ms, publish ${cpInfo.publish_ms} ms; write → all 3 DPs applied ${total.toFixed(0)} ms; DP decode+validate ${apply.decode_ms} ms, compile ${apply.compile_ms} ms; DP RSS ${(st.memory.rss_bytes / 2 ** 20).toFixed(0)} MB`);
  const big = wrk10k(stack.dps[0].proxy);
  say(`portico DP with 10,012 routes: ${big.rps.toFixed(0)} req/s (× ${(big.rps / med('portico DP').rps).toFixed(2)} of the 2-route run above), p99 ${big.p99.toFixed(2)} ms`);

  // Uncached signature checks (the plugin remembers verified tokens; this is the first sight of one).
  const { decodeJwt, publicKey, secretKey, verifySignature } = await import('../../shared/src/plugins/jwt/verify.ts');
  const perVerify = (token: string, alg: string, key: ReturnType<typeof secretKey>) => {
    const N = 5_000;
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) verifySignature(decodeJwt(token)!, alg, key);
    return Number(process.hrtime.bigint() - t) / N / 1000;
  };
  say(`jwt verification without the cache (decode + verify, in-process): HS256 ${perVerify(hsToken, 'HS256', secretKey('bench-secret-bench-secret-bench-secret', false)).toFixed(1)} µs, RS256 ${perVerify(rsToken, 'RS256', publicKey(await exportSPKI(rsa.publicKey))).toFixed(1)} µs`);

  // Failing fast: a breaker that is open answers without touching the (dead) upstream.
  const deadPort = await freePort();
  await stack.write('POST', '/upstreams', { name: 'dead.bench', circuit_breaker: { failures: 1, open_timeout: 3600 } });
  await stack.write('POST', '/upstreams/dead.bench/targets', { target: `127.0.0.1:${deadPort}` });
  await stack.write('POST', '/services', { name: 'dead', host: 'dead.bench', retries: 0 });
  await stack.write('POST', '/services/dead/routes', { paths: ['/dead'] });
  await fetch(`${stack.dps[0].proxy}/dead`);
  const openTimes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    const r = await fetch(`${stack.dps[0].proxy}/dead`);
    await r.arrayBuffer();
    if (r.status !== 503) throw new Error(`breaker not open: ${r.status}`);
    openTimes.push(performance.now() - t);
  }
  say(`request against an open breaker (503 without an upstream attempt): p50 ${pct(openTimes, 0.5).toFixed(2)} ms, p99 ${pct(openTimes, 0.99).toFixed(2)} ms (200 sequential requests, client-measured)`);

  // /metrics with 1,000 routes counted: a global prometheus (all flags), one request on each of
  // 1,000 bulk routes, then the scrape timed from outside.
  await stack.write('POST', '/plugins', { name: 'prometheus', config: { per_consumer: true, status_code_metrics: true, latency_metrics: true, bandwidth_metrics: true } });
  for (let i = 1; i <= 1000; i++) await (await fetch(`${stack.dps[0].proxy}/bulk/${i}/items`)).arrayBuffer();
  const scrapes: number[] = [];
  let scrapeBytes = 0;
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    scrapeBytes = (await (await fetch(`${stack.dps[0].status}/metrics`)).text()).length;
    scrapes.push(performance.now() - t);
  }
  say(`/metrics with 1,000 routes counted (all flags): p50 ${pct(scrapes, 0.5).toFixed(1)} ms, max ${Math.max(...scrapes).toFixed(1)} ms, ${(scrapeBytes / 1024).toFixed(0)} KB (20 scrapes, client-measured); spans/log batches received by the sink: ${sink.requests}`);
  sink.stop();

  const mc = metricsCost();
  say(`prometheus in-process: ${mc.recordNs.toFixed(0)} ns to count one request (all flags); rendering 1,000 routes' series ${mc.renderMs.toFixed(1)} ms (${(mc.bytes / 1024).toFixed(0)} KB)`);

  const rc = routingCost();
  say(`routing cost per request (Router.match, in-process): ${rc.n10.toFixed(0)} ns at 10 routes, ${rc.n10k.toFixed(0)} ns at 10,000 routes (× ${(rc.n10k / rc.n10).toFixed(2)})`);

  origin.stop();
  await stack.stop();
  await redis.stop();
  process.exit(0);
}

/** A collector that reads and drops what it is sent (OTLP spans, http-log batches). */
async function startDrainingSink(): Promise<{ url: string; requests: number; stop: () => void }> {
  const http = await import('node:http');
  const port = await freePort();
  const sink = { url: `http://127.0.0.1:${port}`, requests: 0, stop: () => server.close() };
  const server = http.createServer((req, res) => { req.resume(); req.on('end', () => { sink.requests++; res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); }); });
  server.listen(port, '127.0.0.1');
  await waitFor('sink', () => portOpen(port));
  return sink;
}

function wrk10k(proxy: string): Load {
  return has('wrk') ? wrk(`${proxy}/bulk/5000/items`) : { rps: NaN, p50: NaN, p99: NaN };
}

/** What a failed run stops before exiting (the processes it started), newest first. */
const onFailure: (() => unknown)[] = [];

main().catch(async (err) => {
  console.error(err);
  for (const stop of onFailure.reverse()) await Promise.resolve().then(stop).catch(() => {});
  process.exit(1);
});
