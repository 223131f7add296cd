// drizzle's schema and the migrations' record of it (migrations/meta) describe the same tables:
// drizzle-kit, asked to generate a migration from schema.ts against a copy of migrations/, finds
// nothing to add. A column or constraint in schema.ts that no migration made fails here (so does
// one dropped from schema.ts that a migration made, which drizzle-kit push would drop).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(fileURLToPath(new URL('../../..', import.meta.url)));

describe('migrations', () => {
  it('match the drizzle schema: generating from schema.ts adds nothing', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-migrations-'));
    try {
      const out = path.join(dir, 'migrations');
      cpSync(path.join(root, 'migrations'), out, { recursive: true });
      const config = path.join(dir, 'drizzle.config.ts');
      // Paths relative to the working directory: drizzle-kit prefixes `out` with "./".
      writeFileSync(config, `export default ${JSON.stringify({ dialect: 'postgresql', schema: path.relative(dir, path.join(root, 'control-plane/src/db/schema.ts')), out: 'migrations' })};\n`);
      const before = readdirSync(out).sort();
      const r = spawnSync(path.join(root, 'node_modules/.bin/drizzle-kit'), ['generate', '--config', config], { cwd: dir, encoding: 'utf8' });
      const said = `${r.stdout}${r.stderr}`;
      assert.equal(r.status, 0, said);
      assert.deepEqual(readdirSync(out).sort(), before, `drizzle-kit generated a migration: the schema and migrations/ differ\n${said}`);
      assert.match(said, /No schema changes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
