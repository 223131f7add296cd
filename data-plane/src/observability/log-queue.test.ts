// Kong's queue semantics with an in-memory sender: batching, bounded size, retries then drops.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogQueue, type QueueSettings } from './log-queue.ts';

const SETTINGS: QueueSettings = {
  max_batch_size: 3, max_coalescing_delay: 0.01, max_entries: 10, max_bytes: null,
  max_retry_time: 0.2, initial_retry_delay: 0.005, max_retry_delay: 0.02, concurrency_limit: 1,
};
const until = async (cond: () => boolean) => { while (!cond()) await new Promise((r) => setTimeout(r, 2)); };

describe('log queue', () => {
  it('sends full batches at once and the rest after the coalescing delay', async () => {
    const batches: number[][] = [];
    const q = new LogQueue<number>('t', SETTINGS, async (b) => { batches.push(b); });
    for (let i = 0; i < 7; i++) q.push(i);
    await until(() => q.stats.sent === 7);
    assert.deepEqual(batches, [[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('drops and counts entries past max_entries or max_bytes, without waiting', async () => {
    const drops: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const q = new LogQueue<number>('t', { ...SETTINGS, max_entries: 4, max_bytes: 100 }, () => gate, (n, reason) => drops.push(`${n}:${reason}`));
    for (let i = 0; i < 3; i++) assert.equal(q.push(i, 10), true); // one batch in flight, held
    for (let i = 0; i < 6; i++) q.push(i, 10);
    assert.equal(q.length, 4);
    assert.deepEqual(drops, ['1:queue_full', '1:queue_full']);
    assert.equal(q.push(99, 90), false, 'over max_bytes');
    release();
    await until(() => q.stats.sent === 7);
  });

  it('retries a failed batch with backoff and delivers it once the sender recovers', async () => {
    let failures = 3;
    const sent: number[][] = [];
    const q = new LogQueue<number>('t', SETTINGS, async (b) => { if (failures-- > 0) throw new Error('down'); sent.push(b); });
    q.push(1); q.push(2); q.push(3);
    await until(() => q.stats.sent === 3);
    assert.deepEqual(sent, [[1, 2, 3]]);
    assert.equal(q.stats.failedAttempts, 3);
    assert.equal(q.stats.dropped, 0);
  });

  it('drops a batch, counted, once max_retry_time is spent', async () => {
    const drops: string[] = [];
    const q = new LogQueue<number>('t', SETTINGS, async () => { throw new Error('down'); }, (n, reason) => drops.push(`${n}:${reason}`));
    q.push(1); q.push(2); q.push(3);
    await until(() => q.stats.dropped === 3);
    assert.deepEqual(drops, ['3:retries_exhausted']);
    assert.ok(q.stats.failedAttempts > 1);
  });
});
