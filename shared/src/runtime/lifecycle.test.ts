import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from './lifecycle.ts';

describe('writeFileAtomic', () => {
  it('writes owner-only (0600), also over an existing world-readable file (the DP cache holds secrets)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-lifecycle-'));
    try {
      const file = path.join(dir, 'snapshot.json.gz');
      writeFileSync(file, 'old', { mode: 0o644 });
      writeFileAtomic(file, 'new');
      assert.equal(readFileSync(file, 'utf8'), 'new');
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
