import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { SnapshotFile } from './disk-cache.ts';

const lines: string[] = [];
const log = pino({ level: 'error' }, { write: (l: string) => { lines.push(l); } });

describe('SnapshotFile (the disk cache, written off the event loop)', () => {
  it('writes in order; of the writes asked for while one runs, only the latest is made; flush waits for it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-disk-'));
    const file = path.join(dir, 'snapshot.signed');
    const disk = new SnapshotFile(file, log);
    disk.write(Buffer.from('one'), 1);
    assert.equal(disk.version, 0, 'an apply does not wait for the disk');
    disk.write(Buffer.from('two'), 2);
    disk.write(Buffer.from('three'), 3);
    await disk.flush();
    assert.equal(readFileSync(file, 'utf8'), 'three');
    assert.equal(disk.version, 3);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['snapshot.signed'], 'no temp file left behind');
    disk.write(Buffer.from('four'), 4);
    await disk.flush();
    assert.equal(readFileSync(file, 'utf8'), 'four');
  });

  it('says when it no longer needs the bytes: once written, or passed over for a later write', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'portico-disk-'));
    const disk = new SnapshotFile(path.join(dir, 'snapshot.signed'), log);
    const done: number[] = [];
    disk.write(Buffer.from('one'), 1, () => done.push(1));
    disk.write(Buffer.from('two'), 2, () => done.push(2));
    disk.write(Buffer.from('three'), 3, () => done.push(3));
    assert.deepEqual(done, [2], 'two was passed over before it was written');
    await disk.flush();
    assert.deepEqual(done.sort(), [1, 2, 3]);
  });

  it('a write that fails is logged and leaves the version it had', async () => {
    const disk = new SnapshotFile(path.join(os.tmpdir(), 'portico-no-such-dir', 'x', 'snapshot.signed'), log);
    disk.write(Buffer.from('x'), 7);
    await disk.flush();
    assert.equal(disk.version, 0);
    assert.ok(lines.some((l) => l.includes('could not persist the applied config to disk')));
  });
});
