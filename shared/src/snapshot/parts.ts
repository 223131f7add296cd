// A snapshot's gzip members as parts (members.ts): named by their sha256, stored once in the CP's
// history (config_blocks), and sent to data planes as a delta: the parts the last snapshot sent did
// not have, and for the others their digest. At 10,000 routes a one-route write sends ~10 KB instead
// of ~340 KB to every node. A node rebuilds the signed envelope from the parts it holds and checks
// the signature over the whole as for any snapshot, so a delta needs no trust of its own: a wrong
// or forged one fails that check, and a node that lacks a part fetches the stored snapshot instead.
import { hash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { walkMembers } from './members.ts';
import { ENVELOPE_HEADER_BYTES } from './sign.ts';
import { SnapshotError } from './codec.ts';

const DIGEST_BYTES = 32;
const HELD = 1;
const INLINE = 2;
/** A delta's magic: "PSD1". */
const MAGIC = Buffer.from('PSD1');

/** sha256 (hex) of each part, remembered by identity: an unchanged block is the same Buffer write after write. */
const digests = new WeakMap<Uint8Array, string>();
export function partDigest(part: Uint8Array): string {
  let d = digests.get(part);
  if (d === undefined) { d = hash('sha256', part, 'hex'); digests.set(part, d); }
  return d;
}

/** The parts of a signed snapshot envelope (its payload's gzip members), or null when it is not written in members. */
export function partsOf(envelope: Uint8Array): Uint8Array[] | null {
  if (envelope.byteLength <= ENVELOPE_HEADER_BYTES) return null;
  const payload = envelope.subarray(ENVELOPE_HEADER_BYTES);
  return walkMembers(payload)?.map((m) => payload.subarray(m.start, m.end)) ?? null;
}

/**
 * The version a snapshot written in parts says it is, read from its last part (the small tail,
 * `…,"version":N}`), or null when it is not written so. Of an envelope whose signature checked
 * out, this is the CP's word, unlike a message header.
 */
export function signedVersion(envelope: Uint8Array): number | null {
  const parts = partsOf(envelope);
  if (!parts) return null;
  let tail: string;
  try { tail = gunzipSync(parts[parts.length - 1], { maxOutputLength: 4096 }).toString('latin1'); } catch { return null; }
  const m = /"version":(\d{1,15})\}$/.exec(tail);
  return m ? Number(m[1]) : null;
}

/**
 * The delta of `envelope` (signed, its payload the concatenation of `parts`) against the parts a
 * node holds (`held`, by digest): "PSD1" · the envelope's header · per part, HELD and its digest or
 * INLINE, its length (u32) and its bytes.
 */
export function encodeDelta(envelope: Uint8Array, parts: readonly Uint8Array[], held: ReadonlySet<string>): Buffer {
  const chunks: Uint8Array[] = [MAGIC, envelope.subarray(0, ENVELOPE_HEADER_BYTES)];
  for (const part of parts) {
    const d = partDigest(part);
    if (held.has(d)) {
      chunks.push(Buffer.from([HELD]), Buffer.from(d, 'hex'));
    } else {
      const head = Buffer.allocUnsafe(5);
      head[0] = INLINE;
      head.writeUInt32BE(part.byteLength, 1);
      chunks.push(head, part);
    }
  }
  return Buffer.concat(chunks);
}

/** A delta is a "PSD1" message (else the message is a whole envelope). */
export function isDelta(body: Uint8Array): boolean {
  return body.byteLength >= MAGIC.length && Buffer.from(body.buffer, body.byteOffset, MAGIC.length).equals(MAGIC);
}

/**
 * The envelope a delta stands for, with its parts by digest, from the parts `held`; null when it
 * refers to a part not held (the node fetches the stored snapshot instead). Throws SnapshotError on
 * a malformed delta, or one that would rebuild to more than `maxBytes`. `memory`: where the envelope
 * is written (`size` bytes), else new memory. The parts are never views into the envelope.
 */
export function decodeDelta(body: Uint8Array, held: { get(digest: string): Uint8Array | undefined }, maxBytes: number, memory?: (size: number) => Buffer): { envelope: Buffer; parts: Map<string, Uint8Array> } | null {
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const start = MAGIC.length + ENVELOPE_HEADER_BYTES;
  if (!isDelta(view) || view.length < start) throw new SnapshotError('snapshot delta is truncated before its parts');
  const chunks: Uint8Array[] = [view.subarray(MAGIC.length, start)];
  const parts = new Map<string, Uint8Array>();
  let size = ENVELOPE_HEADER_BYTES;
  let missing = false;
  for (let at = start; at < view.length;) {
    const tag = view[at];
    let part: Uint8Array | undefined;
    if (tag === HELD) {
      if (at + 1 + DIGEST_BYTES > view.length) throw new SnapshotError(`snapshot delta is truncated in a part digest at byte ${at}`);
      const d = view.toString('hex', at + 1, at + 1 + DIGEST_BYTES);
      at += 1 + DIGEST_BYTES;
      part = held.get(d);
      if (!part) { missing = true; continue; }
      parts.set(d, part);
    } else if (tag === INLINE) {
      if (at + 5 > view.length) throw new SnapshotError(`snapshot delta is truncated in a part length at byte ${at}`);
      const length = view.readUInt32BE(at + 1);
      if (at + 5 + length > view.length) throw new SnapshotError(`snapshot delta part at byte ${at} says ${length} bytes; ${view.length - at - 5} are left`);
      part = view.subarray(at + 5, at + 5 + length);
      at += 5 + length;
      parts.set(partDigest(part), part);
    } else {
      throw new SnapshotError(`snapshot delta has an unknown part tag ${tag} at byte ${at}`);
    }
    size += part.byteLength;
    if (size > maxBytes) throw new SnapshotError(`snapshot delta rebuilds to more than ${maxBytes} bytes`);
    chunks.push(part);
  }
  if (missing) return null;
  if (!memory) return { envelope: Buffer.concat(chunks, size), parts };
  const envelope = memory(size);
  let at = 0;
  for (const c of chunks) { envelope.set(c, at); at += c.byteLength; }
  return { envelope, parts };
}
