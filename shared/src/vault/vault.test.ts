import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { referenceError, resolveReferences } from './index.ts';

describe('vault references', () => {
  const env = { REDIS_PASS: 'r3dis', JWT: '{"hs256":"hmac-secret"}', EMPTY: '' };

  it('resolves env references deep in a config, leaving the input and untouched parts alone', () => {
    const config = { redis: { password: '{vault://env/redis-pass}', host: 'h' }, list: ['a', '{vault://env/jwt/hs256}'], n: 1 };
    const out = resolveReferences(config, env);
    assert.deepEqual(out, { redis: { password: 'r3dis', host: 'h' }, list: ['a', 'hmac-secret'], n: 1 });
    assert.equal(config.redis.password, '{vault://env/redis-pass}');
    const plain = { a: { b: 'x' } };
    assert.equal(resolveReferences(plain, env), plain, 'nothing to resolve: the same object');
    assert.equal(resolveReferences({ e: '{vault://env/empty}' }, env).e, '', 'a set but empty variable is a value');
  });

  it('names the path and the reason of a reference that cannot be resolved', () => {
    assert.throws(() => resolveReferences({ redis: { password: '{vault://env/missing-one}' } }, env), /redis\.password: \{vault:\/\/env\/missing-one\}: environment variable MISSING_ONE is not set/);
    assert.throws(() => resolveReferences({ s: '{vault://aws/x}' }, env), /s: vault 'aws' is not supported/);
    assert.throws(() => resolveReferences({ s: '{vault://env/redis-pass/k}' }, env), /does not hold a JSON object/);
    assert.throws(() => resolveReferences({ s: '{vault://env/jwt/nope}' }, env), /has no string field 'nope'/);
    assert.throws(() => resolveReferences({ s: '{vault://env/jwt/__proto__}' }, env), /has no string field '__proto__'/);
    assert.throws(() => resolveReferences(['{vault://env/}'], env), /\[0\]: .* is not a vault reference/);
  });

  it('checks the syntax at write time', () => {
    assert.equal(referenceError('{vault://env/REDIS_PASS}'), null);
    assert.match(referenceError('{vault://env/a b}') ?? '', /not a vault reference/);
    assert.match(referenceError('{vault://hcv/a}') ?? '', /not supported/);
  });
});
