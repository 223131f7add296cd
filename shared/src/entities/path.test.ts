import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { escapePath, normalizePath } from './path.ts';

describe('normalizePath', () => {
  it('decodes unreserved characters and keeps reserved ones encoded in upper case', () => {
    assert.equal(normalizePath('/%61b%2fc%3a'), '/ab%2Fc%3A');
  });
  it('resolves dot segments and merges empty ones', () => {
    assert.equal(normalizePath('/a/./b/../c//d'), '/a/c/d');
    assert.equal(normalizePath('/a/b/..'), '/a/');
    assert.equal(normalizePath('/..'), '/');
    assert.equal(normalizePath('/a/%2E%2E/b'), '/b');
  });
  it('leaves a normal path alone', () => assert.equal(normalizePath('/mock/anything'), '/mock/anything'));
});

describe('escapePath', () => {
  it('percent-encodes characters outside RFC 3986', () => assert.equal(escapePath('/a b"c'), '/a%20b%22c'));
});
