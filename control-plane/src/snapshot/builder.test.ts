// unchangedEnds (builder.ts): what a build looks at again is the part of a table's list between an
// unchanged head and tail. Property: for any two lists, the head and tail are equal in both, do not
// overlap, and cannot be longer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { unchangedEnds } from './builder.ts';

/** `next` from `prev` by edits in place, deletions and insertions anywhere (repeated values too). */
const listAndEdit = fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e'), { maxLength: 12 }).chain((prev) => fc.tuple(
  fc.constant(prev),
  fc.array(fc.tuple(fc.nat(), fc.constantFrom('set', 'delete', 'insert'), fc.constantFrom('a', 'b', 'x')), { maxLength: 4 }).map((edits) => {
    const next: string[] = [...prev];
    for (const [at, op, v] of edits) {
      const i = next.length ? at % (next.length + (op === 'insert' ? 1 : 0)) : 0;
      if (op === 'insert') next.splice(i, 0, v);
      else if (next.length && op === 'delete') next.splice(i, 1);
      else if (next.length) next[i] = v;
    }
    return next;
  }),
));

describe('unchangedEnds', () => {
  it('finds the longest equal head, then the longest equal tail not overlapping it', () => {
    fc.assert(fc.property(listAndEdit, ([prev, next]) => {
      const { head, tail } = unchangedEnds(prev, next);
      const max = Math.min(prev.length, next.length);
      assert.ok(head >= 0 && tail >= 0 && head + tail <= max);
      assert.deepEqual(next.slice(0, head), prev.slice(0, head));
      assert.deepEqual(next.slice(next.length - tail), prev.slice(prev.length - tail));
      // Longest: one more at either end would differ, or overlap.
      if (head < max) assert.notEqual(next[head], prev[head]);
      if (head + tail < max) assert.notEqual(next[next.length - 1 - tail], prev[prev.length - 1 - tail]);
    }), { numRuns: 2000 });
  });

  it('one item changed in a long list leaves only it between head and tail', () => {
    const prev = Array.from({ length: 10_000 }, (_, i) => `id-${i}:1`);
    const next: string[] = [...prev];
    next[4321] = 'id-4321:2';
    assert.deepEqual(unchangedEnds(prev, next), { head: 4321, tail: 10_000 - 4322 });
    assert.deepEqual(unchangedEnds(prev, prev), { head: 10_000, tail: 0 });
    assert.deepEqual(unchangedEnds([], prev), { head: 0, tail: 0 });
  });
});
