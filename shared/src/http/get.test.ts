// The plugins' HTTP port against a real local server: bounded size, status checked.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getBytes } from './get.ts';

let server: http.Server;
let base: string;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/missing') { res.statusCode = 404; res.end('no'); return; }
    if (req.url === '/chunked') { res.write(Buffer.alloc(600)); res.end(Buffer.alloc(600)); return; }
    res.end(Buffer.alloc(1000, 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => { server.close(); });

describe('getBytes', () => {
  it('returns the body when it fits', async () => {
    assert.equal((await getBytes(`${base}/doc`, 2000, 1000)).length, 1000);
  });

  it('refuses a body longer than the cap, declared or streamed', async () => {
    await assert.rejects(getBytes(`${base}/doc`, 2000, 999), /larger than 999 bytes/);
    await assert.rejects(getBytes(`${base}/chunked`, 2000, 1000), /larger than 1000 bytes/);
  });

  it('refuses an answer other than 200', async () => {
    await assert.rejects(getBytes(`${base}/missing`, 2000, 1000), /answered 404/);
  });
});
