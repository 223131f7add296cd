import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createLogger } from './logger.ts';
import { startMallocTrim } from './malloc-trim.ts';

const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const log = createLogger('silent', 'test');

describe('malloc_trim', () => {
  it('gives back memory freed between live blocks, which glibc alone keeps', async () => {
    // 2,000 blocks of 64 KB from malloc (below glibc's mapping threshold), every other one freed:
    // the freed half sits between live blocks, so no free() can shrink the heap's top.
    const blocks = Array.from({ length: 2_000 }, () => Buffer.allocUnsafeSlow(64 * 1024).fill(1));
    const kept = blocks.filter((_, i) => i % 2 === 1);
    blocks.length = 0;
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc(); gc();
    await new Promise((r) => setTimeout(r, 50));
    const before = rssMb();
    const trim = startMallocTrim(log, { firstMs: 60_000 });
    try {
      assert.equal(await trim.trimNow(), true);
      const after = rssMb();
      assert.ok(before - after >= 32, `RSS ${before.toFixed(0)} → ${after.toFixed(0)} MB: ~62 MB freed should have gone back`);
      assert.equal(kept.every((b) => b[0] === 1 && b[b.length - 1] === 1), true, 'live blocks keep their contents');
    } finally {
      trim.stop();
    }
  });

  it('runs one call at a time', async () => {
    const trim = startMallocTrim(log, { firstMs: 60_000 });
    try {
      const a = trim.trimNow(); const b = trim.trimNow();
      assert.equal(a, b);
      assert.equal(await a, true);
    } finally {
      trim.stop();
    }
  });
});
