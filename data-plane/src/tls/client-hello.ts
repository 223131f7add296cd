// The server name of a TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2; the server_name
// extension, RFC 6066 §3), read from the bytes a client sends first, before any handshake: the
// listener chooses the certificate (both its RSA and ECDSA pairs) from it, so OpenSSL then picks
// the pair the client supports. Written by hand because it runs on every new connection and must
// stay small and bounded: a stranger's bytes, so every length is checked against what was
// received, a record or hello larger than TLS allows is refused, and nothing is allocated per byte.

/** TLS record header: content type (1), legacy version (2), length (2). */
const RECORD_HEADER = 5;
const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
/** RFC 8446 §5.1: a record's plaintext is at most 2^14 bytes. */
const MAX_RECORD = 16_384;
/** A ClientHello larger than this is refused (real ones, post-quantum key shares included, are a few KiB). */
export const MAX_CLIENT_HELLO = 32_768;
const EXT_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;
/** RFC 6066 §3: a HostName is at most 2^16-1 bytes, but a DNS name at most 253 characters. */
const MAX_HOST_NAME = 253;

export type ClientHelloResult =
  /** More bytes are needed (never more than MAX_CLIENT_HELLO plus record headers in all). */
  | { kind: 'partial' }
  /** A complete ClientHello; `servername` absent when it names none. */
  | { kind: 'hello'; servername?: string }
  /** Not a TLS ClientHello the listener serves: close the connection. */
  | { kind: 'invalid'; reason: string };

const PARTIAL: ClientHelloResult = { kind: 'partial' };
const invalid = (reason: string): ClientHelloResult => ({ kind: 'invalid', reason });

/**
 * Read the ClientHello from the start of `data` (everything received so far). The handshake message
 * may span several records (RFC 8446 §5.1); only handshake records may come before it ends.
 */
export function parseClientHello(data: Buffer): ClientHelloResult {
  // Reassemble the handshake message from the records received so far.
  const fragments: Buffer[] = [];
  let have = 0;
  let need = -1;
  let at = 0;
  while (need < 0 || have < need) {
    if (data.length - at < RECORD_HEADER) return data.length - at > 0 && data[at] !== CONTENT_HANDSHAKE ? invalid('not a TLS handshake record') : PARTIAL;
    if (data[at] !== CONTENT_HANDSHAKE) return invalid('not a TLS handshake record');
    if (data[at + 1] !== 3) return invalid('not a TLS record version');
    const length = data.readUInt16BE(at + 3);
    if (length === 0 || length > MAX_RECORD) return invalid(`record length ${length} out of range`);
    if (data.length - at - RECORD_HEADER < length) {
      // The record is incomplete; its header may still tell the hello is not one (checked below).
      if (need < 0 && have === 0 && data.length - at - RECORD_HEADER >= 4) {
        const early = checkHeader(data.subarray(at + RECORD_HEADER, at + RECORD_HEADER + 4));
        if (early) return early;
      }
      return PARTIAL;
    }
    const fragment = data.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length);
    fragments.push(fragment);
    have += fragment.length;
    at += RECORD_HEADER + length;
    if (need < 0 && have >= 4) {
      const head = fragments.length === 1 ? fragment : Buffer.concat(fragments);
      const bad = checkHeader(head);
      if (bad) return bad;
      need = 4 + head.readUIntBE(1, 3);
    }
  }
  const message = fragments.length === 1 ? fragments[0] : Buffer.concat(fragments, have);
  return readHello(message.subarray(4, need));
}

/** The handshake header: a ClientHello of an acceptable length, or why not. */
function checkHeader(head: Buffer): ClientHelloResult | null {
  if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('the first handshake message is not a ClientHello');
  const length = head.readUIntBE(1, 3);
  if (length > MAX_CLIENT_HELLO) return invalid(`ClientHello of ${length} bytes is larger than ${MAX_CLIENT_HELLO}`);
  return null;
}

/** A cursor over the hello's body that refuses to read past its end. */
class Reader {
  at = 0;
  constructor(private readonly b: Buffer, private readonly end = b.length) {}
  get left(): number { return this.end - this.at; }
  u8(): number { if (this.left < 1) throw new RangeError('truncated'); return this.b[this.at++]; }
  u16(): number { if (this.left < 2) throw new RangeError('truncated'); const v = this.b.readUInt16BE(this.at); this.at += 2; return v; }
  skip(n: number): void { if (this.left < n) throw new RangeError('truncated'); this.at += n; }
  /** A sub-reader over the next `n` bytes (a length-prefixed vector), skipped here. */
  take(n: number): Reader { if (this.left < n) throw new RangeError('truncated'); const r = new Reader(this.b, this.at + n); r.at = this.at; this.at += n; return r; }
  text(n: number): string { if (this.left < n) throw new RangeError('truncated'); const s = this.b.toString('latin1', this.at, this.at + n); this.at += n; return s; }
}

const HOST_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;

function readHello(body: Buffer): ClientHelloResult {
  try {
    const r = new Reader(body);
    r.skip(2 + 32); // legacy_version, random
    r.skip(r.u8()); // legacy_session_id
    const suites = r.u16();
    if (suites === 0 || suites % 2) return invalid('bad cipher_suites length');
    r.skip(suites);
    r.skip(r.u8()); // legacy_compression_methods
    if (r.left === 0) return { kind: 'hello' }; // no extensions (TLS 1.2 allows it)
    const extensions = r.take(r.u16());
    while (extensions.left > 0) {
      const type = extensions.u16();
      const ext = extensions.take(extensions.u16());
      if (type !== EXT_SERVER_NAME) continue;
      const list = ext.take(ext.u16());
      while (list.left > 0) {
        const nameType = list.u8();
        const length = list.u16();
        if (nameType !== NAME_TYPE_HOST) { list.skip(length); continue; }
        if (length === 0 || length > MAX_HOST_NAME) return invalid(`server name of ${length} bytes`);
        const name = list.text(length);
        if (!HOST_NAME.test(name)) return invalid('server name is not a host name');
        return { kind: 'hello', servername: name.endsWith('.') ? name.slice(0, -1) : name };
      }
      return invalid('server_name extension without a host name');
    }
    return { kind: 'hello' };
  } catch (err) {
    if (err instanceof RangeError) return invalid('truncated ClientHello');
    throw err;
  }
}
