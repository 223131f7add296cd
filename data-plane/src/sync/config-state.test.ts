// Apply is all-or-nothing: after any rejected snapshot (random bytes, hostile JSON, a compile
// failure) the running version, hash and config are the old ones, and what the rejected compile
// acquired is rolled back.
import { after, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import pino from 'pino';
import { generateKeyPairSync } from 'node:crypto';
import {
  configHash, emptyConfig, encodeSnapshot, LAST_ERROR_MAX, parseSigningKey, pluginSchema, routeSchema, serviceSchema, signSnapshot, targetSchema, trustedOf, upstreamSchema, type Config,
} from '@portico/shared';
import { MemoryRateLimitStore } from '@portico/shared/plugins/handlers';
import { HealthRegistry } from '../proxy/balancer.ts';
import { ConfigState } from './config-state.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 100);
const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-config-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const key = parseSigningKey(generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
/** Signed with the key the state trusts, so what is exercised is everything after the signature check. */
const signed = (bytes: Uint8Array) => signSnapshot(bytes, key);
const local = new MemoryRateLimitStore();
const calls: string[] = [];
const states: ConfigState[] = [];
after(() => Promise.all(states.map((s) => s.close())));
function newState() {
  const state = new ConfigState(dir, pino({ level: 'silent' }), {
    now: Date.now, log: { warn() {}, error() {} }, getJson: async () => ({}),
    localRateLimitStore: local, rateLimitStore: () => local, counters: { increment() {} },
  }, new HealthRegistry(async () => ({ ok: true }) as never), [trustedOf(key)], { commit: () => calls.push('commit'), rollback: () => calls.push('rollback') });
  states.push(state);
  return state;
}
const service = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 1, updated_at: 1, host: 'x.test' });
const snapshot = (version: number, config: Config) => signed(encodeSnapshot({ version, hash: configHash(config), built_at: 1, config }));

describe('ConfigState.apply', () => {
  it('releases the bytes once no longer needed: after the disk cache has them, or at once when rejected, ignored or not persisted', async () => {
    const state = newState();
    const released: string[] = [];
    const release = (what: string) => () => released.push(what);
    const applied = state.apply(snapshot(20, { ...emptyConfig(), services: [service] }), { release: release('applied') });
    assert.equal((await applied).status, 'applied');
    await state.close(); // flushes the disk cache
    assert.deepEqual(released, ['applied'], 'once, after the write');
    assert.equal((await state.apply(Buffer.from('not signed'), { release: release('rejected') })).status, 'rejected');
    assert.equal((await state.apply(snapshot(19, emptyConfig()), { release: release('ignored') })).status, 'ignored');
    assert.equal((await state.apply(snapshot(21, emptyConfig()), { persist: false, release: release('not persisted') })).status, 'applied');
    assert.deepEqual(released, ['applied', 'rejected', 'ignored', 'not persisted']);
    calls.splice(0);
  });

  it('keeps the old version after every rejected snapshot (fuzz), and rolls back a failed compile', async () => {
    const state = newState();
    assert.equal((await state.apply(snapshot(5, { ...emptyConfig(), services: [service] }))).status, 'applied');
    const before = { version: state.version, hash: state.hash, config: state.current() };
    assert.deepEqual(calls.splice(0), ['commit']);
    const unchanged = () => {
      assert.equal(state.version, before.version);
      assert.equal(state.hash, before.hash);
      assert.equal(state.current(), before.config);
    };
    await fc.assert(fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 256 }).map((b) => b as Uint8Array), fc.uint8Array({ maxLength: 256 }).map(signed), fc.jsonValue().map((v) => signed(gzipSync(JSON.stringify({ version: 99, hash: 'a'.repeat(64), built_at: 0, config: v }))))), async (bytes) => {
      assert.equal((await state.apply(bytes)).status, 'rejected');
      unchanged();
    }), { numRuns: RUNS });
    assert.deepEqual(calls, [], 'a snapshot rejected before compiling acquires nothing');

    // Valid on the wire, but this node cannot run it: the compile's acquisitions are rolled back.
    const plugin = pluginSchema.parse({ id: '00000000-0000-4000-8000-000000000002', created_at: 0, updated_at: 0, name: 'rate-limiting', config: { minute: 1 } });
    const r = await state.apply(snapshot(6, { ...emptyConfig(), services: [service], plugins: [{ ...plugin, name: 'no-such-plugin' }] }));
    assert.equal(r.status, 'rejected');
    unchanged();
    assert.deepEqual(calls, ['rollback']);
  });

  it('truncates an over-long error to LAST_ERROR_MAX characters', async () => {
    const state = newState();
    // The admin API refuses such a route; the node must still report it, and briefly: the error
    // quotes the 3,000-character pattern.
    const route = { ...routeSchema.parse({ id: '00000000-0000-4000-8000-000000000003', created_at: 0, updated_at: 0, paths: ['/x'] }), paths: ['~/(a)\\1' + 'k'.repeat(3_000)] };
    const r = await state.apply(snapshot(1, { ...emptyConfig(), routes: [route] }));
    assert.equal(r.status, 'rejected');
    assert.equal(state.lastError!.length, LAST_ERROR_MAX);
    assert.match(state.lastError!, /^snapshot failed validation: config\.routes\.0\.paths\.0: invalid regex: '.*kkk+…$/);
  });

  it('applies without holding the event loop: decode runs on the decoder thread, compile in slices', async () => {
    const state = newState();
    const routes = Array.from({ length: 3_000 }, (_, i) => routeSchema.parse({ id: `10000000-0000-4000-8000-${String(i).padStart(12, '0')}`, created_at: 0, updated_at: 0, paths: [`/r${i}`], service: { id: service.id } }));
    let turns = 0;
    let applying = true;
    const spin = () => { if (!applying) return; turns++; setImmediate(spin); };
    setImmediate(spin);
    const r = await state.apply(snapshot(1, { ...emptyConfig(), services: [service], routes }));
    applying = false;
    assert.equal(r.status, 'applied');
    assert.ok(turns > 0, 'setImmediate callbacks ran while the snapshot was applied');
    assert.equal(state.decoder.started, 1);
    assert.equal(state.current()!.router.size, 3_000);
    assert.equal(typeof state.lastApply!.loop_delay_max_ms, 'number');
  });

  it('keeps an unchanged route\'s object across versions, so its compiled parts are reused', async () => {
    const state = newState();
    const r = (i: number, at: number) => routeSchema.parse({ id: `20000000-0000-4000-8000-${String(i).padStart(12, '0')}`, created_at: 0, updated_at: at, paths: [`/k${i}`], service: { id: service.id } });
    const match = (path: string) => state.current()!.router.match({ method: 'GET', path, host: 'h', port: 80, headers: {} })!.route;
    await state.apply(snapshot(1, { ...emptyConfig(), services: [service], routes: [r(1, 0), r(2, 0)] }));
    const [one, two] = [match('/k1'), match('/k2')];
    await state.apply(snapshot(2, { ...emptyConfig(), services: [service], routes: [r(1, 0), r(2, 1)] }));
    assert.equal(match('/k1'), one);
    assert.notEqual(match('/k2'), two);
    assert.equal(match('/k2').updated_at, 1);
  });

  it('a rejected snapshot queued behind an apply in flight changes nothing: no probe timer, the applied config serves', async () => {
    const state = newState();
    calls.splice(0);
    const UP = '00000000-0000-4000-8000-0000000000a1';
    const checked: Config = {
      ...emptyConfig(), services: [service],
      upstreams: [upstreamSchema.parse({ id: UP, created_at: 0, updated_at: 0, name: 'pool', healthchecks: { active: { healthy: { interval: 5 }, unhealthy: { interval: 5 } } } })],
      targets: [targetSchema.parse({ id: '00000000-0000-4000-8000-0000000000a2', created_at: 0, updated_at: 0, upstream: { id: UP }, target: '10.0.0.1:80' })],
    };
    const plugin = pluginSchema.parse({ id: '00000000-0000-4000-8000-000000000002', created_at: 0, updated_at: 0, name: 'rate-limiting', config: { minute: 1 } });
    const intervals = mock.method(globalThis, 'setInterval');
    try {
      // Both arrive at once; they apply in order, the second after the first is swapped in.
      const [first, second] = await Promise.all([
        state.apply(snapshot(1, { ...emptyConfig(), services: [service] })),
        state.apply(snapshot(2, { ...checked, plugins: [{ ...plugin, name: 'no-such-plugin' }] })),
      ]);
      assert.equal(first.status, 'applied');
      assert.equal(second.status, 'rejected');
      assert.equal(intervals.mock.callCount(), 0, 'no active health check was scheduled');
      assert.equal(state.version, 1);
      assert.equal(state.current()!.upstreams.size, 0);
      assert.deepEqual(calls, ['commit', 'rollback']);
      // The same upstream in a snapshot that applies does schedule its checks (what the assertion above would see).
      assert.equal((await state.apply(snapshot(3, checked))).status, 'applied');
      assert.equal(intervals.mock.callCount(), 2);
    } finally {
      intervals.mock.restore();
      state.health.stop();
    }
  });
});
