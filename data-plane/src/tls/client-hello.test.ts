import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { MAX_CLIENT_HELLO, parseClientHello } from './client-hello.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 100);

/** The first bytes Node's TLS client sends (its ClientHello), captured by a TCP server that never answers. */
function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      let got = Buffer.alloc(0);
      socket.on('data', (d) => {
        got = Buffer.concat([got, d]);
        if (parseClientHello(got).kind !== 'partial') { socket.destroy(); server.close(); resolve(got); }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, rejectUnauthorized: false, ...options });
      c.on('error', () => { /* the server hangs up */ });
    });
    server.on('error', reject);
  });
}

/** The same handshake message split into records of `size` bytes (RFC 8446 §5.1 allows it). */
function fragment(hello: Buffer, size: number): Buffer {
  const body = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    const head = Buffer.from([22, 3, 1, 0, 0]);
    head.writeUInt16BE(part.length, 3);
    out.push(head, part);
  }
  return Buffer.concat(out);
}

describe('parseClientHello', () => {
  let named: Buffer;
  let unnamed: Buffer;
  before(async () => {
    named = await captureHello({ servername: 'Shop.Example.test', ALPNProtocols: ['h2', 'http/1.1'] });
    unnamed = await captureHello({});
  });

  it('reads the server name of a real ClientHello, and none when the client sends none', () => {
    assert.deepEqual(parseClientHello(named), { kind: 'hello', servername: 'Shop.Example.test' });
    assert.deepEqual(parseClientHello(unnamed), { kind: 'hello' });
  });

  it('reads a hello split across many records, and waits for every prefix of it', () => {
    const split = fragment(named, 7);
    assert.deepEqual(parseClientHello(split), { kind: 'hello', servername: 'Shop.Example.test' });
    for (let n = 0; n < split.length; n++) assert.equal(parseClientHello(split.subarray(0, n)).kind, 'partial', `prefix ${n}`);
    for (let n = 0; n < named.length; n++) assert.equal(parseClientHello(named.subarray(0, n)).kind, 'partial', `prefix ${n}`);
  });

  it('refuses what is not a ClientHello as soon as it can tell', () => {
    const cases: [string, Buffer, RegExp][] = [
      ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /not a TLS handshake record/],
      ['an SSLv2-style hello', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01]), /not a TLS handshake record/],
      ['a record longer than TLS allows', Buffer.from([22, 3, 1, 0xff, 0xff]), /record length 65535 out of range/],
      ['an empty record', Buffer.from([22, 3, 1, 0, 0]), /record length 0/],
      ['a handshake that is not a ClientHello', Buffer.from([22, 3, 1, 0, 4, 2, 0, 0, 0]), /not a ClientHello/],
      ['a ClientHello larger than the cap', Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00]), new RegExp(`larger than ${MAX_CLIENT_HELLO}`)],
      ['a non-TLS record version', Buffer.from([22, 9, 1, 0, 4, 1, 0, 0, 0]), /not a TLS record version/],
    ];
    for (const [what, bytes, reason] of cases) {
      const r = parseClientHello(bytes);
      assert.equal(r.kind, 'invalid', what);
      assert.match((r as { reason: string }).reason, reason, what);
    }
  });

  it('refuses a hello whose inner lengths run past its end, or whose server name is not a host name', () => {
    // Inner lengths lie: the handshake says 40 bytes, the session id claims 200.
    const lying = Buffer.alloc(5 + 4 + 40);
    lying.set([22, 3, 1, 0, 44, 1, 0, 0, 40, 3, 3]);
    lying[9 + 34] = 200;
    assert.deepEqual(parseClientHello(lying), { kind: 'invalid', reason: 'truncated ClientHello' });
    const at = named.indexOf(Buffer.from('Shop.Example.test'));
    const bad = Buffer.from(named);
    bad.write('Shop/Example.test', at, 'latin1');
    assert.deepEqual(parseClientHello(bad), { kind: 'invalid', reason: 'server name is not a host name' });
  });

  it('never throws and never reads past what it was given, on any bytes (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), (bytes, cut) => {
      const r = parseClientHello(Buffer.from(bytes));
      assert.ok(['partial', 'hello', 'invalid'].includes(r.kind));
      // A real hello with bytes flipped or cut short: a result, never an exception.
      const mutated = Buffer.from(named);
      for (let i = 0; i < bytes.length && i < mutated.length; i += 7) mutated[(cut + i) % mutated.length] ^= bytes[i];
      const m = parseClientHello(mutated.subarray(0, cut % (mutated.length + 1)));
      if (m.kind === 'hello' && m.servername) assert.match(m.servername, /^[A-Za-z0-9_.-]+$/);
    }), { numRuns: RUNS });
  });
});
