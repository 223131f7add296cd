import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Claimed } from './claimed.ts';

describe('claimed items across configs', () => {
  it('keeps what the new config claims and releases the rest, once', () => {
    const c = new Claimed<string>();
    let made = 0;
    const released: string[] = [];
    c.get('a', () => `a${++made}`); c.get('b', () => `b${++made}`);
    c.sweep((v) => { released.push(v); });
    assert.equal(released.length, 0);
    assert.equal(c.get('a', () => `a${++made}`), 'a1', 'an unchanged config reuses its item');
    c.sweep((v) => { released.push(v); });
    assert.deepEqual(released, ['b2']);
    c.sweep((v) => { released.push(v); });
    assert.deepEqual(released, ['b2', 'a1']);
    assert.equal(c.size, 0);
  });

  it('a rolled-back compile releases what it made and keeps the running config\'s items', () => {
    const c = new Claimed<string>();
    const released: string[] = [];
    c.get('a', () => 'a1');
    c.sweep((v) => { released.push(v); });
    // A compile that reuses `a` and makes `b`, then is rejected.
    c.get('a', () => 'a2'); c.get('b', () => 'b1');
    c.rollback((v) => { released.push(v); });
    assert.deepEqual(released, ['b1']);
    assert.equal(c.get('a', () => 'a3'), 'a1', 'the running config\'s item is kept');
    // Its claims protect nothing: the next config, not using `a`, releases it.
    c.rollback(() => {});
    c.sweep((v) => { released.push(v); });
    assert.deepEqual(released, ['b1', 'a1']);
  });
});
