// `npm start` on embedded defaults: PGlite and the in-process bus, nothing else running.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { admin, ROOT, startGateway, type GatewayProcess } from '../harness/gateway.ts';
import { startUpstream, type Upstream } from '../harness/upstream.ts';

let g: GatewayProcess; let up: Upstream;
before(async () => {
  up = await startUpstream();
  g = await startGateway('all-in-one', { env: { DATABASE_URL: undefined, NATS_URL: undefined, REDIS_URL: undefined } });
});
after(async () => { await g?.kill(); g?.cleanup(); await up?.close(); });

describe('all-in-one on embedded defaults', () => {
  it("serves Kong's getting-started commands", async () => {
    const svc = await admin(g.admin, 'POST', '/services', new URLSearchParams({ name: 'example_service', url: up.url }));
    assert.equal(svc.status, 201);
    const route = await admin(g.admin, 'POST', '/services/example_service/routes', new URLSearchParams('paths[]=/mock&name=example_route'));
    assert.equal(route.status, 201);
    const version = Number(route.headers.get('x-portico-config-version'));
    let r: Response | undefined;
    for (let i = 0; i < 100; i++) {
      const st = await (await fetch(`${g.status}/status`)).json() as any;
      if (st.configuration.version >= version) { r = await fetch(`${g.proxy}/mock/anything`); break; }
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(r?.status, 200);
    assert.equal(((await r!.json()) as any).url, '/anything');
    const root = await admin(g.admin, 'GET', '/');
    assert.equal(root.body.configuration.embedded_database, true);
  });

  it("serves the CP's registry on the admin API's /metrics (the status listener's is the DP's)", async () => {
    const r = await fetch(`${g.admin}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await r.text();
    assert.match(text, /^portico_admin_writes_total\{method="POST",code="201"\} 2$/m, 'the two writes above');
    const version = Number(/^portico_config_version (\d+)$/m.exec(text)?.[1]);
    assert.ok(version >= 2, `config version ${version}`);
    assert.match(text, /^portico_snapshot_build_ms_count \d+$/m);
    const dp = await (await fetch(`${g.status}/metrics`)).text();
    assert.match(dp, /^kong_nginx_requests_total\{/m);
    assert.doesNotMatch(dp, /portico_admin_writes_total/);
  });

  it('keeps its data across a restart (PGlite in the data dir)', async () => {
    assert.equal(await g.stop(), 0, 'SIGTERM exits 0');
    await g.start();
    const r = await admin(g.admin, 'GET', '/services/example_service');
    assert.equal(r.status, 200);
    assert.equal((await fetch(`${g.proxy}/mock/again`)).status, 200);
  });
});

describe('graceful shutdown', () => {
  it('finishes a request in flight on SIGTERM, refuses new connections, and exits 0', async () => {
    const inflight = fetch(`${g.proxy}/mock/slow?delay_ms=800`);
    await new Promise((r) => setTimeout(r, 200));
    const exited = g.stop();
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(fetch(`${g.proxy}/mock/new`, { headers: { connection: 'close' } }));
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as any).url, '/slow?delay_ms=800');
    assert.equal(await exited, 0);
  });
});

describe('bad environment', () => {
  const run = (entry: string, env: Record<string, string>) => spawnSync(process.execPath, [entry], {
    cwd: ROOT, env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000,
  });
  it('refuses a malformed listen address, naming the variable', () => {
    const r = run('dist/portico.mjs', { PORTICO_PROXY_LISTEN: 'not-a-port' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PORTICO_PROXY_LISTEN: expected host:port, got 'not-a-port'/);
  });
  it('refuses a PORTICO_OTEL_TRACES_ENDPOINT that is not an http(s) URL', () => {
    const r = run('dist/portico.mjs', { PORTICO_OTEL_TRACES_ENDPOINT: 'ftp://collector/v1/traces' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /PORTICO_OTEL_TRACES_ENDPOINT/);
  });
  it('refuses a non-Postgres DATABASE_URL', () => {
    const r = run('dist/portico.mjs', { DATABASE_URL: 'mysql://x' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /DATABASE_URL: expected a postgres or postgresql URL/);
  });
  it('refuses to run a data plane or control plane alone without NATS_URL', () => {
    const dp = run('data-plane/dist/main.mjs', {});
    assert.equal(dp.status, 2);
    assert.match(dp.stderr, /NATS_URL is required for a data plane/);
    const cp = run('control-plane/dist/main.mjs', {});
    assert.equal(cp.status, 2);
    assert.match(cp.stderr, /NATS_URL is required when the control plane runs alone/);
  });
});
