// Apply is all-or-nothing: after any rejected snapshot (random bytes, hostile JSON, a compile
// failure) the running version, hash and config are the old ones, and what the rejected compile
// acquired is rolled back.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import pino from 'pino';
import { generateKeyPairSync } from 'node:crypto';
import {
  configHash, emptyConfig, encodeSnapshot, LAST_ERROR_MAX, parseSigningKey, pluginSchema, routeSchema, serviceSchema, signSnapshot, trustedOf, type Config,
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
function newState() {
  return new ConfigState(dir, pino({ level: 'silent' }), {
    now: Date.now, log: { warn() {}, error() {} }, getJson: async () => ({}),
    localRateLimitStore: local, rateLimitStore: () => local, counters: { increment() {} },
  }, new HealthRegistry(async () => ({ ok: true }) as never), [trustedOf(key)], { commit: () => calls.push('commit'), rollback: () => calls.push('rollback') });
}
const service = serviceSchema.parse({ id: '00000000-0000-4000-8000-000000000001', created_at: 1, updated_at: 1, host: 'x.test' });
const snapshot = (version: number, config: Config) => signed(encodeSnapshot({ version, hash: configHash(config), built_at: 1, config }));

describe('ConfigState.apply', () => {
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
});
