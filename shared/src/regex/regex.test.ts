import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SafeRegex, regexError } from './index.ts';

describe('SafeRegex (RE2, linear time)', () => {
  it('matches anchored paths with numbered and named captures', () => {
    const re = new SafeRegex('/users/(?P<id>\\d+)/(\\w+)', { anchorStart: true });
    const m = re.exec('/users/42/orders/x');
    assert.deepEqual(m && { matched: m.matched, unnamed: m.unnamed, named: { ...m.named } },
      { matched: '/users/42/orders', unnamed: ['42', 'orders'], named: { id: '42' } });
    assert.equal(re.exec('/x/users/42/a'), null);
  });

  it('answers a catastrophic-backtracking pattern on a long input in linear time', () => {
    const re = new SafeRegex('/(a+)+$', { anchorStart: true });
    // 10,000 characters: a backtracking engine would need about 2^10000 steps.
    assert.equal(re.test('/' + 'a'.repeat(10_000) + '!'), false);
    assert.equal(re.test('/aaaa'), true);
  });

  it('is case-insensitive on request', () => {
    assert.equal(new SafeRegex('^ab+c$', { caseInsensitive: true }).test('ABBC'), true);
    assert.equal(new SafeRegex('^ab+c$').test('ABBC'), false);
  });

  it('refuses what cannot run in linear time, with a reason', () => {
    assert.match(regexError('(a)\\1') ?? '', /escape/);
    assert.match(regexError('(?<=x)a') ?? '', /invalid/);
    assert.match(regexError('(') ?? '', /missing/);
    assert.equal(regexError('^/a(b|c)*$'), null);
  });

  it('keeps configured group names off the prototype', () => {
    const m = new SafeRegex('(?P<constructor>a)').exec('a');
    assert.equal(m?.named.constructor, 'a');
    assert.equal(Object.getPrototypeOf(m?.named), null);
  });
});
