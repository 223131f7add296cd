// The access log's own buffered destination (issue 16): every line written by close(), the same
// line pino writes for the node's logger, redaction kept for plugin fields, the level respected.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs, { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { createLogger, type Logger } from '@portico/shared';
import type { ProxyContext, RequestSummary } from '@portico/shared/plugins/handlers';
import { accessLine, openAccessLog, type AccessLogInput } from './access-log.ts';

const summary: RequestSummary = {
  status: 200, source: 'service', startedAt: Date.UTC(2026, 10, 30), latencies: { kong: 1, proxy: 2, request: 3 }, bytesIn: 10, bytesOut: 20,
  upstreamTarget: 'http://127.0.0.1:9', upstreamUri: '/x', tries: 1, traceId: null, responseHeaders: () => ({}),
};
const input = (i: number, ctx: ProxyContext | null = null): AccessLogInput => ({
  requestId: `req-${i}`, method: 'GET', path: `/p/${i}?q=ü"\\`, clientIp: '127.0.0.1', route: { id: 'r', name: 'route' } as ProxyContext['route'],
  service: null, ctx, error: undefined, aborted: false,
});

/** Lines written through openAccessLog into a file, after close(). */
async function written(log: Logger, write: (a: ReturnType<typeof openAccessLog>) => void): Promise<string[]> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'portico-access-')), 'access.log');
  const fd = openSync(file, 'w');
  const a = openAccessLog(log, fd);
  write(a);
  await a.close();
  closeSync(fd);
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

describe('access log destination', () => {
  it('has every line written once close() resolves, whole and in order', async () => {
    const lines = await written(createLogger('info', 'portico-dp'), (a) => { for (let i = 0; i < 2000; i++) a.write(input(i), summary); });
    assert.equal(lines.length, 2000);
    assert.deepEqual(lines.map((l) => JSON.parse(l).request_id), Array.from({ length: 2000 }, (_, i) => `req-${i}`));
  });

  it('writes whole lines, at most 4096 bytes (PIPE_BUF) per write, so processes sharing a pipe never interleave', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'portico-access-')), 'access.log');
    const fd = openSync(file, 'w');
    const a = openAccessLog(createLogger('info', 'portico-dp'), fd);
    const sizes: number[] = [];
    const write = fs.write;
    // Observe the destination's writes (sonic-boom calls fs.write); the bytes still go to the file.
    (fs as { write: unknown }).write = (...args: Parameters<typeof fs.write>) => {
      const data = args[1];
      sizes.push(typeof data === 'string' ? Buffer.byteLength(data) : (data as Buffer).length);
      assert.ok(String(data).endsWith('\n'), 'a write ends at the end of a line');
      return (write as (...x: unknown[]) => void)(...args);
    };
    try {
      for (let i = 0; i < 3000; i++) a.write(input(i), summary);
      await a.close();
    } finally {
      (fs as { write: unknown }).write = write;
      closeSync(fd);
    }
    assert.ok(sizes.length > 1);
    assert.ok(sizes.every((n) => n <= 4096), `writes of ${Math.max(...sizes)} bytes`);
    assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 3000);
  });

  it('writes the line pino writes for the node logger’s child, field for field', async () => {
    const log = createLogger('info', 'portico-dp').child({ plane: 'dp' });
    const [line] = await written(log, (a) => a.write(input(1), summary));
    let viaPino = '';
    const reference = pino({ base: log.bindings() }, { write: (s: string) => { viaPino = s; } }).child({ access: true });
    reference.info(accessLine(input(1), summary));
    const got = JSON.parse(line);
    const want = JSON.parse(viaPino);
    assert.ok(Math.abs(got.time - want.time) < 60_000);
    delete got.time; delete want.time;
    assert.deepEqual(Object.keys(got), Object.keys(want));
    assert.deepEqual(got, want);
    assert.equal(got.access, true);
    assert.equal(got.plane, 'dp');
    assert.equal(got.path, '/p/1?q=ü"\\');
  });

  it('redacts what a plugin adds (ctx.logFields) as the node logger does', async () => {
    const ctx = { logFields: { correlation_id: 'c-1', key: 'plugin-secret', nested: { password: 'pw' } }, consumer: null, responseHeaders: {} } as unknown as ProxyContext;
    const [line] = await written(createLogger('info', 'portico-dp'), (a) => a.write(input(2, ctx), summary));
    const e = JSON.parse(line);
    assert.equal(e.correlation_id, 'c-1');
    assert.equal(e.key, 'REDACTED');
    assert.equal(e.nested.password, 'REDACTED');
    assert.ok(!line.includes('plugin-secret'));
    assert.equal(e.access, true);
  });

  it('writes nothing when the node logs only warnings and above', async () => {
    assert.deepEqual(await written(createLogger('warn', 'portico-dp'), (a) => { a.write(input(3), summary); }), []);
  });
});
