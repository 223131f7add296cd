import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { referenceable } from '../entities/fields.ts';
import { referenceablePaths, referenceError, resolveAt } from './index.ts';

const schema = z.strictObject({
  redis: z.strictObject({ password: referenceable(z.string()).nullable().default(null), host: z.string() }).prefault({ host: 'h' }),
  message: z.string().optional(),
  list: z.array(z.string()).default([]),
});
const env = { PORTICO_VAULT_REDIS_PASS: 'r3dis', PORTICO_VAULT_JWT: '{"hs256":"hmac-secret"}', PORTICO_VAULT_EMPTY: '', PORTICO_ADMIN_TOKEN: 'the-admin-token' };

describe('vault references', () => {
  it('finds the referenceable fields of a schema, through optional, default and nested objects', () => {
    assert.deepEqual(referenceablePaths(schema), [['redis', 'password']]);
  });

  it('resolves references in referenceable fields only, from PORTICO_VAULT_ variables, copying along the path', () => {
    const config = { redis: { password: '{vault://env/redis-pass}', host: 'h' }, message: '{vault://env/redis-pass}', list: ['{vault://env/jwt/hs256}'] };
    const out = resolveAt(config, referenceablePaths(schema), env);
    assert.deepEqual(out, { redis: { password: 'r3dis', host: 'h' }, message: '{vault://env/redis-pass}', list: ['{vault://env/jwt/hs256}'] });
    assert.equal(config.redis.password, '{vault://env/redis-pass}', 'the input is not changed');
    assert.equal(out.list, config.list, 'untouched parts are shared');
    const plain = { redis: { password: 'literal', host: 'h' } };
    assert.equal(resolveAt(plain, [['redis', 'password']], env), plain, 'nothing to resolve: the same object');
    assert.equal(resolveAt({ s: '{vault://env/empty}' }, [['s']], env).s, '', 'a set but empty variable is a value');
    assert.equal(resolveAt({ s: '{vault://env/jwt/hs256}' }, [['s']], env).s, 'hmac-secret');
  });

  it('cannot read the node\'s own settings, and names the field and reason of what cannot be resolved', () => {
    assert.throws(() => resolveAt({ s: '{vault://env/portico-admin-token}' }, [['s']], { PORTICO_ADMIN_TOKEN: 'x' }), /s: \{vault:\/\/env\/portico-admin-token\}: environment variable PORTICO_VAULT_PORTICO_ADMIN_TOKEN is not set/);
    assert.throws(() => resolveAt({ r: { p: '{vault://env/missing-one}' } }, [['r', 'p']], env), /r\.p: .*PORTICO_VAULT_MISSING_ONE is not set/);
    assert.throws(() => resolveAt({ s: '{vault://aws/x}' }, [['s']], env), /s: vault 'aws' is not supported/);
    assert.throws(() => resolveAt({ s: '{vault://env/redis-pass/k}' }, [['s']], env), /does not hold a JSON object/);
    assert.throws(() => resolveAt({ s: '{vault://env/jwt/nope}' }, [['s']], env), /has no string field 'nope'/);
    assert.throws(() => resolveAt({ s: '{vault://env/jwt/__proto__}' }, [['s']], env), /has no string field '__proto__'/);
    assert.throws(() => resolveAt({ s: '{vault://env/}' }, [['s']], env), /s: .* is not a vault reference/);
  });

  it('checks the syntax at write time', () => {
    assert.equal(referenceError('{vault://env/REDIS_PASS}'), null);
    assert.match(referenceError('{vault://env/a b}') ?? '', /not a vault reference/);
    assert.match(referenceError('{vault://hcv/a}') ?? '', /not supported/);
    assert.equal(schema.safeParse({ redis: { password: '{vault://env/}', host: 'h' } }).success, false);
  });
});
