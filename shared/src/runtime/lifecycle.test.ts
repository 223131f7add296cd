import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic, writeFileAtomicAsync } from './lifecycle.ts';

for (const [name, write] of [['writeFileAtomic', writeFileAtomic], ['writeFileAtomicAsync', writeFileAtomicAsync]] as const) {
  describe(name, () => {
    it('writes owner-only (0600), also over an existing world-readable file (the DP cache holds secrets), and leaves no temp file', async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-lifecycle-'));
      try {
        const file = path.join(dir, 'snapshot.json.gz');
        writeFileSync(file, 'old', { mode: 0o644 });
        await write(file, 'new');
        assert.equal(readFileSync(file, 'utf8'), 'new');
        assert.equal(statSync(file).mode & 0o777, 0o600);
        assert.deepEqual(readdirSync(dir), ['snapshot.json.gz']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
