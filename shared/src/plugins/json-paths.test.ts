// JSON paths for the body transforms: both spellings, navigation through arrays, and keys that would
// reach a prototype refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EACH, parseDotted, parseJsonPath, pick, removeAt, renameAt, setAt, valuesAt } from './json-paths.ts';

describe('json paths', () => {
  it('parses Kong keys (dots_in_keys) and json-transform paths, with messages for bad ones', () => {
    assert.deepEqual(parseDotted('a.b', true), ['a.b']);
    assert.deepEqual(parseDotted('a.b[*].c', false), ['a', 'b', EACH, 'c']);
    assert.deepEqual(parseJsonPath('$'), []);
    assert.deepEqual(parseJsonPath('$.a["x.y"][*]'), ['a', 'x.y', EACH]);
    assert.equal(parseJsonPath('a.b'), "'a.b' must start with $");
    assert.equal(parseJsonPath('$.a.'), "'$.a.': ends with .");
    assert.equal(parseDotted('a.__proto__.b', false), "'a.__proto__.b': '__proto__' is not allowed as a key");
    assert.equal(parseDotted('constructor', true), "'constructor' is not allowed as a key");
  });

  it('reads, sets, renames and removes through arrays', () => {
    const doc = { users: [{ id: 1, name: 'a' }, { id: 2 }, 'scalar'] } as Record<string, unknown>;
    const names = parseDotted('users[*].name', false) as never;
    assert.deepEqual(valuesAt(doc, names), ['a']);
    assert.equal(setAt(doc, parseDotted('users[*].name', false) as never, 'x', true), true);
    assert.deepEqual(doc.users, [{ id: 1, name: 'x' }, { id: 2 }, 'scalar'], 'only where present');
    renameAt(doc, parseDotted('users[*].id', false) as never, parseDotted('users[*].key', false) as never);
    assert.deepEqual(doc.users, [{ name: 'x', key: 1 }, { key: 2 }, 'scalar']);
    removeAt(doc, parseDotted('users[*].key', false) as never);
    setAt(doc, parseDotted('meta.page', false) as never, 1);
    assert.deepEqual(doc, { users: [{ name: 'x' }, {}, 'scalar'], meta: { page: 1 } });
  });

  it('keeps only what allow paths reach', () => {
    const doc = { a: { b: 1, c: 2 }, list: [{ x: 1, y: 2 }], z: 3 };
    assert.deepEqual(pick(doc, [['a', 'b'], ['list', EACH, 'y']]), { a: { b: 1 }, list: [{ y: 2 }] });
    assert.deepEqual(pick(doc, [[]]), doc);
  });
});
